"""The registry of pre-deployment checks run in the Testing phase (a data table; empty until checks land).

A check takes the plan summary and the deployment's settings and returns PASS, WARN or FAIL with
findings. The deployment-safety work registers Checkov, the cost estimate, naming and required tags here;
until then Testing passes and says that no check is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devops_operator.api.infradeployment import CheckResult, PreDeploymentTests
from devops_operator.terraform.planjson import PlanSummary


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: str  # CheckResult
    findings: list[Mapping[str, Any]] = field(default_factory=list)  # {"severity": ..., "message": ...}
    message: str = ""


Check = Callable[[PlanSummary, PreDeploymentTests], CheckOutcome]

CHECKS: dict[str, Check] = {}

NO_CHECK_REGISTERED = "no pre-deployment check is registered: the gate passes"


@dataclass(frozen=True)
class GateResult:
    status: str
    gate_passed: bool
    checks: list[CheckOutcome]
    message: str


def run_checks(summary: PlanSummary, settings: PreDeploymentTests,
               registry: Mapping[str, Check] | None = None) -> GateResult:
    """Every registered check over the plan; the gate fails on a finding of a failOn severity (pure)."""
    checks = CHECKS if registry is None else registry
    if not settings.enabled:
        return GateResult(CheckResult.PASS, True, [], "pre-deployment tests are disabled (spec.tests.pre.enabled)")
    if not checks:
        return GateResult(CheckResult.PASS, True, [], NO_CHECK_REGISTERED)
    outcomes = [check(summary, settings) for _name, check in sorted(checks.items())]
    fail_on = {str(s) for s in settings.fail_on}
    blocking = [f for o in outcomes for f in o.findings if str(f.get("severity")) in fail_on]
    status = (CheckResult.FAIL if any(o.status == CheckResult.FAIL for o in outcomes) or blocking else
              CheckResult.WARN if any(o.status == CheckResult.WARN for o in outcomes) else CheckResult.PASS)
    message = (f"{len(blocking)} finding(s) of a failOn severity block approval" if blocking else
               f"{len(outcomes)} check(s): {status}")
    return GateResult(status, not blocking and status != CheckResult.FAIL, outcomes, message)
