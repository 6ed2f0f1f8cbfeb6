"""Evaluating the shipped ValidatingAdmissionPolicies with a CEL evaluator (cel-python), as the API
server would: variables in order, then each validation, with `object`, `oldObject`, `request` and an
`authorizer` answering from a table of RBAC grants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celpy
import yaml
from celpy import celtypes

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "config/admission"
POLICY_FILE = POLICY_DIR / "approvals.yaml"

Grant = tuple[str, str, str | None, str]  # (resource, namespace, name or None for all, verb)


def policies() -> dict[str, dict[str, Any]]:
    """The policies of the shipped file, by the one resource each matches."""
    found = {}
    for doc in yaml.safe_load_all(POLICY_FILE.read_text()):
        if doc["kind"] == "ValidatingAdmissionPolicy":
            (rule,) = doc["spec"]["matchConstraints"]["resourceRules"]
            (resource,) = rule["resources"]
            found[resource] = doc
    return found


def shipped() -> list[dict[str, Any]]:
    """Every object of every file in config/admission/ (what `kubectl apply -f config/admission/` installs)."""
    return [doc for path in sorted(POLICY_DIR.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def policy_named(name: str) -> dict[str, Any]:
    (found,) = [doc for doc in shipped()
                if doc["kind"] == "ValidatingAdmissionPolicy" and doc["metadata"]["name"] == name]
    return found


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    """Kubernetes' CEL strings library: list.join(separator)."""
    return celtypes.StringType(str(separator).join(str(item) for item in items))


class _Nullable(celtypes.MapType):
    """A map that may be compared with null, as Kubernetes CEL allows for `oldObject` (cel-python does not)."""

    def __eq__(self, other: Any) -> Any:
        return celtypes.BoolType(False) if other is None else super().__eq__(other)

    def __ne__(self, other: Any) -> Any:
        return celtypes.BoolType(True) if other is None else super().__ne__(other)

    __hash__ = celtypes.MapType.__hash__


class _Check(celtypes.MapType):
    """One authorizer.group(..).resource(..)... chain being built."""


def _with(key: str) -> Any:
    def build(target: Any, value: Any) -> _Check:
        data = dict(target)
        data[celtypes.StringType(key)] = value
        return _Check(data)
    return build


@dataclass
class Verdict:
    allowed: bool
    messages: list[str] = field(default_factory=list)


def _resource(policy: Mapping[str, Any], obj: Mapping[str, Any]) -> str:
    """The plural the request is for: the object's kind's (all of ours are kind + "s"), else the policy's first."""
    if obj.get("kind"):
        return f"{str(obj['kind']).lower()}s"
    return str(policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"][0])


def admit(policy: Mapping[str, Any], obj: Mapping[str, Any], old: Mapping[str, Any] | None, *,
          user: str, grants: Iterable[Grant]) -> Verdict:
    namespace = obj["metadata"].get("namespace", "default")
    resource = _resource(policy, obj)
    matched = {r for rule in policy["spec"]["matchConstraints"]["resourceRules"] for r in rule["resources"]}
    assert resource in matched, f"the policy does not match {resource} (only {sorted(matched)})"
    granted = set(grants)

    def allowed(check: Any) -> celtypes.BoolType:
        resource = str(check.get(celtypes.StringType("resource"), ""))
        name = check.get(celtypes.StringType("name"))
        verb = str(check.get(celtypes.StringType("verb"), ""))
        ns = str(check.get(celtypes.StringType("namespace"), ""))
        return celtypes.BoolType((resource, ns, None, verb) in granted or (resource, ns, str(name), verb) in granted)

    functions = {"group": _with("group"), "resource": _with("resource"), "namespace": _with("namespace"),
                 "name": _with("name"), "subresource": _with("subresource"), "check": _with("verb"),
                 "allowed": allowed, "join": _join}
    env = celpy.Environment()
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(obj),
        "oldObject": _Nullable(celpy.json_to_cel(old)) if old is not None else None,
        "request": celpy.json_to_cel({
            "namespace": namespace, "name": obj["metadata"].get("name", ""),
            "operation": "UPDATE" if old is not None else "CREATE",
            "resource": {"group": "devops.fractary.io", "version": "v1alpha1", "resource": resource},
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
        }),
        "authorizer": _Check({}),
    }

    def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
        program = env.program(env.compile(expression), functions=functions)
        return program.evaluate({**activation, "variables": celtypes.MapType(
            {celtypes.StringType(k): v for k, v in variables.items()})})

    variables: dict[str, Any] = {}
    for variable in policy["spec"].get("variables", []):
        variables[variable["name"]] = evaluate(variable["expression"], variables)
    messages = []
    for validation in policy["spec"]["validations"]:
        if not evaluate(validation["expression"], variables):
            messages.append(str(evaluate(validation["messageExpression"], variables)))
    return Verdict(allowed=not messages, messages=messages)
