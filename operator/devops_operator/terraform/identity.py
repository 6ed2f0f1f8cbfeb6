"""What a plan is, for approving it: its id and the digest of its inputs (pure).

The plan id a reviewer copies into `spec.approval.planId` names exactly what was reviewed: it is derived
from the saved plan's content digest, the source revision and the inputs digest. It never depends on
`metadata.generation` or on `spec.approval` itself, so writing the approval re-plans nothing and cannot
void itself (tofu-controller's approval loop), while any change to what would be applied gives a new id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devops_operator.digests import digest, short_digest

PLAN_ID_LENGTH = 16


def inputs_digest(
    *,
    variables: Mapping[str, Any],
    vars_from: Sequence[Mapping[str, Any]] = (),
    var_files: Sequence[str] = (),
    backend: Mapping[str, Any] | None = None,
    engine: str = "terraform",
    engine_version: str | None = None,
    environment_variables: Mapping[str, Any] | None = None,
    dependencies: Mapping[str, str] | None = None,
    runner: Mapping[str, Any] | None = None,
) -> str:
    """sha256 of everything besides the source that goes into a plan.

    `vars_from` entries name their object and its resourceVersion (`{"kind": "Secret", "name": ...,
    "resourceVersion": ...}`), never the values: a rotated Secret changes the digest without its content
    ever being hashed into something that leaves the operator. `dependencies` maps each spec.dependsOn
    deployment to the digest of its applied plan and outputs, so a dependency's new outputs re-plan.
    `runner` is what runs the plan and the apply and as whom: the image, resources and deadline, and each
    step's ServiceAccount and AWS identity (source, role, Secret name and resourceVersion, account), so a
    change to any of them while a plan waits for approval makes a new plan id.
    """
    extra: dict[str, Any] = {"dependencies": dict(dependencies)} if dependencies else {}  # absent: old digests hold
    if runner is not None:
        extra["runner"] = dict(runner)
    return digest({
        **extra,
        "variables": dict(variables),
        "varsFrom": [dict(item) for item in vars_from],
        "varFiles": list(var_files),
        "backend": dict(backend or {}),
        "engine": engine,
        "engineVersion": engine_version,
        "environment": dict(environment_variables or {}),
    })


def plan_id(*, plan_digest: str, source_revision: str | None, inputs: str, replan: int = 0) -> str:
    """The id of one plan: 16 hex digits (64 bits) of its content, revision and inputs digests.

    `replan` counts plans re-made for the same spec because the last one went stale or expired: the new
    plan may have the same content, but it was not reviewed, so it gets a new id and needs a new approval.
    """
    named: dict[str, object] = {"plan": plan_digest, "revision": source_revision, "inputs": inputs}
    if replan:
        named["replan"] = replan
    return short_digest(named, PLAN_ID_LENGTH)
