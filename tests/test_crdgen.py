"""crdgen: the checked-in CRDs match the models, and every CRD is one the API server accepts."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from devops_operator.api import ALL_KINDS, GROUP_VERSION, crdgen, kind_by_name
from devops_operator.api.common import API_GROUP, API_VERSION, KindInfo, Model, StatusBase

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "crds"

# What an apiextensions.k8s.io/v1 JSONSchemaProps node may carry in a structural schema.
ALLOWED_KEYS = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "nullable",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
EXPECTED_SHORT_NAMES = {
    "DevOpsProject": ["dproj"],
    "InfraDeployment": ["idep"],
    "HealthCheck": ["hc"],
    "Remediation": ["rem"],
    "Investigation": ["inv"],
    "CostAudit": ["audit"],
    "PermissionRequest": ["preq"],
}


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


def _conforms(value: Any, node: dict[str, Any]) -> bool:
    """Whether a value (a default) satisfies a schema node, as the API server checks defaults."""
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        return True
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    expected = node.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if expected not in checks or not checks[expected](value):
        return False
    if "enum" in node and value not in node["enum"]:
        return False
    if "pattern" in node and not re.search(node["pattern"], value):
        return False
    if "minimum" in node and value < node["minimum"]:
        return False
    if "maximum" in node and value > node["maximum"]:
        return False
    if expected == "array":
        return all(_conforms(item, node["items"]) for item in value)
    if expected == "object":
        properties = node.get("properties") or {}
        if any(key not in value for key in node.get("required", [])):
            return False
        return all(_conforms(v, properties[k]) for k, v in value.items() if k in properties)
    return True


def _structural_problems(crd: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    root = _schema(crd)
    for path, node in _nodes(root):
        where = f"{crd['metadata']['name']}{path or ' (root)'}"
        unknown = set(node) - ALLOWED_KEYS
        if unknown:
            problems.append(f"{where}: keywords not allowed in a CRD schema: {sorted(unknown)}")
        keeps_unknown = any(
            node.get(f"x-kubernetes-{k}") for k in ("preserve-unknown-fields", "int-or-string")
        )
        if node.get("type") not in TYPES and not keeps_unknown:
            problems.append(f"{where}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: properties and additionalProperties together")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
            problems.append(f"{where}: additionalProperties must be a schema")
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            problems.append(f"{where}: array without items")
        for name in node.get("required", []):
            if name not in (node.get("properties") or {}):
                problems.append(f"{where}: required {name} is not a property")
        if "nullable" in node and "default" not in node:
            problems.append(f"{where}: nullable without a non-null default (null is pruned instead)")
        if "default" in node and (node["default"] is None or not _conforms(node["default"], node)):
            problems.append(f"{where}: default {node['default']!r} does not satisfy the schema")
        for value in node.get("enum", []):
            if not _conforms(value, {k: v for k, v in node.items() if k != "enum"}):
                problems.append(f"{where}: enum value {value!r} does not match the type")
        if "pattern" in node:
            re.compile(node["pattern"])
            if "(?" in node["pattern"]:
                problems.append(f"{where}: lookarounds and inline flags are not RE2/ECMA-portable")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node.get("x-kubernetes-list-map-keys", []):
                key_node = item.get("properties", {}).get(key, {})
                if key not in item.get("required", []) and "default" not in key_node:
                    problems.append(f"{where}: list-map key {key} is neither required nor defaulted")
                if key_node.get("type") not in {"string", "integer", "boolean"}:
                    problems.append(f"{where}: list-map key {key} is not a scalar")
    return problems


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return crdgen.render_all()


def test_checked_in_crds_match_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    code = crdgen.main(["--check", "--out", str(CRDS)])
    out = capsys.readouterr()
    assert code == 0, f"crds/ is stale, run `{crdgen.REGENERATE_COMMAND}`:\n{out.err}"


def test_check_reports_stale_missing_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == sorted(f"{k.plural}.{API_GROUP}.yaml" for k in ALL_KINDS)

    stale, missing = files[0], files[1]
    stale.write_text(stale.read_text() + "# edited by hand\n")
    missing.unlink()
    extra = tmp_path / f"oldkinds.{API_GROUP}.yaml"
    extra.write_text("kind: CustomResourceDefinition\n")
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")  # not ours: left alone
    capsys.readouterr()

    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"stale: {stale}" in err
    assert f"missing: {missing}" in err
    assert f"extra: {extra}" in err
    assert "kustomization" not in err
    assert crdgen.REGENERATE_COMMAND in err

    # Regenerating repairs everything and removes the generated file of a kind that is gone.
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert not extra.exists()
    assert (tmp_path / "kustomization.yaml").exists()
    assert crdgen.check(tmp_path) == []


def test_generated_files_are_deterministic_and_headed(crds: dict[str, dict[str, Any]]) -> None:
    first = crdgen.expected_files()
    assert first == crdgen.expected_files()
    for name, text in first.items():
        assert text.startswith("# Generated by devops_operator.api.crdgen")
        assert crdgen.REGENERATE_COMMAND in text.splitlines()[2]
        assert "&id" not in text and "*id" not in text  # no YAML anchors
        assert yaml.safe_load(text) == crds[name]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_every_crd_is_structural(kind: KindInfo, crds: dict[str, dict[str, Any]]) -> None:
    crd = crds[f"{kind.crd_name}.yaml"]
    assert _structural_problems(crd) == []
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "$defs", "title:", "anyOf", "oneOf", "allOf", "type: 'null'", "type: null"):
        assert forbidden not in text, forbidden


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_crd_shape(kind: KindInfo, crds: dict[str, dict[str, Any]]) -> None:
    crd = crds[f"{kind.crd_name}.yaml"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.{API_GROUP}"
    spec = crd["spec"]
    assert spec["group"] == API_GROUP
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == kind.kind
    assert names["listKind"] == f"{kind.kind}List"
    assert names["plural"] == kind.plural
    assert names["singular"] == kind.kind.lower()
    assert names["shortNames"] == EXPECTED_SHORT_NAMES[kind.kind]
    assert "devops" in names["categories"]

    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (API_VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["required"] == ["spec"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["description"] == kind.description
    status = schema["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert "conditions" in status["properties"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert not [path for path, node in _nodes(status) if "default" in node], "status carries no defaults"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_printer_columns_point_at_schema_fields(kind: KindInfo, crds: dict[str, dict[str, Any]]) -> None:
    version = crds[f"{kind.crd_name}.yaml"]["spec"]["versions"][0]
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns][:2] == ["Ready", "Phase"]
    assert [c["name"] for c in columns][-1] == "Age"
    schema = version["schema"]["openAPIV3Schema"]
    for column in columns:
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}
        path = re.sub(r"\[\?\(.*?\)\]", "[]", column["jsonPath"])
        node = schema
        for part in path.strip(".").split("."):
            if part.endswith("[]"):
                node = node["properties"][part[:-2]]["items"]
            elif part in ("creationTimestamp",) and node is schema["properties"]["metadata"]:
                break
            else:
                assert part in node.get("properties", {}), f"{kind.kind}: column {column['name']} -> {path}"
                node = node["properties"][part]


def _columns(kind: str) -> dict[str, dict[str, Any]]:
    crd = crdgen.render_crd(kind_by_name(kind))
    return {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}


def test_infradeployment_printer_columns() -> None:
    columns = _columns("idep")
    assert list(columns) == [
        "Ready", "Phase", "Env", "Plan", "Approval", "Add", "Change", "Destroy", "Drifted", "Suspended",
        "Next-Window", "Lock", "Message", "Age",
    ]  # fmt: skip
    assert columns["Env"]["jsonPath"] == ".spec.environment"
    assert columns["Plan"]["jsonPath"] == ".status.plan.id"
    assert columns["Approval"]["jsonPath"] == ".status.approval.state"
    for name in ("Add", "Change", "Destroy"):
        assert columns[name]["type"] == "integer"
        assert columns[name]["priority"] == 1
    assert columns["Drifted"] == {"name": "Drifted", "type": "boolean", "jsonPath": ".status.drift.detected"}
    assert columns["Suspended"] == {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend"}
    assert columns["Next-Window"]["jsonPath"] == ".status.window.nextOpen"
    assert columns["Lock"] == {"name": "Lock", "type": "string", "jsonPath": ".status.lock.holderState",
                               "priority": 1}
    assert columns["Age"]["type"] == "date"


def test_permissionrequest_printer_columns() -> None:
    columns = _columns("PermissionRequest")
    assert list(columns) == ["Ready", "Phase", "Env", "Actions", "Approved", "Message", "Age"]
    assert columns["Actions"]["priority"] == 1
    assert columns["Approved"]["type"] == "boolean"
    assert columns["Approved"]["jsonPath"] == ".spec.approval.approved"


def _spec_schema(kind: str) -> dict[str, Any]:
    spec = _schema(crdgen.render_crd(kind_by_name(kind)))["properties"]["spec"]
    assert isinstance(spec, dict)
    return spec


def test_defaults_and_enums_survive() -> None:
    spec = _spec_schema("InfraDeployment")
    props = spec["properties"]
    approval = props["approval"]
    assert approval["default"] == {}  # so that the nested defaults apply when approval is omitted
    mode = approval["properties"]["mode"]
    assert mode == {
        "type": "string",
        "enum": ["auto", "manual", "non-destructive"],
        "default": "manual",
        "description": mode["description"],
    }
    assert approval["properties"]["planId"]["pattern"]
    pre = props["tests"]["properties"]["pre"]["properties"]
    assert pre["failOn"]["default"] == ["CRITICAL", "HIGH"]
    assert pre["failOn"]["items"]["enum"] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert props["tests"]["properties"]["keepReports"] == {
        "type": "integer",
        "default": 5,
        "minimum": 1,
        "maximum": 50,
        "description": props["tests"]["properties"]["keepReports"]["description"],
    }
    drift = props["driftDetection"]["properties"]
    assert drift["interval"]["default"] == "1h"
    assert drift["interval"]["pattern"] == r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
    assert props["destroyOnDelete"]["default"] is False
    assert "default" not in props["varsFrom"], "empty list defaults are left out"
    status = _schema(crdgen.render_crd(kind_by_name("idep")))["properties"]["status"]
    assert status["properties"]["phase"]["enum"] == [
        "Pending", "WaitingForDependencies", "Planning", "Testing", "AwaitingApproval", "WaitingForWindow",
        "Suspended", "Applying", "Verifying", "Ready", "Failed", "Stalled", "Destroying", "DeletionBlocked",
    ]  # fmt: skip


def test_required_fields_land_in_required() -> None:
    spec = _spec_schema("InfraDeployment")
    assert set(spec["required"]) == {"projectRef", "environment", "source"}
    assert spec["properties"]["projectRef"]["required"] == ["name"]
    assert spec["properties"]["source"]["properties"]["git"]["required"] == ["url"]
    assert "approval" not in spec["required"]
    preq = _spec_schema("preq")
    assert set(preq["required"]) == {"projectRef", "environment"}


def test_optional_fields_are_plain_types_not_unions() -> None:
    spec = _spec_schema("InfraDeployment")
    plan_id = spec["properties"]["approval"]["properties"]["planId"]
    assert plan_id["type"] == "string"
    assert "nullable" not in plan_id  # None means unset; the API server prunes nulls
    inline = spec["properties"]["source"]["properties"]["inline"]
    assert inline["type"] == "object"
    assert inline["additionalProperties"] == {"type": "string", "maxLength": 65536}
    assert inline["minProperties"] == 1


def test_free_form_maps_keep_unknown_fields() -> None:
    spec = _spec_schema("InfraDeployment")
    variables = spec["properties"]["variables"]
    assert variables == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": variables["description"],
    }
    assert _spec_schema("preq")["properties"]["condition"]["x-kubernetes-preserve-unknown-fields"] is True


def test_cel_rules_and_list_maps_are_carried() -> None:
    spec = _spec_schema("InfraDeployment")
    source = spec["properties"]["source"]
    [rule] = source["x-kubernetes-validations"]
    assert "has(self.configMapRef)" in rule["rule"] and "== 1" in rule["rule"]
    env = spec["properties"]["runner"]["properties"]["env"]
    assert (env["x-kubernetes-list-type"], env["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    # name + namespace (dependsOn) or name + kind (varsFrom) do not identify an entry by name alone.
    assert "x-kubernetes-list-type" not in spec["properties"]["dependsOn"]
    assert "x-kubernetes-list-type" not in spec["properties"]["varsFrom"]
    environments = _spec_schema("dproj")["properties"]["environments"]
    assert environments["x-kubernetes-list-map-keys"] == ["name"]


class _Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class _Inner(Model):
    """An inner model."""

    size: int = Field(default=3, gt=0, description="A size.")


class _ExampleSpec(Model):
    """An example spec."""

    colour: _Colour = Field(default=_Colour.RED, description="A colour.")
    inner: _Inner = Field(default_factory=_Inner, description="An inner.")
    custom: _Inner = Field(default_factory=lambda: _Inner(size=7), description="A non-plain default.")
    limit: int | None = Field(default=10, description="A limit; null means none.")
    port: int | str = Field(default=80, description="A port number or name.")
    anything: Any = Field(default=None, description="Anything at all.")
    needed: str = Field(min_length=2, description="Required.")


class _Status(StatusBase):
    """An example status."""


def _example_kind(spec: type[Model]) -> KindInfo:
    return KindInfo(
        kind="Example",
        plural="examples",
        singular="example",
        short_names=["ex"],
        description="An example.",
        spec=spec,
        status=_Status,
    )


def test_converter_edge_cases() -> None:
    crd = crdgen.render_crd(_example_kind(_ExampleSpec))
    assert _structural_problems(crd) == []
    props = _schema(crd)["properties"]["spec"]["properties"]
    assert props["colour"]["enum"] == ["red", "blue"]
    assert props["inner"]["default"] == {}
    assert props["inner"]["description"] == "An inner."
    assert props["inner"]["properties"]["size"]["minimum"] == 0
    assert props["inner"]["properties"]["size"]["exclusiveMinimum"] is True
    assert props["custom"]["default"] == {"size": 7}
    assert props["limit"] == {
        "type": "integer",
        "default": 10,
        "nullable": True,
        "description": "A limit; null means none.",
    }
    assert props["port"] == {
        "x-kubernetes-int-or-string": True,
        "default": 80,
        "description": "A port number or name.",
    }
    assert props["anything"] == {
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "Anything at all.",
    }
    assert _schema(crd)["properties"]["spec"]["required"] == ["needed"]
    assert crd["spec"]["names"]["shortNames"] == ["ex"]


def test_unions_without_a_structural_form_are_refused() -> None:
    class _Bad(Model):
        choice: _Inner | str = Field(description="Either.")

    with pytest.raises(crdgen.CrdGenerationError, match=r"spec\.choice"):
        crdgen.render_crd(_example_kind(_Bad))


def test_registry() -> None:
    assert [k.kind for k in ALL_KINDS] == list(EXPECTED_SHORT_NAMES)
    assert kind_by_name("InfraDeployment") is kind_by_name("idep") is kind_by_name("infradeployments")
    assert kind_by_name("PREQ").kind == "PermissionRequest"
    with pytest.raises(KeyError, match="known kinds"):
        kind_by_name("Widget")
    assert GROUP_VERSION == "devops.fractary.io/v1alpha1"
    assert set(crdgen.render_all()) == {f"{k.plural}.{API_GROUP}.yaml" for k in ALL_KINDS}


def _apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """What the API server's structural defaulting makes of a value (top-down, as it does)."""
    if isinstance(value, dict) and node.get("type") == "object":
        properties = node.get("properties") or {}
        for name, prop in properties.items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
        for name, sub in value.items():
            if name in properties:
                value[name] = _apply_defaults(sub, properties[name])
            elif isinstance(node.get("additionalProperties"), dict):
                value[name] = _apply_defaults(sub, node["additionalProperties"])
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_apply_defaults(item, node["items"]) for item in value]
    return value


def _without_empties(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _without_empties(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_without_empties(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("kind", "minimal"),
    [
        ("DevOpsProject", {}),
        (
            "InfraDeployment",
            {
                "projectRef": {"name": "shop"},
                "environment": "test",
                "source": {"git": {"url": "https://x/y.git"}},
            },
        ),
        (
            "PermissionRequest",
            {"projectRef": {"name": "shop"}, "environment": "test", "actions": ["s3:GetObject"]},
        ),
    ],
)
def test_server_defaults_equal_model_defaults(kind: str, minimal: dict[str, Any]) -> None:
    """A minimal object defaulted by the API server reads back exactly as the operator's model fills it."""
    info = kind_by_name(kind)
    defaulted = _apply_defaults(copy.deepcopy(minimal), _spec_schema(kind))
    from_model = info.spec.model_validate(minimal).to_wire()
    assert _without_empties(defaulted) == _without_empties(from_model)
    assert info.spec.model_validate(defaulted).to_wire() == from_model
