"""What the emulated API server accepts and refuses on write, worded as kube-apiserver words it.

fieldValidation (unknown and duplicate fields), dry runs, protobuf bodies from kubectl's typed
clients, CEL validation rules (the project's CRDs' and a test CRD's), status writes, size limits,
and what the server fills in for built-in kinds.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests

from devops_operator.api.crdgen import render_all
from devops_operator.sandbox.apiserver import EmulatedKubernetes, cel
from devops_operator.sandbox.apiserver.limits import (
    ETCD_MAX_REQUEST_BYTES,
    MAX_REQUEST_BODY_BYTES,
    TOTAL_ANNOTATION_SIZE_LIMIT,
)
from devops_operator.sandbox.apiserver.protobuf_objects import decode_object

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
GROUP, VERSION, PLURAL, KIND = "validation.example.dev", "v1", "widgets", "Widget"
WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                {"rule": "!has(self.owner) || self.owner.startsWith('team-')", "fieldPath": ".owner",
                 "reason": "FieldValueForbidden", "messageExpression": "'owner ' + self.owner + ' is not a team'"},
            ],
            "properties": {
                "minReplicas": {"type": "integer", "default": 1},
                "maxReplicas": {"type": "integer", "default": 3},
                "owner": {"type": "string"},
                "region": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "region is immutable"}],
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-validations": [
                        {"rule": "self.all(tag, tag.lowerAscii() == tag)", "message": "tags are lower case"},
                        {"rule": "size(self) >= size(oldSelf)", "message": "tags may only be added"},
                    ],
                },
                "stages": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "order": {"type": "integer", "x-kubernetes-validations": [
                                {"rule": "self >= oldSelf", "message": "order only grows"}]},
                        },
                    },
                },
                "quota": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "quantity(self).isLessThan(quantity('10Gi'))", "message": "quota under 10Gi"},
                ]},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Pending", "Ready", "Failed"]},
                "replicas": {"type": "integer", "minimum": 0},
                "history": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "summary": {"type": "string",
                            "x-kubernetes-validations": [{"rule": "size(self) <= 20", "message": "summary is short"}]},
            },
        },
    },
}
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": KIND},
        "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": WIDGET_SCHEMA}}],
    },
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedKubernetes]:
    with EmulatedKubernetes() as k8s:
        k8s.register_crd(WIDGET_CRD)
        for crd in render_all().values():
            k8s.register_crd(crd)
        yield k8s


@pytest.fixture()
def ns() -> str:
    return f"v-{uuid.uuid4().hex[:8]}"


def widgets(cluster: EmulatedKubernetes, ns: str, name: str = "") -> str:
    url = f"{cluster.url}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"
    return f"{url}/{name}" if name else url


def core(cluster: EmulatedKubernetes, ns: str, plural: str, name: str = "") -> str:
    url = f"{cluster.url}/api/v1/namespaces/{ns}/{plural}"
    return f"{url}/{name}" if name else url


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def create(url: str, body: Any, **params: str) -> requests.Response:
    return requests.post(url, json=body, params=params, timeout=5)


def merge(url: str, patch: Any, **params: str) -> requests.Response:
    headers = {"Content-Type": "application/merge-patch+json"}
    return requests.patch(url, data=json.dumps(patch), headers=headers, params=params, timeout=5)


# --- fieldValidation ---------------------------------------------------------------------------

TYPO_JSON = b"""{"apiVersion": "validation.example.dev/v1", "kind": "Widget",
 "metadata": {"name": "%s", "labels": {"a": "1"}, "lables": {"b": "2"}},
 "spec": {"minReplicas": 1, "minReplicas": 2, "colour": "blue", "tags": ["x"]}}"""


def test_strict_refuses_unknown_and_duplicate_fields_naming_each(cluster: EmulatedKubernetes, ns: str) -> None:
    response = requests.post(widgets(cluster, ns), data=TYPO_JSON % b"strict", params={"fieldValidation": "Strict"},
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert (response.status_code, response.json()["reason"]) == (400, "BadRequest")
    assert response.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: duplicate field "minReplicas", '
        'unknown field "metadata.lables", unknown field "spec.colour"'
    )
    assert requests.get(widgets(cluster, ns, "strict"), timeout=5).status_code == 404  # nothing half-written


@pytest.mark.parametrize("directive", ["Warn", None])
def test_warn_accepts_and_answers_one_warning_per_field(
    cluster: EmulatedKubernetes, ns: str, directive: str | None
) -> None:
    params = {"fieldValidation": directive} if directive else {}
    response = requests.post(widgets(cluster, ns), data=TYPO_JSON % b"warned", params=params,
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 201
    assert response.headers["Warning"] == (
        '299 - "duplicate field \\"minReplicas\\"", 299 - "unknown field \\"metadata.lables\\"", '
        '299 - "unknown field \\"spec.colour\\""'
    )
    stored = response.json()
    assert stored["spec"]["minReplicas"] == 2 and "colour" not in stored["spec"]  # the last duplicate wins
    assert "lables" not in stored["metadata"]


def test_ignore_prunes_silently(cluster: EmulatedKubernetes, ns: str) -> None:
    response = requests.post(widgets(cluster, ns), data=TYPO_JSON % b"ignored", params={"fieldValidation": "Ignore"},
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 201 and "Warning" not in response.headers


def test_yaml_duplicates_are_named_with_their_line(cluster: EmulatedKubernetes, ns: str) -> None:
    body = "apiVersion: validation.example.dev/v1\nkind: Widget\nmetadata:\n  name: y\nspec:\n  owner: team-a\n" \
           "  owner: team-b\n"
    response = requests.post(widgets(cluster, ns), data=body, params={"fieldValidation": "Strict"},
                             headers={"Content-Type": "application/yaml"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["message"].endswith('strict decoding error: line 7: key "owner" already set in map')


def test_strict_applies_to_built_in_kinds_and_patches(cluster: EmulatedKubernetes, ns: str) -> None:
    refused = create(core(cluster, ns, "configmaps"), {"metadata": {"name": "c"}, "dat": {"a": "1"}},
                     fieldValidation="Strict")
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "dat"'
    )
    assert create(core(cluster, ns, "configmaps"), {"metadata": {"name": "c"}}).status_code == 201
    patched = merge(core(cluster, ns, "configmaps", "c"), {"date": {"a": "1"}}, fieldValidation="Strict")
    assert patched.status_code == 400 and 'unknown field "date"' in patched.json()["message"]


def test_an_unknown_field_validation_directive_is_refused(cluster: EmulatedKubernetes, ns: str) -> None:
    response = create(widgets(cluster, ns), widget("x"), fieldValidation="Loose")
    assert response.status_code == 400 and "fieldValidation" in response.json()["message"]


# --- dry runs ----------------------------------------------------------------------------------


def test_dry_run_checks_everything_and_stores_nothing(cluster: EmulatedKubernetes, ns: str) -> None:
    dry = create(widgets(cluster, ns), widget("dry", owner="team-a"), dryRun="All")
    assert dry.status_code == 201 and dry.json()["spec"]["maxReplicas"] == 3  # defaulted as if stored
    assert requests.get(widgets(cluster, ns, "dry"), timeout=5).status_code == 404
    assert create(widgets(cluster, ns), widget("dry", minReplicas=5), dryRun="All").status_code == 422
    created = create(widgets(cluster, ns), widget("dry")).json()
    assert merge(widgets(cluster, ns, "dry"), {"spec": {"owner": "team-b"}}, dryRun="All").json()["spec"]["owner"] == (
        "team-b"
    )
    assert requests.delete(widgets(cluster, ns, "dry"), params={"dryRun": "All"}, timeout=5).status_code == 200
    current = requests.get(widgets(cluster, ns, "dry"), timeout=5).json()
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert "owner" not in current["spec"]


# --- protobuf from kubectl's typed clients -------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("secret-generic", {"kind": "Secret", "metadata": {"name": "s1"},
                            "data": {"pw": base64.b64encode(b"p@ss").decode(),
                                     "user": base64.b64encode(b"admin").decode()}}),
        ("configmap", {"kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b", "n": "1"}}),
        ("namespace", {"kind": "Namespace", "metadata": {"name": "team-a"}}),
        ("job", {"kind": "Job", "metadata": {"name": "j1"}, "spec": {"template": {"spec": {
            "containers": [{"name": "j1", "image": "busybox", "command": ["echo", "hi"]}],
            "restartPolicy": "Never"}}}}),
        ("deployment", {"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}),
        ("service", {"kind": "Service", "metadata": {"name": "svc1", "labels": {"app": "svc1"}}, "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "svc1"}, "type": "ClusterIP"}}),
    ],
)
def test_protobuf_bodies_kubectl_sent_decode_to_their_json(fixture: str, expected: dict[str, Any]) -> None:
    decoded = decode_object((FIXTURES / f"{fixture}.pb").read_bytes())
    assert {key: value for key, value in decoded.items() if key != "apiVersion"} == expected


def test_protobuf_posts_create_objects_and_unreadable_ones_say_what_to_do(cluster: EmulatedKubernetes, ns: str) -> None:
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf", "Accept": "application/json"}
    body = (FIXTURES / "secret-tls.pb").read_bytes()
    created = requests.post(core(cluster, ns, "secrets"), data=body, headers=headers, timeout=5)
    assert created.status_code == 201
    assert (created.json()["type"], sorted(created.json()["data"])) == ("kubernetes.io/tls", ["tls.crt", "tls.key"])
    broken = requests.post(core(cluster, ns, "secrets"), data=body[:-5], headers=headers, timeout=5)
    assert broken.status_code == 400 and "kubectl create -f" in broken.json()["message"]


# --- CEL validation rules ------------------------------------------------------------------------


def test_a_failed_rule_is_422_with_the_api_server_shape(cluster: EmulatedKubernetes, ns: str) -> None:
    response = create(widgets(cluster, ns), widget("w", minReplicas=4, maxReplicas=2))
    assert (response.status_code, response.json()["reason"]) == (422, "Invalid")
    assert response.json()["message"] == (
        'Widget.validation.example.dev "w" is invalid: spec: Invalid value: "object": '
        "minReplicas must not exceed maxReplicas"
    )
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "field": "spec",
         "message": 'Invalid value: "object": minReplicas must not exceed maxReplicas'}
    ]


def test_rules_with_reason_field_path_and_message_expression(cluster: EmulatedKubernetes, ns: str) -> None:
    response = create(widgets(cluster, ns), widget("w", owner="alice"))
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "field": "spec.owner", "message": "Forbidden: owner alice is not a team"}
    ]


def test_rules_see_defaults_and_macros_with_string_extensions(cluster: EmulatedKubernetes, ns: str) -> None:
    assert create(widgets(cluster, ns), widget("w", minReplicas=3)).status_code == 201  # maxReplicas defaults to 3
    refused = create(widgets(cluster, ns), widget("v", tags=["ok", "NotOk"]))
    assert refused.status_code == 422 and "spec.tags: Invalid value: \"array\": tags are lower case" in (
        refused.json()["message"]
    )


def test_transition_rules_apply_only_to_updates_with_an_old_value(cluster: EmulatedKubernetes, ns: str) -> None:
    url = widgets(cluster, ns, "t")
    assert create(widgets(cluster, ns), widget("t", tags=["a"], stages=[{"name": "b", "order": 2}])).status_code == 201
    assert merge(url, {"spec": {"region": "eu-west-1"}}).status_code == 200  # no old region: the rule is skipped
    immutable = merge(url, {"spec": {"region": "us-east-1"}})
    assert immutable.status_code == 422 and "spec.region: Invalid value: \"string\": region is immutable" in (
        immutable.json()["message"]
    )
    assert merge(url, {"spec": {"tags": []}}).status_code == 422  # tags may only be added
    assert merge(url, {"spec": {"tags": ["a", "b"]}}).status_code == 200
    # map-list items correlate by key: an item's old value is the item with the same name.
    assert merge(url, {"spec": {"stages": [{"name": "a", "order": 1}, {"name": "b", "order": 3}]}}).status_code == 200
    shrunk = merge(url, {"spec": {"stages": [{"name": "a", "order": 1}, {"name": "b", "order": 1}]}})
    assert shrunk.status_code == 422 and "spec.stages[1].order" in shrunk.json()["message"]


def test_unchanged_values_are_not_judged_again(cluster: EmulatedKubernetes) -> None:
    # A rule tightened after an object was stored (ratcheting): the old value keeps passing, a new one does not.
    schema = WIDGET_SCHEMA["properties"]["spec"]
    old = {"spec": {"minReplicas": 5, "maxReplicas": 2}}
    unchanged = cel.validate({"spec": {"minReplicas": 5, "maxReplicas": 2}}, old, {"properties": {"spec": schema}})
    assert unchanged.errors == []
    changed = cel.validate({"spec": {"minReplicas": 6, "maxReplicas": 2}}, old, {"properties": {"spec": schema}})
    assert [error.field for error in changed.errors] == ["spec"]


def test_a_rule_the_evaluator_cannot_run_is_not_enforced_but_said(
    cluster: EmulatedKubernetes, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = create(widgets(cluster, ns), widget("q", quota="20Gi"))
    assert response.status_code == 201
    assert "was not enforced by the emulator" in response.headers["Warning"]
    assert "quantity(self)" in response.headers["Warning"]
    rule = f"self.url().getHost() == '{uuid.uuid4().hex}'"  # a rule no earlier test has logged
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": rule}]}
    with caplog.at_level("WARNING", logger="devops_operator.sandbox.apiserver.cel"):
        outcomes = [cel.validate("https://x", None, schema) for _ in range(2)]
    assert [len(outcome.warnings) for outcome in outcomes] == [1, 1]  # every response says it
    logged = [record.message for record in caplog.records]
    assert logged.count(outcomes[0].warnings[0] + " (see docs/troubleshooting.md)") == 1


def test_status_writes_are_validated_against_the_status_schema(cluster: EmulatedKubernetes, ns: str) -> None:
    assert create(widgets(cluster, ns), widget("s")).status_code == 201
    status_url = widgets(cluster, ns, "s") + "/status"
    for status, field in [
        ({"phase": "Hacked"}, "status.phase"),
        ({"replicas": -1}, "status.replicas"),
        ({"replicas": "many"}, "status.replicas"),
        ({"history": ["a", "b", "c"]}, "status.history"),
        ({"summary": "far too long for the summary rule"}, "status.summary"),
    ]:
        response = merge(status_url, {"status": status})
        assert response.status_code == 422, status
        assert next(cause["field"] for cause in response.json()["details"]["causes"]) == field
    assert merge(status_url, {"status": {"phase": "Ready", "replicas": 2}}).status_code == 200


def test_type_errors_stop_the_rules_with_the_api_server_note(cluster: EmulatedKubernetes, ns: str) -> None:
    response = create(widgets(cluster, ns), widget("e", minReplicas="one"))
    assert response.status_code == 422
    fields = [cause["field"] for cause in response.json()["details"]["causes"]]
    assert fields == ["spec.minReplicas", "<nil>"]
    assert "some validation rules were not checked" in response.json()["message"]


# The project's own rules: one violating spec each. A new rule in crds/ fails the coverage test below
# until it gets a case here.
def _deployment(source: dict[str, Any]) -> dict[str, Any]:
    return {"projectRef": {"name": "shop"}, "environment": "test", "source": source}


def _permission(**fields: Any) -> dict[str, Any]:
    return {"projectRef": {"name": "shop"}, "environment": "test", **fields}


def _remediation(**fields: Any) -> dict[str, Any]:
    return {"projectRef": {"name": "shop"}, "environment": "prod", "target": {"type": "lambda", "id": "api"},
            "action": "restart", "reason": "errors", **fields}


_APPROVED = {"approved": True, "statementDigest": "abcdef123456", "approvedBy": "alice"}

# (plural, path, spec before the write or None for a create, spec written, message)
PROJECT_RULE_CASES = [
    ("infradeployments", "spec.source", None,
     _deployment({"inline": {"main.tf": ""}, "configMapRef": {"name": "tf"}}),
     "set exactly one of git, configMapRef, inline or sourceRef"),
    ("infradeployments", "spec.source", None, _deployment({}),
     "set exactly one of git, configMapRef, inline or sourceRef"),
    ("infradeployments", "spec.source", None,
     _deployment({"inline": {"main.tf": ""}, "sourceRef": {"kind": "GitRepository", "name": "infra"}}),
     "set exactly one of git, configMapRef, inline or sourceRef"),
    ("infradeployments", "spec.interval", None,
     {**_deployment({"inline": {"main.tf": ""}}), "interval": "1s"}, "interval must be at least 30s"),
    ("infradeployments", "spec.source.git.ref", None,
     _deployment({"git": {"url": "https://example.com/r.git", "ref": {"branch": "main", "tag": "v1"}}}),
     "set at most one of branch, tag or commit"),
    ("infradeployments", "spec.source.inline", None,
     _deployment({"inline": {"a.tf": "x" * 40000, "b.tf": "y" * 40000}}),
     "inline files may hold at most 65536 characters in all: move the module to a ConfigMap (configMapRef) or a "
     "git repository"),
    ("permissionrequests", "spec.approval", None,
     _permission(errorMessage="denied", approval={"approved": True, "denied": True, "statementDigest": "abcdef123456"}),
     "approved and denied cannot both be true"),
    ("permissionrequests", "spec.approval", None, _permission(errorMessage="denied", approval={"approved": True}),
     "approval.statementDigest is required when approval.approved is true"),
    ("permissionrequests", "spec", None, _permission(actions=[]), "set errorMessage or at least one action"),
    ("permissionrequests", "spec", _permission(actions=["s3:GetObject"], approval=_APPROVED),
     _permission(actions=["iam:*"], approval=_APPROVED),
     "projectRef, environment, errorMessage, actions, resources, principalArn, condition, policyName are frozen "
     "once approval.approved is true (the approval covers the proposed statement): set approval.approved to false "
     "first, or create a new object"),
    ("remediations", "spec", _remediation(approval={"approved": True, "assessmentDigest": "abcdef123456"}),
     _remediation(action="scale", parameters={"reservedConcurrency": 0},
                  approval={"approved": True, "assessmentDigest": "abcdef123456"}),
     "projectRef, environment, target, action, parameters, dryRun are frozen once approval.approved is true (the "
     "approval covers the assessed action): set approval.approved to false first, or create a new object"),
]


def test_every_rule_of_the_project_crds_has_a_refusal_case() -> None:
    declared = {
        (crd["spec"]["names"]["plural"], path, rule["message"])
        for crd in render_all().values()
        for version in crd["spec"]["versions"]
        for path, rule in cel.rules_of(version["schema"]["openAPIV3Schema"])
    }
    covered = {(plural, path, message) for plural, path, _, _, message in PROJECT_RULE_CASES}
    assert declared == covered


_KINDS = {"infradeployments": "InfraDeployment", "permissionrequests": "PermissionRequest",
          "remediations": "Remediation"}


@pytest.mark.parametrize(("plural", "path", "before", "spec", "message"), PROJECT_RULE_CASES)
def test_the_project_crd_rules_refuse_violations(
    cluster: EmulatedKubernetes, ns: str, plural: str, path: str, before: dict[str, Any] | None,
    spec: dict[str, Any], message: str,
) -> None:
    api = kubernetes.client.CustomObjectsApi(cluster.api_client())
    body = {"apiVersion": "devops.fractary.io/v1alpha1", "kind": _KINDS[plural], "metadata": {"name": "rule"},
            "spec": spec}
    with pytest.raises(kubernetes.client.ApiException) as refused:
        if before is None:
            api.create_namespaced_custom_object("devops.fractary.io", "v1alpha1", ns, plural, body)
        else:  # a transition rule: the old object is accepted, the change to it is not
            api.create_namespaced_custom_object("devops.fractary.io", "v1alpha1", ns, plural, {**body, "spec": before})
            api.patch_namespaced_custom_object("devops.fractary.io", "v1alpha1", ns, plural, "rule", {"spec": spec})
    assert refused.value.status == 422
    said = json.loads(refused.value.body)["message"]
    assert any(f'{path}: Invalid value: "{kind}": {message}' in said for kind in ("object", "string"))
    if before is not None:
        return
    fixed = copy.deepcopy(body)
    fixed["spec"] = {
        "permissionrequests": _permission(actions=["s3:GetObject"]),
        "infradeployments": _deployment({"git": {"url": "https://example.com/r.git", "ref": {"tag": "v1"}}}),
    }[plural]
    api.create_namespaced_custom_object("devops.fractary.io", "v1alpha1", ns, plural, fixed)


# --- size limits ---------------------------------------------------------------------------------


def test_annotations_over_256_kib_are_refused(cluster: EmulatedKubernetes, ns: str) -> None:
    big = {"metadata": {"name": "big", "annotations": {"a": "x" * (TOTAL_ANNOTATION_SIZE_LIMIT - 1)}}}
    assert create(core(cluster, ns, "configmaps"), big).status_code == 201  # exactly at the limit: 1 + 262143
    big["metadata"]["annotations"]["b"] = "y"
    big["metadata"]["name"] = "bigger"
    response = create(core(cluster, ns, "configmaps"), big)
    assert (response.status_code, response.json()["message"]) == (
        422, 'ConfigMap "bigger" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes'
    )


def test_request_bodies_over_3_mib_are_413(cluster: EmulatedKubernetes, ns: str) -> None:
    body = json.dumps({"metadata": {"name": "huge"}, "data": {"a": "x" * MAX_REQUEST_BODY_BYTES}})
    response = requests.post(core(cluster, ns, "configmaps"), data=body,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert (response.status_code, response.json()["reason"]) == (413, "RequestEntityTooLarge")
    assert response.json()["message"] == "Request entity too large: limit is 3145728"


def test_objects_over_the_etcd_limit_fail_like_etcd(cluster: EmulatedKubernetes, ns: str) -> None:
    url = widgets(cluster, ns)
    assert create(url, widget("grows", tags=["x" * 1000] * 1000)).status_code == 201  # ~1 MB: fits
    response = merge(widgets(cluster, ns, "grows"), {"spec": {"tags": ["x" * 1000] * (ETCD_MAX_REQUEST_BYTES // 1000)}})
    assert response.status_code == 500
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "etcdserver: request is too large", "code": 500}


# --- what the server fills in for built-ins ------------------------------------------------------


def test_secret_string_data_is_merged_into_data(cluster: EmulatedKubernetes, ns: str) -> None:
    body = {"metadata": {"name": "s"}, "data": {"a": base64.b64encode(b"1").decode()}, "stringData": {"b": "2"}}
    stored = create(core(cluster, ns, "secrets"), body).json()
    assert stored["type"] == "Opaque" and "stringData" not in stored
    assert {key: base64.b64decode(value).decode() for key, value in stored["data"].items()} == {"a": "1", "b": "2"}


def test_jobs_get_completion_defaults_and_a_selector(cluster: EmulatedKubernetes, ns: str) -> None:
    url = f"{cluster.url}/apis/batch/v1/namespaces/{ns}/jobs"
    body = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}],
                                                                       "restartPolicy": "Never"}}}}
    job = create(url, body).json()
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 1, 6)
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"


def test_a_projects_status_phase_outside_its_enum_is_refused(cluster: EmulatedKubernetes, ns: str) -> None:
    api = kubernetes.client.CustomObjectsApi(cluster.api_client())
    api.create_namespaced_custom_object("devops.fractary.io", "v1alpha1", ns, "devopsprojects", {
        "apiVersion": "devops.fractary.io/v1alpha1", "kind": "DevOpsProject", "metadata": {"name": "shop"},
        "spec": {"environments": [{"name": "test"}]}})
    with pytest.raises(kubernetes.client.ApiException) as refused:
        api.patch_namespaced_custom_object_status("devops.fractary.io", "v1alpha1", ns, "devopsprojects", "shop",
                                                  {"status": {"phase": "Hacked"}})
    assert refused.value.status == 422
    assert 'status.phase: Unsupported value: "Hacked"' in json.loads(refused.value.body)["message"]
    api.patch_namespaced_custom_object_status("devops.fractary.io", "v1alpha1", ns, "devopsprojects", "shop",
                                              {"status": {"phase": "Ready"}})
