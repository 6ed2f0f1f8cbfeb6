"""The resource registry of one project environment: registry.json and DEPLOYED.md (pure document logic).

The document lives in one ConfigMap per project and environment, written through `kube/store.py`'s
optimistic concurrency, so several deployments record their resources without losing each other's
entries: every function here is a pure function of the document it is given (the store may call it
again after a conflict). A resource claimed by two deployments stays with its first owner and is reported
as a conflict on both.

Document shape:
    {"resources": {key: entry}, "deployments": {"ns/name": {"lastApply": {...}, "previousApply": {...}}}}
where `key` is the ARN, or `<type>:<id>` for resources without one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devops_operator.deploy.consoles import console_link
from devops_operator.terraform.planjson import Change, StateResource

REGISTRY_KEY = "registry.json"
DEPLOYED_KEY = "DEPLOYED.md"
# One deployment's share of its environment's registry (one ConfigMap, at most 1 MiB, shared by every
# deployment of the project environment): past it, the first ones by address are recorded and the rest is a
# truncation marker, so a deployment with too many resources (or a runner that reports too many) can neither
# fill the ConfigMap for the others nor crowd their entries out.
MAX_RESOURCES_PER_DEPLOYMENT = 500
MAX_CHANGES_PER_DEPLOYMENT = 200  # changes listed under lastApply (DEPLOYED.md's rollback section)


def registry_name(project: str, environment: str) -> str:
    return f"{project}-{environment}-registry"[:253]


def resource_key(resource: StateResource) -> str:
    return resource.arn or f"{resource.type}:{resource.id or resource.address}"


@dataclass(frozen=True)
class Conflict:
    key: str
    address: str | None
    other: str  # the other deployment, namespace/name


def empty() -> dict[str, Any]:
    return {"resources": {}, "deployments": {}}


def _normalised(document: Any) -> dict[str, Any]:
    doc: dict[str, Any] = dict(copy.deepcopy(document)) if isinstance(document, Mapping) else empty()
    doc.setdefault("resources", {})
    doc.setdefault("deployments", {})
    return doc


def record_apply(
    document: Any,
    *,
    deployment: str,
    resources: Sequence[StateResource],
    changes: Sequence[Change],
    plan_id: str,
    revision: str | None,
    engine: str,
    at: str,
    max_resources: int = MAX_RESOURCES_PER_DEPLOYMENT,
) -> dict[str, Any]:
    """The document after `deployment` applied `plan_id` and now manages exactly `resources`.

    Entries other deployments own are never removed or taken over: a resource they own gets a claim (a
    conflict). Past `max_resources`, only the first by address are recorded, and the deployment's record says
    how many there were (`resourcesTruncated`)."""
    doc = _normalised(document)
    entries: dict[str, Any] = doc["resources"]
    total = len(resources)
    resources = sorted(resources, key=lambda r: r.address)[:max_resources]
    keys = {resource_key(r) for r in resources}
    # What this deployment no longer manages leaves the registry (or its claim on it does).
    for key in list(entries):
        entry = entries[key]
        claims = [c for c in entry.get("claimedBy") or [] if c.get("deployment") != deployment or key in keys]
        entry["claimedBy"] = claims
        if entry.get("deployment") == deployment and key not in keys:
            if claims:  # the next claimant becomes the owner
                first = claims.pop(0)
                entry.update(deployment=first["deployment"], address=first.get("address"))
            else:
                del entries[key]
        elif not claims:
            entry.pop("claimedBy", None)
    for resource in resources:
        key = resource_key(resource)
        existing = entries.get(key)
        record = {
            "address": resource.address, "type": resource.type, "name": resource.name, "id": resource.id,
            "arn": resource.arn, "region": resource.region, "tags": dict(resource.tags),
        }
        if existing is None or existing.get("deployment") == deployment:
            first = (existing or {}).get("firstApplied") or at
            claims = (existing or {}).get("claimedBy") or []
            entries[key] = {**record, "deployment": deployment, "firstApplied": first, "lastApplied": at,
                            **({"claimedBy": claims} if claims else {})}
        else:
            claims = [c for c in existing.get("claimedBy") or [] if c.get("deployment") != deployment]
            claims.append({"deployment": deployment, "address": resource.address, "at": at})
            existing["claimedBy"] = claims
    previous = (doc["deployments"].get(deployment) or {}).get("lastApply")
    listed = [{"address": c.address, "action": c.action} for c in changes[:MAX_CHANGES_PER_DEPLOYMENT]]
    doc["deployments"][deployment] = {
        "lastApply": {
            "planId": plan_id, "revision": revision, "engine": engine, "at": at, "changes": listed,
            **({"changesTotal": len(changes)} if len(changes) > len(listed) else {}),
        },
        **({"previousApply": {k: previous.get(k) for k in ("planId", "revision", "at")}} if previous else {}),
        **({"resourcesTruncated": {"recorded": len(resources), "total": total}} if total > len(resources) else {}),
    }
    return doc


def truncation_of(document: Any, deployment: str) -> dict[str, int] | None:
    """{"recorded", "total"} when `deployment` manages more resources than its share records, else None."""
    found = ((_normalised(document)["deployments"].get(deployment) or {}).get("resourcesTruncated"))
    return dict(found) if isinstance(found, Mapping) else None


def forget_deployment(document: Any, deployment: str) -> dict[str, Any]:
    """The document without `deployment`'s resources and claims (its infrastructure was destroyed)."""
    doc = record_apply(document, deployment=deployment, resources=[], changes=[], plan_id="", revision=None,
                       engine="", at="")
    doc["deployments"].pop(deployment, None)
    return doc


