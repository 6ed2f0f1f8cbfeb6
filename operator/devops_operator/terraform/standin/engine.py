"""Plan and apply for the stand-in: refresh from AWS, diff against the module, write Terraform's JSON.

A plan is made from what AWS says now (each resource type's `read`), so drift shows; its JSON is in
Terraform's format (resource_changes with before/after/after_unknown/*_sensitive, output_changes,
prior_state), and the saved plan remembers the state's lineage and serial so an apply against a state
that moved since is refused as "Saved plan is stale", as Terraform does.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devops_operator.terraform.standin.expressions import (
    UNKNOWN,
    EvaluationError,
    evaluate,
    has_unknown,
)
from devops_operator.terraform.standin.module import Module, ModuleError, Resource
from devops_operator.terraform.standin.resources import TYPES, Aws

ENGINE_VERSION = "1.9.8"  # what the stand-in reports; keep equal to cli.ENGINE_VERSION
FORMAT_VERSION = "1.2"
PROVIDER = "registry.terraform.io/hashicorp/aws"
# Test hook, as moto has its own: seconds to wait before each resource operation (to interrupt an apply).
DELAY_ENV = "DEVOPS_STANDIN_OPERATION_DELAY"
# Test hook: seconds each resource operation takes once started (a slow AWS call): a signal cannot cut it short,
# as Terraform finishes the resource in flight; only SIGKILL can, and then the resource may exist unrecorded.
IN_FLIGHT_ENV = "DEVOPS_STANDIN_OPERATION_SECONDS"
# Terraform (1.5+) persists the state during a long apply every TF_STATE_PERSIST_INTERVAL seconds (default 20),
# besides at the end and when interrupted: what a SIGKILL leaves is the last state persisted.
PERSIST_INTERVAL_ENV = "TF_STATE_PERSIST_INTERVAL"
DEFAULT_PERSIST_INTERVAL = 20.0


class StalePlan(Exception):
    """The state changed since the plan was made."""


class Interrupted(Exception):
    """Stopped by a signal between two resource operations; `state` holds what was done so far."""

    def __init__(self, state: dict[str, Any], message: str = "the operation was interrupted") -> None:
        super().__init__(message)
        self.state = state


class ApplyFailed(Interrupted):
    """A resource operation failed; `state` holds what was done before it (saved, as Terraform does)."""


@dataclass
class PlannedResource:
    address: str
    type: str
    name: str
    actions: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    after_unknown: dict[str, Any]
    sensitive: set[str] = field(default_factory=set)


def _strip_unknown(value: Any) -> tuple[Any, Any]:
    """(value with unknowns as None, the after_unknown shape)."""
    if value is UNKNOWN:
        return None, True
    if isinstance(value, dict):
        pairs = {k: _strip_unknown(v) for k, v in value.items()}
        known = {k: p[0] for k, p in pairs.items()}
        unknown = {k: p[1] for k, p in pairs.items() if p[1] not in (False, {}, [])}
        return known, unknown
    if isinstance(value, list):
        pairs_list = [_strip_unknown(v) for v in value]
        return [p[0] for p in pairs_list], [p[1] for p in pairs_list] if any(p[1] for p in pairs_list) else []
    return value, False


def convert_variable(name: str, type_text: str | None, value: Any) -> Any:
    """Terraform's type conversion for the common primitive types; others pass as given."""
    kind = (type_text or "any").replace("${", "").replace("}", "").strip()
    try:
        if kind == "string":
            if isinstance(value, (dict, list)):
                raise ValueError("a string is required")
            return "true" if value is True else "false" if value is False else str(value)
        if kind == "number":
            return value if isinstance(value, (int, float)) and not isinstance(value, bool) else (
                float(value) if "." in str(value) else int(value))
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value) in ("true", "false"):
                return str(value) == "true"
            raise ValueError("a bool is required")
        if kind.startswith(("list", "set", "tuple")) and not isinstance(value, list):
            raise ValueError("a list is required")
        if kind.startswith(("map", "object")) and not isinstance(value, dict):
            raise ValueError("a map is required")
    except (TypeError, ValueError) as exc:
        raise ModuleError(f'Error: Invalid value for input variable "{name}": {exc} (type {kind})') from None
    return value


