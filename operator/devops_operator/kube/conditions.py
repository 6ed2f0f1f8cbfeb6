"""Status conditions with kstatus semantics, as pure functions over plain data.

Argo CD and Flux judge health from three conditions (kstatus):
- `Ready`: the object reached its desired state (True), failed (False) or is undecided (Unknown);
- `Reconciling` (abnormal-true): work is in progress; present only while True;
- `Stalled` (abnormal-true): no progress is possible without a spec change; present only while True.

The `mark_*` helpers set the trio consistently; domain conditions (`Drifted`, `Approved`, ...)
go through `set_condition`. Every function returns a new list (inputs are never mutated),
keyed by condition `type` with a stable order: updates stay in place, new types are appended.
`lastTransitionTime` moves only when `status` changes, as metav1.Condition requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from devops_operator.api.common import Condition, ConditionStatus

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

# Wire names (camelCase) of metav1.Condition fields.
LAST_TRANSITION_TIME = "lastTransitionTime"
OBSERVED_GENERATION = "observedGeneration"

ConditionLike = Mapping[str, Any] | Condition
StatusLike = ConditionStatus | str | bool
TimeLike = datetime | str | None


def rfc3339(moment: datetime | None = None, *, micro: bool = False) -> str:
    """A UTC timestamp as Kubernetes writes it: `2024-05-01T12:00:00Z` (metav1.Time), or with
    microseconds (metav1.MicroTime). Naive datetimes are taken to be UTC."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _timestamp(now: TimeLike) -> str:
    return now if isinstance(now, str) else rfc3339(now)


def _status(value: StatusLike) -> str:
    if isinstance(value, bool):
        return ConditionStatus.TRUE.value if value else ConditionStatus.FALSE.value
    try:
        return ConditionStatus(value).value
    except ValueError:
        raise ValueError(f"condition status must be True, False or Unknown, not {value!r}") from None


def _as_dicts(conditions: Iterable[ConditionLike] | None) -> list[dict[str, Any]]:
    """Copies of the conditions as wire-format dicts (models are rendered camelCase)."""
    return [item.to_wire() if isinstance(item, Condition) else dict(item) for item in (conditions or [])]


def get_condition(conditions: Iterable[ConditionLike] | None, type: str) -> dict[str, Any] | None:
    """The condition of that type (a copy), or None."""
    for condition in _as_dicts(conditions):
        if condition.get("type") == type:
            return condition
    return None


def is_true(conditions: Iterable[ConditionLike] | None, type: str) -> bool:
    condition = get_condition(conditions, type)
    return condition is not None and condition.get("status") == ConditionStatus.TRUE.value


def remove_condition(conditions: Iterable[ConditionLike] | None, type: str) -> list[dict[str, Any]]:
    return [condition for condition in _as_dicts(conditions) if condition.get("type") != type]


def set_condition(
    conditions: Iterable[ConditionLike] | None,
    type: str,
    status: StatusLike,
    reason: str,
    message: str,
    generation: int | None,
    now: TimeLike = None,
) -> list[dict[str, Any]]:
    """Set one condition; the transition time changes only when the status does."""
    result = _as_dicts(conditions)
    new: dict[str, Any] = {"type": type, "status": _status(status), "reason": reason, "message": message}
    if generation is not None:
        new[OBSERVED_GENERATION] = generation
    for index, old in enumerate(result):
        if old.get("type") == type:
            same_status = old.get("status") == new["status"] and old.get(LAST_TRANSITION_TIME)
            new[LAST_TRANSITION_TIME] = old[LAST_TRANSITION_TIME] if same_status else _timestamp(now)
            result[index] = new
            return result
    new[LAST_TRANSITION_TIME] = _timestamp(now)
    result.append(new)
    return result


def mark_ready(
    conditions: Iterable[ConditionLike] | None,
    reason: str = "Succeeded",
    message: str = "",
    generation: int | None = None,
    now: TimeLike = None,
) -> list[dict[str, Any]]:
    """Ready=True; Reconciling and Stalled are removed (they exist only while True)."""
    result = set_condition(conditions, READY, ConditionStatus.TRUE, reason, message, generation, now)
    return remove_condition(remove_condition(result, RECONCILING), STALLED)


def mark_reconciling(
    conditions: Iterable[ConditionLike] | None,
    reason: str = "Progressing",
    message: str = "Reconciliation in progress",
    generation: int | None = None,
    now: TimeLike = None,
    *,
    ready: StatusLike = ConditionStatus.UNKNOWN,
) -> list[dict[str, Any]]:
    """Reconciling=True; Ready becomes Unknown (or False, e.g. while retrying after a failure)
    with the same reason and message; Stalled is removed (progress is being made)."""
    ready_status = _status(ready)
    if ready_status == ConditionStatus.TRUE.value:
        raise ValueError("an object still reconciling cannot be Ready=True")
    result = set_condition(conditions, RECONCILING, ConditionStatus.TRUE, reason, message, generation, now)
    result = set_condition(result, READY, ready_status, reason, message, generation, now)
    return remove_condition(result, STALLED)


def mark_stalled(
    conditions: Iterable[ConditionLike] | None,
    reason: str,
    message: str,
    generation: int | None = None,
    now: TimeLike = None,
) -> list[dict[str, Any]]:
    """Stalled=True and Ready=False with the same reason and message; Reconciling is removed."""
    result = set_condition(conditions, STALLED, ConditionStatus.TRUE, reason, message, generation, now)
    result = set_condition(result, READY, ConditionStatus.FALSE, reason, message, generation, now)
    return remove_condition(result, RECONCILING)
