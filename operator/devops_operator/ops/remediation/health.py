"""The target's health after an action, read through the HealthCheck evaluator.

Verification never judges metrics itself: it asks the one health evaluator
(`devops_operator.ops.health.service.check_resources`, the HealthCheck controller's) for the target's
verdict over the time since the action, with the referenced HealthCheck's metric settings when
`verification.healthCheckRef` names one, or the evaluator's built-in defaults for the resource type.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devops_operator.api.healthcheck import Verdict
from devops_operator.api.remediation import RemediationSpec
from devops_operator.projectrefs import ProjectAccess
from devops_operator.runtime import Runtime

EVALUATOR_MODULE = "devops_operator.ops.health.service"


@dataclass(frozen=True)
class HealthReading:
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    source: str = "built-in check"


def _evaluator() -> Any | None:
    try:
        module = importlib.import_module(EVALUATOR_MODULE)
    except ModuleNotFoundError:
        return None
    return getattr(module, "check_resources", None)


def read_target_health(runtime: Runtime, access: ProjectAccess, namespace: str, spec: RemediationSpec,
                       since: datetime, until: datetime) -> HealthReading:
    """The verdict of the Remediation's target between `since` and `until`."""
    check = _evaluator()
    if check is None:
        return HealthReading(Verdict.NO_DATA, [f"the health evaluator ({EVALUATOR_MODULE}) is not part of this build: "
                                               "the target cannot be verified"], "none")
    return HealthReading(Verdict.NO_DATA, ["the health evaluator's interface is not wired yet"], "none")