class Engine:
    def __init__(self, module: Module, inputs: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> None:
        self.module = module
        self.env = dict(os.environ if env is None else env)
        self.variables = self._variables(inputs)
        self.sensitive_variables = {n for n, v in module.variables.items() if v.sensitive}
        self._locals: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self.values: dict[str, dict[str, Any]] = {}  # address -> planned/applied attributes
        provider = {k: self._eval(v, "provider.aws") for k, v in module.provider.items()}
        self.region = str(provider.get("region") or self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION")
                          or "us-east-1")
        endpoints = (provider.get("endpoints") or [{}])
        endpoints = endpoints[0] if isinstance(endpoints, list) and endpoints else endpoints
        default_tags = provider.get("default_tags") or [{}]
        default_tags = default_tags[0] if isinstance(default_tags, list) and default_tags else default_tags
        self.default_tags: dict[str, str] = dict((default_tags or {}).get("tags") or {})
        self.aws = Aws(self.region, endpoints=endpoints or {}, module_dir=module.directory)

    # -- evaluation ---------------------------------------------------------------------------------

    def _variables(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = {}
        for name, variable in self.module.variables.items():
            env_value = self.env.get(f"TF_VAR_{name}")
            if name in inputs:
                raw = inputs[name]
            elif env_value is not None:
                raw = env_value
            elif variable.has_default:
                raw = evaluate(variable.default, self._no_refs, f"variable.{name}")
            else:
                raise ModuleError(f'Error: No value for required variable "{name}": set it in the deployment\'s '
                                  "variables, varsFrom or varFiles")
            values[name] = convert_variable(name, variable.type, raw)
        return values

    @staticmethod
    def _no_refs(parts: Any) -> Any:
        raise EvaluationError(f"variable defaults may not refer to {'.'.join(parts)}")

    def _resolve(self, parts: Sequence[str]) -> Any:
        root = parts[0]
        if root == "var":
            return self.variables[parts[1]]
        if root == "local":
            name = parts[1]
            if name not in self._locals:
                if name in self._evaluating:
                    raise ModuleError(f"Error: Cycle in local.{name}")
                self._evaluating.add(name)
                self._locals[name] = evaluate(self.module.locals[name], self._resolve, f"local.{name}")
                self._evaluating.discard(name)
            return self._locals[name]
        if root == "path" and len(parts) > 1:
            return str(self.module.directory) if parts[1] in ("module", "root", "cwd") else None
        if root == "terraform" and parts[1:] == ["workspace"]:
            return "default"
        address = ".".join(parts[:2])
        if address in self.values:
            return self.values[address]
        raise EvaluationError(f"unknown reference {'.'.join(parts)}")

    def _eval(self, value: Any, where: str) -> Any:
        try:
            return evaluate(value, self._resolve, where)
        except EvaluationError as exc:
            raise ModuleError(f"Error: {where}: {exc}") from exc

    def _sensitive_arguments(self, resource: Resource) -> set[str]:
        found = set()
        for key, value in resource.body.items():
            if any(f"var.{name}" in json.dumps(value) for name in self.sensitive_variables):
                found.add(key)
        return found

    def desired(self, resource: Resource) -> dict[str, Any]:
        spec = TYPES[resource.type]
        args = {k: self._eval(v, resource.address) for k, v in resource.body.items()}
        values = {**{k: copy.deepcopy(v) for k, v in spec.arguments.items()}, **args}
        for block in ("attribute", "environment"):
            if block in values and isinstance(values[block], dict):
                values[block] = [values[block]]
        if spec.taggable:
            tags = values.get("tags") or {}
            values["tags_all"] = UNKNOWN if has_unknown(tags) else {**self.default_tags, **tags}
        return values

    # -- plan ---------------------------------------------------------------------------------------

    def refresh(self, state: Mapping[str, Any] | None) -> dict[str, dict[str, Any] | None]:
        """Every resource of the state as AWS has it now (None: gone)."""
        refreshed: dict[str, dict[str, Any] | None] = {}
        for entry in (state or {}).get("resources") or []:
            address = f"{entry['type']}.{entry['name']}"
            attributes = (entry.get("instances") or [{}])[0].get("attributes") or {}
            spec = TYPES.get(entry["type"])
            refreshed[address] = spec.read(self.aws, attributes) if spec else attributes
            if refreshed[address] is not None and spec is not None:
                kept = {k: attributes.get(k) for k in ("tags", "force_destroy", "filename") if k in attributes}
                refreshed[address] = {**kept, **(refreshed[address] or {})}
        return refreshed

    def plan(self, state: Mapping[str, Any] | None, *, destroy: bool = False) -> dict[str, Any]:
        """The plan's `show -json` document."""
        refreshed = self.refresh(state)
        changes: list[PlannedResource] = []
        configured = set() if destroy else set(self.module.resources)
        if not destroy:
            for resource in self.module.order():
                changes.append(self._plan_resource(resource, refreshed.get(resource.address)))
        for address, before in refreshed.items():
            if address not in configured and before is not None:
                resource_type, name = address.split(".", 1)
                changes.append(PlannedResource(address, resource_type, name, ["delete"], before, None, {}))
        outputs = {} if destroy else self._plan_outputs()
        prior_outputs = {n: o.get("value") for n, o in ((state or {}).get("outputs") or {}).items()}
        return self._plan_document(changes, outputs, prior_outputs, state, refreshed)

    def _plan_resource(self, resource: Resource, before: dict[str, Any] | None) -> PlannedResource:
        spec = TYPES[resource.type]
        wanted = self.desired(resource)
        sensitive = self._sensitive_arguments(resource)
        if before is None:
            after = {**wanted, **{c: UNKNOWN for c in spec.computed}}
            actions = ["create"]
        else:
            compared = [k for k, v in wanted.items() if (v is not None and k != "tags") or k == "tags_all"]
            changed = [k for k in compared if _differs(before.get(k), wanted.get(k))]
            if not changed:
                after, actions = {**wanted, **before, "tags": wanted.get("tags")}, ["no-op"]
            elif any(k in spec.force_new for k in changed):
                after = {**wanted, **{c: UNKNOWN for c in spec.computed}}
                actions = ["delete", "create"]
            else:
                after = {**before, **wanted, **{c: before.get(c) for c in spec.computed}}
                actions = ["update"]
        self.values[resource.address] = after
        known, unknown = _strip_unknown(after)
        return PlannedResource(resource.address, resource.type, resource.name, actions, before, known,
                               unknown if isinstance(unknown, dict) else {}, sensitive)

    def _plan_outputs(self) -> dict[str, tuple[Any, bool]]:
        return {name: (self._eval(out.value, f"output.{name}"), out.sensitive)
                for name, out in sorted(self.module.outputs.items())}

    def _plan_document(self, changes: list[PlannedResource], outputs: Mapping[str, tuple[Any, bool]],
                       prior_outputs: Mapping[str, Any], state: Mapping[str, Any] | None,
                       refreshed: Mapping[str, Any]) -> dict[str, Any]:
        resource_changes = []
        planned = []
        for change in changes:
            mark = {k: True for k in change.sensitive}
            resource_changes.append({
                "address": change.address, "mode": "managed", "type": change.type, "name": change.name,
                "provider_name": PROVIDER,
                "change": {"actions": change.actions, "before": change.before, "after": change.after,
                           "after_unknown": change.after_unknown,
                           "before_sensitive": mark if change.before is not None else False,
                           "after_sensitive": mark if change.after is not None else False},
            })
            if change.after is not None:
                planned.append({"address": change.address, "mode": "managed", "type": change.type,
                                "name": change.name, "provider_name": PROVIDER, "schema_version": 0,
                                "values": change.after, "sensitive_values": mark})
        output_changes = {}
        planned_outputs = {}
        for name, (value, sensitive) in outputs.items():
            known, unknown = _strip_unknown(value)
            before = prior_outputs.get(name)
            action = "create" if name not in prior_outputs else ("no-op" if known == before and not unknown
                                                                  else "update")
            output_changes[name] = {"actions": [action], "before": before, "after": known,
                                    "after_unknown": unknown, "before_sensitive": sensitive,
                                    "after_sensitive": sensitive}
            planned_outputs[name] = {"sensitive": sensitive, **({"value": known} if not unknown else {})}
        for name, before in prior_outputs.items():
            if name not in outputs:
                output_changes[name] = {"actions": ["delete"], "before": before, "after": None,
                                        "after_unknown": False, "before_sensitive": False, "after_sensitive": False}
        return {
            "format_version": FORMAT_VERSION,
            "terraform_version": ENGINE_VERSION,
            "variables": {n: {"value": v} for n, v in sorted(self.variables.items())},
            "planned_values": {"outputs": planned_outputs, "root_module": {"resources": planned}},
            "resource_changes": resource_changes,
            "output_changes": output_changes,
            "prior_state": show_state(_refreshed_state(state, refreshed)) if state else None,
            "configuration": {"provider_config": {"aws": {"name": "aws", "full_name": PROVIDER}},
                              "root_module": {"resources": [{"address": r.address, "type": r.type, "name": r.name}
                                                            for r in self.module.resources.values()]}},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "errored": False,
        }

    # -- apply --------------------------------------------------------------------------------------

    def apply(self, plan: Mapping[str, Any], state: Mapping[str, Any] | None, *,
              should_stop: Callable[[], bool] = lambda: False,
              progress: Callable[[str], None] = lambda line: None, destroy: bool = False,
              persist: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Carry out the plan's changes; returns the new state (also when interrupted: see Interrupted).

        `persist` gets the state so far after a resource operation once the persist interval has passed
        since the last one, as Terraform's intermediate state snapshots."""
        current = {f"{e['type']}.{e['name']}": e for e in (state or {}).get("resources") or []}
        attributes = {a: (e.get("instances") or [{}])[0].get("attributes") or {} for a, e in current.items()}
        changes = {c["address"]: c for c in plan.get("resource_changes") or []}
        delay = float(self.env.get(DELAY_ENV) or 0)
        in_flight = float(self.env.get(IN_FLIGHT_ENV) or 0)
        interval = float(self.env.get(PERSIST_INTERVAL_ENV) or DEFAULT_PERSIST_INTERVAL)
        persisted_at = time.monotonic()
        prior = state

        def snapshot() -> None:
            nonlocal persisted_at, prior
            if persist is not None and time.monotonic() - persisted_at >= interval:
                prior = self._state(prior, attributes, final=False)
                persist(prior)
                persisted_at = time.monotonic()
        order = [r.address for r in self.module.order()] if self.module.resources else []
        deletions = _dependents_first([a for a, c in changes.items() if c["change"]["actions"] == ["delete"]],
                                      current)
        interrupted = False
        try:
            for address in [*deletions, *[a for a in order if a in changes and a not in deletions]]:
                if should_stop() or not _wait(delay, should_stop):
                    interrupted = True
                    break
                actions = changes[address]["change"]["actions"]
                resource_type = changes[address]["type"]
                spec = TYPES[resource_type]
                if actions == ["no-op"]:
                    self.values[address] = attributes.get(address) or {}
                    continue
                if actions == ["delete"]:
                    progress(f"{address}: Destroying...")
                    time.sleep(in_flight)
                    spec.delete(self.aws, attributes[address])
                    attributes.pop(address, None)
                    progress(f"{address}: Destruction complete")
                    snapshot()
                    continue
                resource = self.module.resources[address]
                wanted = self.desired(resource)
                if has_unknown(wanted):
                    raise ModuleError(f"Error: {address}: a value is still unknown at apply time")
                if "delete" in actions:
                    progress(f"{address}: Destroying...")
                    spec.delete(self.aws, attributes[address])
                if actions == ["update"]:
                    progress(f"{address}: Modifying...")
                    time.sleep(in_flight)
                    result = spec.update(self.aws, attributes[address], wanted)
                    progress(f"{address}: Modifications complete")
                else:
                    progress(f"{address}: Creating...")
                    time.sleep(in_flight)
                    result = spec.create(self.aws, wanted)
                    progress(f"{address}: Creation complete [id={result.get('id')}]")
                attributes[address] = {**wanted, **result, "tags": wanted.get("tags")}
                self.values[address] = attributes[address]
                snapshot()
        except Exception as exc:  # an AWS refusal: keep what was done, then report it
            partial = self._state(prior, attributes, final=False)
            raise ApplyFailed(partial, f"Error: {type(exc).__name__}: {exc}") from exc
        new_state = self._state(prior, attributes, final=not interrupted, destroy=destroy)
        if interrupted:
            raise Interrupted(new_state)
        return new_state

    def _state(self, previous: Mapping[str, Any] | None, attributes: Mapping[str, dict[str, Any]],
               *, final: bool, destroy: bool = False) -> dict[str, Any]:
        resources = []
        for address, values in sorted(attributes.items()):
            resource_type, name = address.split(".", 1)
            resource = self.module.resources.get(address)
            resources.append({
                "mode": "managed", "type": resource_type, "name": name, "provider": f'provider["{PROVIDER}"]',
                "instances": [{"schema_version": 0, "attributes": values,
                               "sensitive_attributes": sorted(self._sensitive_arguments(resource)) if resource else [],
                               "dependencies": self.module.dependencies(resource) if resource else []}],
            })
        outputs: dict[str, Any] = {}
        if destroy:
            outputs = {}
        elif final:
            for name, out in sorted(self.module.outputs.items()):
                value = self._eval(out.value, f"output.{name}")
                outputs[name] = {"value": value, "type": _type_of(value), **({"sensitive": True} if out.sensitive
                                                                             else {})}
        else:
            outputs = dict((previous or {}).get("outputs") or {})
        return {
            "version": 4, "terraform_version": ENGINE_VERSION,
            "serial": int((previous or {}).get("serial") or 0) + 1,
            "lineage": (previous or {}).get("lineage") or str(uuid.uuid4()),
            "outputs": outputs, "resources": resources, "check_results": None,
        }


def _dependents_first(addresses: list[str], state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Deletions ordered so a resource goes before whatever it depends on (the state records dependencies)."""
    ordered: list[str] = []

    def visit(address: str, seen: frozenset[str]) -> None:
        if address in ordered or address in seen:
            return
        for other in addresses:
            deps = ((state.get(other) or {}).get("instances") or [{}])[0].get("dependencies") or []
            if address in deps:
                visit(other, seen | {address})
        ordered.append(address)

    for address in sorted(addresses):
        visit(address, frozenset())
    return ordered


def _wait(seconds: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep `seconds` unless asked to stop; False when stopped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if should_stop():
            return False
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return True


def _differs(actual: Any, wanted: Any) -> bool:
    if wanted is UNKNOWN or has_unknown(wanted):
        return True
    if isinstance(wanted, list) and isinstance(actual, list) and all(isinstance(x, dict) for x in wanted + actual):
        key = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731
        return sorted(map(key, actual)) != sorted(map(key, wanted))
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool) and actual is not None:
        try:
            return float(actual) != float(wanted)
        except (TypeError, ValueError):
            return True
    if wanted in ({}, None) and actual in ({}, None):
        return False
    if isinstance(wanted, str) and isinstance(actual, str) and wanted.startswith(("{", "[")):
        try:
            return bool(json.loads(wanted) != json.loads(actual))
        except ValueError:
            return wanted != actual
    return bool(actual != wanted)


def _type_of(value: Any) -> Any:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return ["tuple", [_type_of(v) for v in value]]
    if isinstance(value, dict):
        return ["object", {k: _type_of(v) for k, v in value.items()}]
    return "dynamic"


def _refreshed_state(state: Mapping[str, Any] | None, refreshed: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(state or {}))
    kept = []
    for entry in result.get("resources") or []:
        address = f"{entry['type']}.{entry['name']}"
        if refreshed.get(address) is None:
            continue
        entry["instances"][0]["attributes"] = refreshed[address]
        kept.append(entry)
    result["resources"] = kept
    return result


def show_state(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """`terraform show -json` of a state: the `values` format shared with plans' prior_state."""
    state = state or {}
    resources = []
    for entry in state.get("resources") or []:
        instance = (entry.get("instances") or [{}])[0]
        resources.append({
            "address": f"{entry['type']}.{entry['name']}", "mode": entry.get("mode", "managed"),
            "type": entry["type"], "name": entry["name"], "provider_name": PROVIDER,
            "schema_version": instance.get("schema_version", 0), "values": instance.get("attributes") or {},
            "sensitive_values": {k: True for k in instance.get("sensitive_attributes") or []},
            "depends_on": instance.get("dependencies") or [],
        })
    outputs = {n: {"sensitive": bool(o.get("sensitive")), "value": o.get("value"), "type": o.get("type")}
               for n, o in (state.get("outputs") or {}).items()}
    return {"format_version": "1.0", "terraform_version": state.get("terraform_version", ENGINE_VERSION),
            "values": {"outputs": outputs, "root_module": {"resources": resources}}}


def output_json(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """`terraform output -json`."""
    return {n: {"sensitive": bool(o.get("sensitive")), "type": o.get("type"), "value": o.get("value")}
            for n, o in ((state or {}).get("outputs") or {}).items()}
