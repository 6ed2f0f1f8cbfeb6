"""Terraform's JSON output (`show -json` of a plan or a state), read into plain data (pure).

One parser for every engine: real Terraform, OpenTofu and the project's stand-in all write the format
of Terraform's "JSON Output Format" (format_version 0.1 to 1.x; the fields used here are stable across
them), and the recorded real outputs in tests/fixtures/terraform are checked by the same tests.

Sensitive values never leave this module unmasked: a plan's summary never holds them, and state outputs
are split into names (for status) and values (for the outputs ConfigMap or Secret only). A plan's digest
must still tell two plans apart that differ only in a sensitive value (issue 14, 13a: else one approval
approves both), so with the deployment's plan-digest key each `after_sensitive` / `before_sensitive` value
is folded into it as an HMAC-SHA256 under that key: the digest in status binds the value, and without the
key (which only the operator and the deployment's runner hold) nobody can test a guess against it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devops_operator.digests import digest

MASK = "(sensitive)"

# `actions` as Terraform writes them -> the one action the summary shows.
ACTIONS: dict[tuple[str, ...], str] = {
    ("create",): "create",
    ("update",): "update",
    ("delete",): "delete",
    ("create", "delete"): "replace",
    ("delete", "create"): "replace",
    ("read",): "read",
    ("no-op",): "no-op",
}
# Where summaries put each action first: what deserves a reviewer's eye leads the bounded list.
ACTION_ORDER = {"delete": 0, "replace": 1, "update": 2, "create": 3, "read": 4, "no-op": 5}


class PlanFormatError(ValueError):
    """The document is not Terraform plan or state JSON."""


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    name: str
    action: str
    module: str | None = None
    # Top-level attributes an update changes (names only): what drifted, for a plan of the applied inputs.
    attributes: tuple[str, ...] = ()


def changed_attributes(change: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level attribute names whose value differs between before and after, or is unknown after (pure)."""
    before, after = change.get("before"), change.get("after")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    raw_unknown = change.get("after_unknown")
    unknown: Mapping[str, Any] = raw_unknown if isinstance(raw_unknown, Mapping) else {}
    names = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    names |= {k for k, v in unknown.items() if v and before.get(k) is not None}
    # tags_all is the provider's view of tags (default tags merged in): a change there is a tag change, and
    # naming both says nothing more.
    if "tags_all" in names:
        names.discard("tags_all")
        names.add("tags")
    return tuple(sorted(names))


@dataclass(frozen=True)
class PlanSummary:
    """What a reviewer needs of a plan, and the digest an approval binds to."""

    digest: str
    changes: tuple[Change, ...]
    add: int
    change: int
    destroy: int
    replace: int
    terraform_version: str | None
    output_changes: tuple[str, ...] = ()

    @property
    def destructive(self) -> bool:
        return self.destroy > 0 or self.replace > 0

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.destroy or self.replace or self.output_changes)

    def describe(self) -> str:
        counts = f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"
        return f"{counts}, {self.replace} to replace" if self.replace else counts


