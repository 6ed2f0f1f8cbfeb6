"""The API: pydantic models of every kind's spec and status, and the registry of kinds.

`ALL_KINDS` is the one list of kinds: crdgen renders a CRD for each, the operator and the emulated
API server register them, and the CLI resolves names through `kind_by_name`.
"""

from __future__ import annotations

from devops_operator.api import (
    costaudit,
    devopsproject,
    healthcheck,
    infradeployment,
    investigation,
    permissionrequest,
    remediation,
)
from devops_operator.api.common import (
    API_GROUP,
    API_VERSION,
    DURATION_PATTERN,
    GROUP_VERSION,
    Condition,
    ConditionStatus,
    KindInfo,
    LocalObjectReference,
    Model,
    NamespacedReference,
    Phase,
    PrinterColumn,
    ProjectReference,
    SecretKeyReference,
    StatusBase,
    standard_columns,
)

ALL_KINDS: tuple[KindInfo, ...] = (
    devopsproject.KIND,
    infradeployment.KIND,
    healthcheck.KIND,
    remediation.KIND,
    investigation.KIND,
    costaudit.KIND,
    permissionrequest.KIND,
)


def kind_by_name(kind: str) -> KindInfo:
    """The kind named by its Kind (`InfraDeployment`), plural, singular or short name, in any case."""
    wanted = kind.strip().lower()
    for info in ALL_KINDS:
        names = {
            info.kind.lower(),
            info.plural,
            info.singular,
            *(short.lower() for short in info.short_names),
        }
        if wanted in names:
            return info
    known = ", ".join(info.kind for info in ALL_KINDS)
    raise KeyError(f"unknown kind {kind!r}; known kinds: {known}")


__all__ = [
    "ALL_KINDS",
    "API_GROUP",
    "API_VERSION",
    "DURATION_PATTERN",
    "GROUP_VERSION",
    "Condition",
    "ConditionStatus",
    "KindInfo",
    "LocalObjectReference",
    "Model",
    "NamespacedReference",
    "Phase",
    "PrinterColumn",
    "ProjectReference",
    "SecretKeyReference",
    "StatusBase",
    "kind_by_name",
    "standard_columns",
]