def record_abandon(document: Any, *, deployment: str, at: str, by: str | None, reason: str) -> dict[str, Any]:
    """The document after `deployment` was deleted without destroying: its resources still exist in AWS.

    They leave the managed resources (nothing manages them now) and are kept under `abandoned`, with when,
    who and why, so DEPLOYED.md still lists what is left to clean up by hand.
    """
    doc = _normalised(document)
    left = [{k: entry.get(k) for k in ("address", "type", "id", "arn", "region")} | {"key": key}
            for key, entry in sorted(doc["resources"].items()) if entry.get("deployment") == deployment]
    doc = forget_deployment(doc, deployment)
    doc.setdefault("abandoned", {})[deployment] = {"at": at, "by": by, "reason": reason, "resources": left}
    return doc


def conflicts_of(document: Any, deployment: str) -> list[Conflict]:
    """Resources `deployment` shares with another deployment, from either side."""
    found: list[Conflict] = []
    for key, entry in sorted(_normalised(document)["resources"].items()):
        claims = entry.get("claimedBy") or []
        if entry.get("deployment") == deployment:
            found.extend(Conflict(key, entry.get("address"), c["deployment"]) for c in claims)
        else:
            found.extend(Conflict(key, c.get("address"), str(entry.get("deployment")))
                         for c in claims if c.get("deployment") == deployment)
    return found


def resources_of(document: Any, deployment: str) -> list[dict[str, Any]]:
    return [e for e in _normalised(document)["resources"].values() if e.get("deployment") == deployment]


def _escape(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def render_deployed_md(document: Any, *, title: str) -> str:
    """DEPLOYED.md: resources grouped by type with console links, conflicts, and rollback instructions."""
    doc = _normalised(document)
    entries = sorted(doc["resources"].items(), key=lambda item: (item[1].get("type", ""), item[1].get("address", "")))
    lines = [f"# Deployed resources: {title}", "",
             f"{len(entries)} resource(s) from {len(doc['deployments'])} deployment(s).", ""]
    current_type = None
    for _key, entry in entries:
        if entry.get("type") != current_type:
            current_type = entry.get("type")
            lines += ["", f"## {current_type}", "", "| address | id | region | deployment | console |",
                      "|---|---|---|---|---|"]
        link = console_link(str(entry.get("type")), entry.get("region"), entry.get("id"), entry.get("arn"))
        shown = f"[open]({link})" if link else "-"
        lines.append(f"| {_escape(entry.get('address'))} | {_escape(entry.get('id'))} | "
                     f"{_escape(entry.get('region'))} | {_escape(entry.get('deployment'))} | {shown} |")
    contested = [(k, e) for k, e in entries if e.get("claimedBy")]
    if contested:
        lines += ["", "## Conflicts", ""]
        for key, entry in contested:
            others = ", ".join(c["deployment"] for c in entry["claimedBy"])
            lines.append(f"- `{_escape(key)}` is managed by {entry.get('deployment')} and also claimed by {others}: "
                         "remove it from all but one deployment's module (or `terraform state rm` it there)")
    abandoned = doc.get("abandoned") or {}
    if abandoned:
        lines += ["", "## Abandoned", "",
                  "Deleted without destroying (devops.fractary.io/abandon): these still exist in AWS and nothing "
                  "manages them; remove them by hand or import them into another deployment.", ""]
        for name, record in sorted(abandoned.items()):
            who = f" by {record.get('by')}" if record.get("by") else ""
            lines.append(f"- {name}, at {record.get('at')}{who} ({_escape(record.get('reason'))}):")
            for entry in record.get("resources") or []:
                lines.append(f"  - `{_escape(entry.get('address'))}` {_escape(entry.get('arn') or entry.get('id'))}")
    lines += ["", "## Rollback", ""]
    for name, record in sorted(doc["deployments"].items()):
        last = record.get("lastApply") or {}
        previous = record.get("previousApply")
        changed = ", ".join(f"{c['action']} {c['address']}" for c in (last.get("changes") or [])[:20]) or "nothing"
        lines.append(f"### {name}")
        lines.append("")
        cut = record.get("resourcesTruncated")
        if isinstance(cut, Mapping):
            lines.append(f"**Truncated:** this deployment manages {cut.get('total')} resources; only the first "
                         f"{cut.get('recorded')} (by address) are recorded here, the share one deployment may take "
                         "of this registry.")
            lines.append("")
        lines.append(f"Last apply: plan {last.get('planId')} (revision {last.get('revision')}, "
                     f"{last.get('engine')}) at {last.get('at')}; it changed: {changed}.")
        if previous:
            lines.append(f"To revert, point the deployment's source back to revision {previous.get('revision')} "
                         f"(applied as plan {previous.get('planId')}): the operator makes a new plan that undoes "
                         "this apply; review and approve its plan id as for any plan.")
        else:
            lines.append("This was the first apply: to revert, remove the resources from the module (or delete the "
                         "deployment with destroyOnDelete) and approve the resulting destroy plan.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
