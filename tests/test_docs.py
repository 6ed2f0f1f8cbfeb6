"""The documentation that lists what the code decides stays what the code decides."""

from __future__ import annotations

import re
from pathlib import Path

from devops_operator.api.actions import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def test_the_permissions_table_is_the_action_registry() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    rows = re.findall(r"^\| (\w+) \| ([a-z-]+) \| (\w+) \| (\w+) \| (`.+`) \|$", text, re.MULTILINE)
    documented = {(a, t): (level, inverse, tuple(re.findall(r"`([^`]+)`", perms)))
                  for a, t, level, inverse, perms in rows}
    expected = {(spec.name, target.resource_type.value):
                (target.interruption.value, spec.inverse.action if spec.inverse else "none", target.permissions)
                for spec in REGISTRY for target in spec.targets}
    assert documented == expected


def test_every_stalled_reason_of_the_runtime_kinds_is_in_troubleshooting() -> None:
    from devops_operator.ops.investigation import service as investigation
    from devops_operator.ops.remediation import service as remediation
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    reasons = {value for module in (investigation, remediation) for name, value in vars(module).items()
               if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z]+", value)}
    reasons |= {"ActionFailed", "VerificationFailed", "RolledBack", "RollbackFailed", "InterruptedUncertain",
                "AwaitingApproval", "DigestMismatch", "ProjectNotReady", "ProjectNotFound"}
    missing = sorted(reason for reason in reasons if f"`{reason}`" not in text)
    assert not missing, f"not in docs/troubleshooting.md: {missing}"


def test_the_readme_kind_table_is_what_the_operator_reconciles() -> None:
    import kopf

    import devops_operator.handlers  # noqa: F401  (registers every controller)
    from devops_operator.api import ALL_KINDS
    from devops_operator.api.common import API_GROUP
    from devops_operator.controllers.unreconciled import UNRECONCILED_KINDS

    text = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \(`\w+`\) \| .+ \| (yes|not yet) \|$", text, re.MULTILINE))
    registry = kopf.get_default_registry()
    handled = {handler.selector.any_name for handler in registry._changing.get_all_handlers()
               if handler.selector is not None and handler.selector.group == API_GROUP}
    placeholders = {info.plural for info in UNRECONCILED_KINDS}
    expected = {info.kind: "yes" if info.plural in handled - placeholders else "not yet" for info in ALL_KINDS}
    assert table == expected
    assert placeholders <= handled  # a kind without a controller still says so in its status
