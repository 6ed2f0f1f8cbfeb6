"""kstatus conditions: pure functions, no server."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devops_operator.api.common import Condition, ConditionStatus, StatusBase
from devops_operator.kube.conditions import (
    READY,
    RECONCILING,
    STALLED,
    get_condition,
    is_true,
    mark_ready,
    mark_reconciling,
    mark_stalled,
    remove_condition,
    rfc3339,
    set_condition,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=10)


def types(conditions: list[dict]) -> list[str]:
    return [c["type"] for c in conditions]


def test_new_condition_has_wire_fields_time_and_generation() -> None:
    result = set_condition([], "Drifted", ConditionStatus.FALSE, "NoDrift", "in sync", 3, now=T0)
    assert result == [
        {
            "type": "Drifted",
            "status": "False",
            "reason": "NoDrift",
            "message": "in sync",
            "observedGeneration": 3,
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ]


def test_reason_and_message_updates_keep_transition_time() -> None:
    first = set_condition([], READY, "False", "Planning", "running terraform plan", 1, now=T0)
    second = set_condition(first, READY, "False", "AwaitingApproval", "plan abc needs approval", 2, now=T1)
    (cond,) = second
    assert cond["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert (cond["reason"], cond["message"], cond["observedGeneration"]) == (
        "AwaitingApproval",
        "plan abc needs approval",
        2,
    )


def test_status_change_moves_transition_time() -> None:
    first = set_condition([], READY, "False", "Planning", "", 1, now=T0)
    second = set_condition(first, READY, "True", "Applied", "", 1, now=T1)
    third = set_condition(second, READY, "True", "Applied", "still fine", 1, now=T2)
    assert second[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"
    assert third[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"


def test_missing_transition_time_is_filled_even_without_status_change() -> None:
    broken = [{"type": READY, "status": "True", "reason": "Applied", "message": ""}]
    assert set_condition(broken, READY, "True", "Applied", "", 1, now=T0)[0]["lastTransitionTime"] == (
        "2024-05-01T12:00:00Z"
    )


def test_inputs_are_never_mutated() -> None:
    original = set_condition([], READY, "False", "Planning", "", 1, now=T0)
    snapshot = copy.deepcopy(original)
    set_condition(original, READY, "True", "Applied", "", 2, now=T1)
    mark_stalled(original, "InvalidSpec", "bad", 2, now=T1)
    assert original == snapshot


def test_order_is_stable_updates_in_place_and_new_types_appended() -> None:
    conditions = set_condition([], READY, "Unknown", "Progressing", "", 1, now=T0)
    conditions = set_condition(conditions, "Approved", "False", "Pending", "", 1, now=T0)
    conditions = set_condition(conditions, "Drifted", "False", "NoDrift", "", 1, now=T0)
    conditions = set_condition(conditions, READY, "True", "Applied", "", 1, now=T1)
    conditions = set_condition(conditions, "Approved", "True", "AutoApproved", "", 1, now=T1)
    assert types(conditions) == [READY, "Approved", "Drifted"]


def test_mark_reconciling_sets_ready_unknown_and_clears_stalled() -> None:
    stalled = mark_stalled([], "InvalidSpec", "region missing", 1, now=T0)
    result = mark_reconciling(stalled, "Planning", "running terraform plan", 2, now=T1)
    assert get_condition(result, STALLED) is None
    assert is_true(result, RECONCILING)
    ready = get_condition(result, READY)
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown",
        "Planning",
        "running terraform plan",
    )
    assert ready["lastTransitionTime"] == "2024-05-01T12:05:00Z"  # False -> Unknown is a transition


def test_mark_reconciling_can_keep_ready_false_while_retrying() -> None:
    result = mark_reconciling([], "RetryingApply", "attempt 2 of 5", 4, now=T0, ready=False)
    assert get_condition(result, READY)["status"] == "False"  # type: ignore[index]
    with pytest.raises(ValueError, match="Ready=True"):
        mark_reconciling([], ready=True)


def test_mark_ready_removes_reconciling_and_stalled() -> None:
    reconciling = mark_reconciling([], "Applying", "terraform apply", 1, now=T0)
    result = mark_ready(reconciling, "Applied", "3 resources", 1, now=T1)
    assert types(result) == [READY]  # Reconciling and Stalled exist only while True
    assert result[0]["status"] == "True"
    assert result[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"


def test_mark_stalled_sets_ready_false_with_same_reason_and_message() -> None:
    reconciling = mark_reconciling([], now=T0)
    result = mark_stalled(reconciling, "InvalidSpec", "spec.environment 'qa' is not defined", 7, now=T1)
    assert get_condition(result, RECONCILING) is None
    stalled, ready = get_condition(result, STALLED), get_condition(result, READY)
    assert stalled is not None and ready is not None
    assert stalled["status"] == "True" and ready["status"] == "False"
    for cond in (stalled, ready):
        assert cond["reason"] == "InvalidSpec"
        assert cond["message"] == "spec.environment 'qa' is not defined"
        assert cond["observedGeneration"] == 7


def test_domain_conditions_survive_trio_changes() -> None:
    conditions = set_condition([], "Approved", True, "AutoApproved", "dev auto-approves", 1, now=T0)
    conditions = set_condition(conditions, "Drifted", False, "NoDrift", "", 1, now=T0)
    for step in (
        lambda c: mark_reconciling(c, now=T1),
        lambda c: mark_stalled(c, "CostOverThreshold", "$900 > $500", 1, now=T1),
        lambda c: mark_ready(c, now=T2),
    ):
        conditions = step(conditions)
        assert is_true(conditions, "Approved")
        assert get_condition(conditions, "Drifted")["lastTransitionTime"] == "2024-05-01T12:00:00Z"  # type: ignore[index]
    assert types(conditions) == ["Approved", "Drifted", READY]


def test_get_is_true_and_remove() -> None:
    conditions = set_condition([], "Approved", "True", "Manual", "", None, now=T0)
    assert is_true(conditions, "Approved")
    assert not is_true(conditions, "Drifted")
    assert get_condition(conditions, "Drifted") is None
    assert "observedGeneration" not in conditions[0]  # generation None: field omitted
    assert remove_condition(conditions, "Approved") == []
    assert get_condition(None, READY) is None


def test_models_in_and_status_model_round_trip() -> None:
    models = [Condition(type="Approved", status=ConditionStatus.TRUE, reason="Manual", last_transition_time="x")]
    result = mark_ready(models, "Applied", "ok", 2, now=T0)
    status = StatusBase.model_validate({"observedGeneration": 2, "conditions": result})
    assert [c.type for c in status.conditions] == ["Approved", READY]
    assert status.to_wire()["conditions"][1]["lastTransitionTime"] == "2024-05-01T12:00:00Z"


def test_invalid_status_is_refused() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], READY, "yes", "R", "", 1)


def test_timestamps_are_rfc3339_utc_with_z() -> None:
    plus_two = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2024-05-01T12:00:00Z"
    assert rfc3339(plus_two, micro=True) == "2024-05-01T12:00:00.123456Z"
    assert rfc3339(datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00Z"  # naive taken as UTC
    assert rfc3339().endswith("Z")
    stamped = set_condition([], READY, "True", "Applied", "", 1)[0]["lastTransitionTime"]
    assert datetime.strptime(stamped, "%Y-%m-%dT%H:%M:%SZ")