def mask_sensitive(value: Any, sensitive: Any) -> Any:
    """`value` with every path that `sensitive` marks true replaced by MASK (Terraform's *_sensitive shape)."""
    if sensitive is True:
        return MASK if value is not None else None
    if isinstance(value, Mapping) and isinstance(sensitive, Mapping):
        return {key: mask_sensitive(item, sensitive.get(key, False)) for key, item in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [mask_sensitive(item, sensitive[i] if i < len(sensitive) else False) for i, item in enumerate(value)]
    return value


def sensitive_token(value: Any, key: bytes) -> str:
    """What a plan digest holds of one sensitive value: its HMAC-SHA256 under the deployment's key (pure)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{MASK}:{hmac.new(key, canonical, hashlib.sha256).hexdigest()}"


def fold_sensitive(value: Any, sensitive: Any, key: bytes | None) -> Any:
    """`value` as a digest sees it: each sensitive path as its keyed HMAC, or masked where there is no key."""
    if key is None:
        return mask_sensitive(value, sensitive)
    if sensitive is True:
        return sensitive_token(value, key) if value is not None else None
    if isinstance(value, Mapping) and isinstance(sensitive, Mapping):
        return {k: fold_sensitive(item, sensitive.get(k, False), key) for k, item in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [fold_sensitive(item, sensitive[i] if i < len(sensitive) else False, key)
                for i, item in enumerate(value)]
    return value


def _require_format(document: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(document, Mapping) or "format_version" not in document:
        raise PlanFormatError(f"not Terraform {what} JSON (no format_version): expected `terraform show -json` output")
    return document


def _action(actions: Sequence[str], address: str) -> str:
    try:
        return ACTIONS[tuple(actions)]
    except KeyError:
        raise PlanFormatError(f"{address}: unknown change actions {list(actions)}") from None


def summarize_plan(plan: Any, *, sensitive_key: bytes | None = None) -> PlanSummary:
    """Counts, the changed addresses (no-ops left out) and the digest of a plan's `show -json`.

    `sensitive_key`: the deployment's plan-digest key; sensitive values go into the digest as HMACs under it.
    Without one (a Job of an older operator, the stand-in's own summary) they are masked, as before.
    """
    document = _require_format(plan, "plan")
    changes: list[Change] = []
    masked: list[dict[str, Any]] = []
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    for item in document.get("resource_changes") or []:
        if item.get("mode", "managed") != "managed":
            continue
        address = str(item.get("address"))
        change = item.get("change") or {}
        action = _action(change.get("actions") or ["no-op"], address)
        if action in counts:
            counts[action] += 1
        masked.append({
            "address": address,
            "actions": list(change.get("actions") or []),
            "before": fold_sensitive(change.get("before"), change.get("before_sensitive", False), sensitive_key),
            "after": fold_sensitive(change.get("after"), change.get("after_sensitive", False), sensitive_key),
            "after_unknown": change.get("after_unknown"),
        })
        if action != "no-op":
            changes.append(Change(address, str(item.get("type")), str(item.get("name")), action,
                                  item.get("module_address"),
                                  changed_attributes(change) if action in ("update", "replace") else ()))
    outputs = []
    for name, change in sorted((document.get("output_changes") or {}).items()):
        actions = tuple((change or {}).get("actions") or ["no-op"])
        if actions != ("no-op",):
            outputs.append(name)
    changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.address))
    # The prior state is part of what was reviewed: a plan made against another state is another plan.
    prior = _masked_state_values((document.get("prior_state") or {}).get("values") or {}, sensitive_key)
    return PlanSummary(
        digest=digest({"resource_changes": masked, "outputs": outputs, "prior_state": prior}),
        changes=tuple(changes),
        add=counts["create"],
        change=counts["update"],
        destroy=counts["delete"],
        replace=counts["replace"],
        terraform_version=document.get("terraform_version"),
        output_changes=tuple(outputs),
    )


def _masked_state_values(values: Mapping[str, Any], key: bytes | None) -> dict[str, Any]:
    resources = [
        {"address": r.get("address"), "values": fold_sensitive(r.get("values"), r.get("sensitive_values", {}), key)}
        for r in iter_state_resources(values)
    ]
    return {"resources": resources}


def iter_state_resources(values: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every managed resource of a `values` tree, root module first, then child modules depth-first."""
    stack = [values.get("root_module") or {}]
    while stack:
        module = stack.pop(0)
        for resource in module.get("resources") or []:
            if resource.get("mode", "managed") == "managed":
                yield resource
        stack[0:0] = list(module.get("child_modules") or [])


@dataclass(frozen=True)
class StateResource:
    """One managed resource of a state, as the registry records it."""

    address: str
    type: str
    name: str
    id: str | None
    arn: str | None
    region: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StateOutputs:
    """Outputs of a state: values apart by sensitivity; only `names` and `sensitive_names` go into status."""

    values: dict[str, Any]
    sensitive_values: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return sorted(self.values)

    @property
    def sensitive_names(self) -> list[str]:
        return sorted(self.sensitive_values)


def _region_from_arn(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] or None if len(parts) > 3 and parts[0] == "arn" else None


def _state_resource(address: str, rtype: str, name: str, values: Mapping[str, Any],
                    default_region: str | None) -> StateResource:
    tags = values.get("tags_all") or values.get("tags") or {}
    arn = values.get("arn") if isinstance(values.get("arn"), str) else None
    region = _region_from_arn(arn) or values.get("region") or default_region
    return StateResource(
        address=address, type=rtype, name=name,
        id=str(values["id"]) if values.get("id") is not None else None,
        arn=arn,
        region=str(region) if region is not None else None,
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
    )


def state_resources(state: Any, *, default_region: str | None = None) -> list[StateResource]:
    """The managed resources of a state's `show -json` (sensitive attribute values are never read)."""
    document = _require_format(state, "state")
    found = []
    for resource in iter_state_resources(document.get("values") or {}):
        values = mask_sensitive(resource.get("values") or {}, resource.get("sensitive_values") or {})
        found.append(_state_resource(str(resource.get("address")), str(resource.get("type")),
                                     str(resource.get("name")), values, default_region))
    return found


def _sensitive_paths(marked: Any) -> dict[str, Any]:
    """A raw state instance's `sensitive_attributes` as a *_sensitive tree of its top-level names: Terraform
    writes paths (`[{"type": "get_attr", "value": "password"}, ...]`), the stand-in the names alone."""
    tree: dict[str, Any] = {}
    for path in marked if isinstance(marked, list) else []:
        if isinstance(path, str):
            tree[path] = True
        elif isinstance(path, list) and path and isinstance(path[0], Mapping) and path[0].get("value"):
            tree[str(path[0]["value"])] = True  # the whole top-level attribute: masking more is the safe side
    return tree


def _instance_address(entry: Mapping[str, Any], instance: Mapping[str, Any]) -> str:
    base = f"{entry.get('type')}.{entry.get('name')}"
    if entry.get("mode") == "data":
        base = f"data.{base}"
    if entry.get("module"):
        base = f"{entry['module']}.{base}"
    key = instance.get("index_key")
    if key is None:
        return base
    return f"{base}[{key}]" if isinstance(key, int) else f"{base}[{json.dumps(key)}]"


def raw_state_resources(state: Any, *, default_region: str | None = None) -> list[StateResource]:
    """The managed resources of a state file as a backend stores it (format version 4: what Terraform,
    OpenTofu and the stand-in write), read by the operator itself rather than taken from a runner's report."""
    if not isinstance(state, Mapping) or state.get("version") != 4:
        raise PlanFormatError("not a Terraform state file (version 4)")
    found = []
    for entry in state.get("resources") or []:
        if not isinstance(entry, Mapping) or entry.get("mode", "managed") != "managed":
            continue
        for instance in entry.get("instances") or []:
            if not isinstance(instance, Mapping):
                continue
            values = mask_sensitive(instance.get("attributes") or {},
                                    _sensitive_paths(instance.get("sensitive_attributes")))
            found.append(_state_resource(_instance_address(entry, instance), str(entry.get("type")),
                                         str(entry.get("name")), values, default_region))
    return found


def state_outputs(state: Any) -> StateOutputs:
    """The outputs of a state's `show -json` (or of `terraform output -json`, which has the same entries)."""
    if isinstance(state, Mapping) and "format_version" in state:
        outputs = (state.get("values") or {}).get("outputs") or {}
    elif isinstance(state, Mapping):
        outputs = state  # `terraform output -json`: {name: {sensitive, type, value}}
    else:
        raise PlanFormatError("not Terraform state or output JSON")
    plain = {n: o.get("value") for n, o in outputs.items() if not o.get("sensitive")}
    sensitive = {n: o.get("value") for n, o in outputs.items() if o.get("sensitive")}
    return StateOutputs(values=plain, sensitive_values=sensitive)


@dataclass(frozen=True)
class Verification:
    """Whether the applied state holds what the plan said it would."""

    checked: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.missing and not self.unexpected

    def describe(self) -> str:
        if self.passed:
            return f"the state holds all {self.checked} planned change(s)"
        parts = []
        if self.missing:
            parts.append(f"planned but not in the state: {', '.join(self.missing[:10])}")
        if self.unexpected:
            parts.append(f"planned for deletion but still in the state: {', '.join(self.unexpected[:10])}")
        return "; ".join(parts)


def verify_applied(changes: Sequence[Change], resources: Sequence[StateResource]) -> Verification:
    """Compare the applied state with the plan: created/updated/replaced present, deleted absent (pure)."""
    present = {r.address for r in resources}
    missing = tuple(c.address for c in changes if c.action in ("create", "update", "replace")
                    and c.address not in present)
    unexpected = tuple(c.address for c in changes if c.action == "delete" and c.address in present)
    return Verification(checked=len(changes), missing=missing, unexpected=unexpected)
