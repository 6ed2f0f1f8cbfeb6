"""The approval gate (pure): digests bind approvals, production never auto-approves, requests expire;
and the plan id that approvals name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_operator import approvals
from devops_operator.api.common import ApprovalState
from devops_operator.approvals import ApprovalRequest, GivenApproval, Safeguards, decide, safeguard, statement_digest
from devops_operator.durations import format_duration, parse_duration
from devops_operator.terraform.identity import inputs_digest, plan_id

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def request(**overrides: object) -> ApprovalRequest:
    values: dict[str, object] = {"subject": "plan", "digest": "p1", "requested_at": T0, "production": True,
                                 "auto_allowed": False, "how_to_approve": "kubectl patch ..."}
    values.update(overrides)
    return ApprovalRequest(**values)  # type: ignore[arg-type]


def test_an_approval_of_exactly_this_digest_approves_and_names_the_approver() -> None:
    decision = decide(request(), GivenApproval("p1", "alice"), T0)
    assert decision.approved and decision.state is ApprovalState.APPROVED
    assert decision.approved_by == "alice"
    assert decision.condition() == ("Approved", "True", "Approved", "the plan p1 was approved by alice")


def test_an_approval_of_another_digest_is_void_and_says_what_changed() -> None:
    decision = decide(request(digest="p2"), GivenApproval("p1", "alice"), T0)
    assert not decision.approved and decision.state is ApprovalState.VOID
    assert decision.reason == "DigestMismatch"
    assert "names p1, but the current plan is p2" in decision.message
    assert "production" in decision.message and "kubectl patch" in decision.message


def test_production_never_auto_approves_whatever_the_policy_says() -> None:
    assert decide(request(auto_allowed=True), GivenApproval(), T0).state is ApprovalState.PENDING
    auto = decide(request(production=False, auto_allowed=True), GivenApproval(), T0)
    assert auto.state is ApprovalState.AUTO_APPROVED and auto.approved_by == "auto-approve"


def test_pending_requests_expire_and_a_late_approval_approves_nothing() -> None:
    waiting = request(expires_after=timedelta(hours=24))
    pending = decide(waiting, GivenApproval(), T0 + timedelta(hours=23))
    assert pending.state is ApprovalState.PENDING and pending.expires_at == T0 + timedelta(hours=24)
    late = decide(waiting, GivenApproval("p1", "alice"), T0 + timedelta(hours=24))
    assert late.state is ApprovalState.EXPIRED and not late.approved
    assert "waited longer than expiresAfter (1d)" in late.message


def test_a_denial_wins() -> None:
    assert decide(request(production=False, auto_allowed=True), GivenApproval(denied=True), T0).state \
        is ApprovalState.DENIED
    assert decide(request(), GivenApproval("p1", "alice", denied=True), T0).state is ApprovalState.DENIED


def test_status_keeps_when_an_approval_was_first_seen() -> None:
    req = request()
    first = decide(req, GivenApproval("p1", "alice"), T0).status(req, T0)
    later = decide(req, GivenApproval("p1", "alice"), T0).status(req, T0 + timedelta(minutes=5), first)
    assert first.approved_at == later.approved_at == "2026-12-01T09:00:00Z"
    assert later.requested_at == "2026-12-01T09:00:00Z" and later.state == ApprovalState.APPROVED


def test_the_plan_id_names_content_revision_and_inputs_never_the_generation() -> None:
    inputs = inputs_digest(variables={"size": "s"}, vars_from=[{"kind": "Secret", "name": "db",
                                                                "resourceVersion": "7"}])
    base = plan_id(plan_digest="d1", source_revision="abc", inputs=inputs)
    assert len(base) == 16 and base == plan_id(plan_digest="d1", source_revision="abc", inputs=inputs)
    assert base != plan_id(plan_digest="d2", source_revision="abc", inputs=inputs)
    assert base != plan_id(plan_digest="d1", source_revision="abd", inputs=inputs)
    rotated = inputs_digest(variables={"size": "s"}, vars_from=[{"kind": "Secret", "name": "db",
                                                                 "resourceVersion": "8"}])
    assert base != plan_id(plan_digest="d1", source_revision="abc", inputs=rotated)
    # Key order does not matter: the digest is of canonical JSON.
    assert inputs_digest(variables={"a": 1, "b": 2}) == inputs_digest(variables={"b": 2, "a": 1})


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800),
                                                ("1.5h", 5400), ("250ms", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("text", ["", "5", "m", "1x", "1h 30m", "-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_statement_digest_covers_principal_actions_resources_and_condition() -> None:
    base = statement_digest("arn:aws:iam::1:role/deploy", ["s3:PutBucketTagging", "s3:GetBucketTagging"],
                            ["arn:aws:s3:::shop"], None)
    assert base == statement_digest("arn:aws:iam::1:role/deploy", ["s3:GetBucketTagging", "s3:PutBucketTagging"],
                                    ["arn:aws:s3:::shop"], {})  # order and an empty condition do not matter
    assert base != statement_digest("arn:aws:iam::1:role/admin", ["s3:PutBucketTagging", "s3:GetBucketTagging"],
                                    ["arn:aws:s3:::shop"], None)
    assert base != statement_digest("arn:aws:iam::1:role/deploy", ["s3:*"], ["arn:aws:s3:::shop"], None)
    assert base != statement_digest("arn:aws:iam::1:role/deploy", ["s3:PutBucketTagging", "s3:GetBucketTagging"],
                                    ["*"], None)
    assert base != statement_digest("arn:aws:iam::1:role/deploy", ["s3:PutBucketTagging", "s3:GetBucketTagging"],
                                    ["arn:aws:s3:::shop"], {"Bool": {"aws:SecureTransport": "true"}})


# --- production approvals expire by default; the safeguards of a manual approval ---------------------------


def test_production_requests_expire_after_a_day_unless_the_spec_says_otherwise() -> None:
    assert approvals.expiry(None, production=True) == timedelta(hours=24)
    assert approvals.expiry(None, production=False) is None
    assert approvals.expiry(timedelta(hours=2), production=True) == timedelta(hours=2)
    waiting = request(expires_after=approvals.expiry(None, production=True))
    assert decide(waiting, GivenApproval("p1", "alice"), T0 + timedelta(hours=24)).state is ApprovalState.EXPIRED


def test_a_manual_approval_is_refused_where_the_required_policies_are_not_enforced() -> None:
    approved = decide(request(), GivenApproval("p1", "alice"), T0)
    missing = Safeguards(policy_required=True, policy_enforced=False, policy_message="the policies are missing")
    refused = safeguard(approved, missing)
    assert not refused.approved and refused.state is ApprovalState.PENDING and refused.approved_by is None
    assert refused.condition()[:3] == ("Approved", "False", "ApprovalPolicyNotEnforced")
    assert "the approval by alice is refused" in refused.message and "the policies are missing" in refused.message
    # Not required, or enforced: the approval stands. Auto-approvals need no human, so no policy.
    assert safeguard(approved, Safeguards(policy_required=False, policy_enforced=False)).approved
    assert safeguard(approved, Safeguards(policy_required=True, policy_enforced=True)).approved
    auto = decide(request(production=False, auto_allowed=True), GivenApproval(), T0)
    assert safeguard(auto, missing).state is ApprovalState.AUTO_APPROVED
    pending = decide(request(), GivenApproval(), T0)
    assert safeguard(pending, missing) == pending


def test_the_two_person_rule_refuses_the_specs_author_and_an_unknown_author() -> None:
    approved = decide(request(), GivenApproval("p1", "alice"), T0)
    rule = {"distinct_approver": True, "distinct_where": "namespace shop is labelled"}
    own = safeguard(approved, Safeguards(**rule, spec_changed_by="alice"))  # type: ignore[arg-type]
    assert own.reason == "SameApprover" and "alice last changed the spec" in own.message
    unknown = safeguard(approved, Safeguards(**rule, spec_changed_by=None))  # type: ignore[arg-type]
    assert unknown.reason == "SpecAuthorUnknown" and "devops.fractary.io/spec-changed-by" in unknown.message
    assert safeguard(approved, Safeguards(**rule, spec_changed_by="bob")).approved  # type: ignore[arg-type]
    assert safeguard(approved, Safeguards(spec_changed_by="alice")).approved  # the rule is off
