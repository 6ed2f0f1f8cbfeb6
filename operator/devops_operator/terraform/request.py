"""What the operator asks one runner Job to do, and what the runner reports back (the Job's contract).

The request travels in the Job's environment (DEVOPS_RUN_REQUEST, JSON); secret values never do: vars
from Secrets are named, and the runner reads them through the API. The result comes back in a
Secret named after the Job (`<job>-result`), owned by the InfraDeployment, so it outlives the pod.

A Secret, never a ConfigMap: the result carries the tail of the runner's log and the error text, and
Terraform's plan output shows every value not marked sensitive (a Lambda's environment, an ECS container
definition, user data), which key-name redaction cannot recognise. ConfigMaps are readable with
Kubernetes' `view` role; Secrets are not. The whole result goes there (not a split into "safe" facts
and the log): one object, one write and one read, and no list of fields to get wrong. What the operator
copies from it into status is bounded and redacted.

The result is the runner's report, and the runner runs the tenant's code: the operator takes no plan
count, plan id or resource from it on trust (deploy/results.py reads the sha-verified plan artefact and
the backend's state, and records where the report differs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

REQUEST_ENV = "DEVOPS_RUN_REQUEST"
# The deployment's plan-digest key (hex), from a Secret the operator creates and owns (a secretKeyRef: the
# value is never in the Job's spec): sensitive values are folded into the plan digest as HMACs under it.
PLAN_KEY_ENV = "DEVOPS_PLAN_DIGEST_KEY"
PLAN_KEY_SECRET_KEY = "key"
RESULT_KEY = "result.json"
LOG_KEY = "runner.log"
RESULT_SUFFIX = "-result"
# Bounds of what a result carries (it lives in a Secret, and parts of it are copied into status).
MAX_RESULT_CHANGES = 2000
MAX_RESULT_RESOURCES = 2000
MAX_LOG_LINES = 200
MAX_LOG_CHARS = 32_000


@dataclass
class RunRequest:
    step: str  # plan | apply | destroy (a destroy plan, applied by a later apply) | drift (plan, not kept)
    deployment: str
    namespace: str
    owner: dict[str, Any]  # apiVersion, kind, name, uid of the InfraDeployment (for ownerReferences)
    source: dict[str, Any]  # spec.source on the wire, plus "artifact" for Flux sources
    module_path: str
    engine: str  # terraform | tofu
    engine_version: str | None
    backend_override: dict[str, Any]
    variables: dict[str, Any]  # environment's and spec.variables (literal values only)
    environment_variables: dict[str, Any] = field(default_factory=dict)
    var_files: list[str] = field(default_factory=list)
    vars_from: list[dict[str, Any]] = field(default_factory=list)
    inputs_digest: str = ""
    replan: int = 0  # plans re-made for this spec (stale or expired): part of the plan id
    version_constraint: str | None = None  # spec.terraformVersion: the engine must satisfy it
    plan_id: str | None = None  # apply: the approved plan
    plan_sha256: str | None = None  # apply: the artefact's recorded digest
    source_revision: str | None = None  # apply: the revision that was planned
    artifact_secret: str | None = None
    outputs_config_map: str | None = None
    outputs_secret: str | None = None
    output_names: list[str] = field(default_factory=list)
    inputs_snapshot_secret: str | None = None
    region: str | None = None
    # destroy (and the apply of a destroy plan): variables and source come from the snapshot Secret written
    # at the last apply, so a destroy works after the variables' ConfigMaps or Secrets are gone.
    from_snapshot: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_env(cls, text: str) -> RunRequest:
        return cls(**json.loads(text))


def plan_key_secret(deployment: str) -> str:
    """The Secret holding a deployment's plan-digest key (owned by the deployment)."""
    return f"{deployment}-plan-digest-key"[:253]


def plan_key_env(deployment: str) -> dict[str, Any]:
    """The runner's env entry for the key: a reference to the Secret, never the value."""
    return {"name": PLAN_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": plan_key_secret(deployment),
                                                                  "key": PLAN_KEY_SECRET_KEY}}}


def result_name(job_name: str) -> str:
    return f"{job_name}{RESULT_SUFFIX}"[:253]
