"""What the operator believes of a runner's report: figures it computes itself, compared with what was reported.

The runner executes the tenant's module (providers, data sources and provisioners run at plan time), so its
result Secret is the tenant's word. Nothing that decides or shows anything is taken from it:

- the plan summary (add, change, destroy, replace, the changed addresses, the digest, hence the plan id)
  is computed from `plan.json` in the plan artefact, read back and checked against the sha256 the result
  names. That is the artefact the apply Job applies: the apply runner refuses a `plan.tfplan` whose own
  digest gives another plan id, so what reviewers and non-destructive auto-approval see is what is applied;
- the resources of an apply (the registry, verification, status.resourceCount) come from the state the
  backend holds: the Kubernetes backend's Secret `tfstate-<workspace>-<suffix>`, read with the operator's
  own rights. An S3 backend's state is not read by the operator (it would need the deploy identity's
  bucket access inside a handler): the runner's list is used there, and marked `reported`.

Where the runner's figures differ from the operator's, the operator's win and the difference is recorded (a
`RunnerResult` condition and a Warning Event), so a tampered or buggy runner is visible.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.deploy.registry import resource_key
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.secrets import read_secret
from devops_operator.terraform import artifacts
from devops_operator.terraform.backends import STATE_KEY, state_secret_name
from devops_operator.terraform.identity import plan_id
from devops_operator.terraform.planjson import (
    PlanFormatError,
    PlanSummary,
    StateResource,
    raw_state_resources,
    summarize_plan,
)
from devops_operator.terraform.request import PLAN_KEY_SECRET_KEY, RunRequest, plan_key_secret

CONDITION = "RunnerResult"
PLAN_JSON = "plan.json"
COUNTS = ("add", "change", "destroy", "replace")
FROM_STATE, REPORTED = "state", "reported"


class ResultError(Exception):
    """The runner's report cannot be checked: the artefact it names is missing, altered or not a plan."""


def plan_digest_key(api: ApiClient, namespace: str, deployment: str) -> bytes | None:
    """The deployment's plan-digest key, as the runner gets it (None before the operator made one)."""
    data = read_secret(api, namespace, plan_key_secret(deployment)) or {}
    raw = data.get(PLAN_KEY_SECRET_KEY)
    if not raw:
        return None
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise ResultError(f"the plan-digest key Secret {plan_key_secret(deployment)} is not the hex key the operator "
                          "writes (changed by hand): delete it and re-plan") from None


def read_plan(api: ApiClient, namespace: str, request: RunRequest, result: Mapping[str, Any]) -> PlanSummary:
    """The summary of the plan the result names, computed from its sha-verified artefact, with sensitive values
    bound under the deployment's plan-digest key as the runner binds them (so both compute one plan id)."""
    name, sha = result.get("artifactSecret"), result.get("artifactSha256")
    prefix = f"{request.artifact_secret}-"
    if not request.artifact_secret or not isinstance(name, str) or not isinstance(sha, str):
        raise ResultError("the runner reported no plan artefact (artifactSecret, artifactSha256)")
    if not name.startswith(prefix):  # only this deployment's artefacts: never another Secret of the namespace
        raise ResultError(f"the runner named plan artefact {name!r}, not one of this deployment's ({prefix}<plan id>)")
    try:
        files = artifacts.read(api, namespace, name, sha)
        key = plan_digest_key(api, namespace, request.deployment)
        return summarize_plan(json.loads(files[PLAN_JSON]), sensitive_key=key)
    except (artifacts.ArtifactError, PlanFormatError) as exc:
        raise ResultError(str(exc)) from None
    except (KeyError, ValueError, OSError):  # no plan.json, not JSON, not gzip
        raise ResultError(f"the plan artefact {name} holds no readable {PLAN_JSON}") from None


def computed_plan_id(summary: PlanSummary, request: RunRequest, result: Mapping[str, Any]) -> str:
    """The plan id of the verified plan, as the apply runner computes it from the saved plan (pure)."""
    return plan_id(plan_digest=summary.digest, source_revision=result.get("sourceRevision"),
                   inputs=request.inputs_digest, replan=request.replan)


def plan_differences(result: Mapping[str, Any], summary: PlanSummary, identifier: str) -> list[str]:
    """Where the runner's report of a plan differs from the operator's own reading (pure)."""
    found = []
    for key in COUNTS:
        if result.get(key) != getattr(summary, key):
            found.append(f"{key} {result.get(key)!r} reported, {getattr(summary, key)} in the artefact")
    if result.get("planDigest") != summary.digest:
        found.append(f"digest {result.get('planDigest')!r} reported, {summary.digest} computed")
    if result.get("planId") != identifier:
        found.append(f"plan id {result.get('planId')!r} reported, {identifier} computed")
    if result.get("changesTotal") not in (None, len(summary.changes)):
        found.append(f"{result.get('changesTotal')!r} changes reported, {len(summary.changes)} in the artefact")
    return found


def read_state(api: ApiClient, request: RunRequest) -> list[StateResource] | None:
    """The resources in the backend's state, read by the operator; None where it does not read the backend.

    An absent state Secret is an empty state (everything destroyed, or nothing applied yet)."""
    config = (request.backend_override.get("terraform") or {}).get("backend", {}).get("kubernetes")
    if not config:
        return None
    name = state_secret_name(config["secret_suffix"])
    try:
        secret = call_json(api, "GET", f"/api/v1/namespaces/{config['namespace']}/secrets/{name}",
                           timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    raw = ((secret or {}).get("data") or {}).get(STATE_KEY)
    if not raw:
        return []
    try:
        state = json.loads(gzip.decompress(base64.b64decode(raw)))
        return raw_state_resources(state, default_region=request.region)
    except (PlanFormatError, ValueError, OSError) as exc:
        raise ResultError(f"the state Secret {config['namespace']}/{name} is not a readable state: {exc}") from None


def reported_resources(result: Mapping[str, Any]) -> list[StateResource]:
    """The runner's list, for a backend the operator does not read; only known fields, as plain strings."""
    listed = []
    for item in result.get("resources") or []:
        if not isinstance(item, Mapping) or not item.get("address"):
            continue
        raw_tags = item.get("tags")
        tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, Mapping) else {}
        listed.append(StateResource(
            address=str(item["address"]), type=str(item.get("type") or ""), name=str(item.get("name") or ""),
            id=str(item["id"]) if item.get("id") is not None else None,
            arn=str(item["arn"]) if item.get("arn") is not None else None,
            region=str(item["region"]) if item.get("region") is not None else None,
            tags={str(k): str(v) for k, v in tags.items()}))
    return listed


def resource_differences(result: Mapping[str, Any], resources: Sequence[StateResource]) -> list[str]:
    """Where the runner's report of an apply's resources differs from the state the operator read (pure)."""
    found = []
    listed = [r for r in result.get("resources") or [] if isinstance(r, Mapping)]
    count = result.get("resourceCount", len(listed))
    if count != len(resources):
        found.append(f"{count!r} resources reported, {len(resources)} in the state")
    if count == len(listed):  # a complete list (the runner cuts long ones): compared by registry key (ARN)
        reported = {resource_key(r) for r in reported_resources(result)}
        held = {resource_key(r) for r in resources}
        if reported - held:
            found.append(f"reported but not in the state: {', '.join(sorted(reported - held)[:5])}")
        if held - reported:
            found.append(f"in the state but not reported: {', '.join(sorted(held - reported)[:5])}")
    return found


def condition(differences: Sequence[str], what: str) -> tuple[str, str, str, str]:
    """The RunnerResult condition after a check: True when the runner's report matched (pure)."""
    if not differences:
        return (CONDITION, "True", "Matches", f"the runner's report of the {what} matches what the operator read")
    return (CONDITION, "False", "Mismatch", f"the runner's report of the {what} differs from what the operator "
            f"read, and the operator's figures are used: {'; '.join(differences)}")
