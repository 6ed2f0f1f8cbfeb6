"""InfraDeployment day 2, the pure decisions: drift findings, lock holders and releases, abandoned registry
entries, changed attributes in plan JSON, and the inputs digest of dependencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devops_operator.deploy import drift, locks, registry
from devops_operator.terraform.identity import inputs_digest
from devops_operator.terraform.planjson import StateResource, changed_attributes, summarize_plan


def test_changed_attributes_name_what_differs_without_values() -> None:
    change = {"before": {"name": "q", "tags": {"team": "a"}, "tags_all": {"team": "a"}, "delay_seconds": 0},
              "after": {"name": "q", "tags": {"team": "payments"}, "tags_all": {"team": "payments"},
                        "delay_seconds": 0}}
    assert changed_attributes(change) == ("tags",)  # tags_all mirrors tags
    assert changed_attributes({"before": None, "after": {"name": "q"}}) == ()  # a create names nothing
    assert changed_attributes({"before": {"arn": "x", "name": "q"}, "after": {"name": "r"},
                               "after_unknown": {"arn": True}}) == ("arn", "name")


def test_summarize_plan_carries_attributes_of_updates_only() -> None:
    plan = {"format_version": "1.2", "resource_changes": [
        {"address": "aws_sqs_queue.jobs", "type": "aws_sqs_queue", "name": "jobs",
         "change": {"actions": ["update"], "before": {"tags": {"a": "1"}}, "after": {"tags": {"a": "2"}}}},
        {"address": "aws_sqs_queue.gone", "type": "aws_sqs_queue", "name": "gone",
         "change": {"actions": ["create"], "before": None, "after": {"name": "gone"}}},
    ]}
    by_address = {c.address: c for c in summarize_plan(plan).changes}
    assert by_address["aws_sqs_queue.jobs"].attributes == ("tags",)
    assert by_address["aws_sqs_queue.gone"].attributes == ()


def test_drift_finding_names_deleted_and_changed_resources_and_is_bounded() -> None:
    finding = drift.drift_from_result([
        {"address": "aws_sqs_queue.jobs", "action": "update", "attributes": ["tags"]},
        {"address": "aws_sqs_queue.dead", "action": "create"},
    ])
    assert finding.detected and finding.count == 2 and not finding.truncated
    text = finding.describe()
    assert "aws_sqs_queue.jobs (tags changed)" in text and "aws_sqs_queue.dead (deleted outside Terraform)" in text
    many = drift.drift_from_result([{"address": f"aws_sqs_queue.q{i}", "action": "update",
                                     "attributes": [f"a{j}" for j in range(30)]} for i in range(80)],
                                   total=120)
    assert many.count == 120 and len(many.resources) == 50 and many.truncated
    assert len(many.resources[0]["attributes"]) == 20 and many.resources[0]["attributesTruncated"]
    assert not drift.drift_from_result([]).detected


def test_next_drift_check_counts_from_the_later_of_last_check_and_last_apply() -> None:
    applied = datetime(2026, 1, 1, 12, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert drift.next_check(None, applied, hour) == applied + hour
    assert drift.next_check(applied + 3 * hour, applied, hour) == applied + 4 * hour
    assert drift.next_check(applied - hour, applied, hour) == applied + hour  # a re-apply restarts the clock
    assert drift.next_check(None, None, hour) is None


def test_lock_holder_state_from_the_pod() -> None:
    assert locks.holder_pod("runner@app-apply-1234-abcde") == "app-apply-1234-abcde"
    assert locks.holder_pod("someone") is None and locks.holder_pod(None) is None
    assert locks.holder_state(None) == locks.HolderState.GONE
    running = {"status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}}
    exited = {"status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}]}}
    assert locks.holder_state(running) == locks.HolderState.RUNNING
    assert locks.holder_state(exited) == locks.HolderState.EXITED


def test_a_lock_is_released_only_when_its_pod_is_gone_and_only_the_one_named() -> None:
    gone, exited, running = locks.HolderState.GONE, locks.HolderState.EXITED, locks.HolderState.RUNNING
    # Never while the pod exists, whoever asks.
    for state in (running, exited):
        asked = locks.decide_release(lock_id="L1", state=state, pod="p", auto_release=True, requested="L1")
        assert not asked.release and "never released while its holder pod exists" in str(asked.refused)
        assert not locks.decide_release(lock_id="L1", state=state, pod="p", auto_release=True,
                                        requested=None).release
    # A request naming another lock releases nothing.
    wrong = locks.decide_release(lock_id="L1", state=gone, pod="p", auto_release=True, requested="L0")
    assert not wrong.release and "names lock 'L0'" in str(wrong.refused)
    # Gone: on the request naming it, or by policy; otherwise reported only.
    assert locks.decide_release(lock_id="L1", state=gone, pod="p", auto_release=False,
                                requested="L1") == locks.ReleaseDecision(True, "annotation", None)
    assert locks.decide_release(lock_id="L1", state=gone, pod="p", auto_release=True,
                                requested=None) == locks.ReleaseDecision(True, "auto", None)
    assert locks.decide_release(lock_id="L1", state=gone, pod="p", auto_release=False,
                                requested=None) == locks.ReleaseDecision(False, None, None)


def test_abandoned_resources_leave_the_managed_set_and_are_listed_for_cleanup() -> None:
    queue = StateResource(address="aws_sqs_queue.jobs", type="aws_sqs_queue", name="jobs", id="https://q/jobs",
                          arn="arn:aws:sqs:us-east-1:123456789012:jobs", region="us-east-1", tags={})
    doc = registry.record_apply(registry.empty(), deployment="ns/app", resources=[queue], changes=[],
                                plan_id="p1", revision="r1", engine="terraform", at="t1")
    doc = registry.record_abandon(doc, deployment="ns/app", at="t2", by="alice", reason="deleted with abandon")
    assert doc["resources"] == {} and "ns/app" not in doc["deployments"]
    record = doc["abandoned"]["ns/app"]
    assert record["by"] == "alice" and record["resources"][0]["arn"] == queue.arn
    text = registry.render_deployed_md(doc, title="shop / test")
    assert "## Abandoned" in text and queue.arn in text and "by alice" in text
    # Destroyed later by another deployment's apply: the record of what was abandoned stays.
    doc = registry.forget_deployment(doc, "ns/other")
    assert "ns/app" in doc["abandoned"]


def test_a_dependency_digest_changes_the_inputs_digest_and_none_keeps_old_digests() -> None:
    base = inputs_digest(variables={"a": 1})
    assert inputs_digest(variables={"a": 1}, dependencies={}) == base
    one = inputs_digest(variables={"a": 1}, dependencies={"ns/db": "d1"})
    assert one != base and one != inputs_digest(variables={"a": 1}, dependencies={"ns/db": "d2"})


def test_only_this_deployments_runner_pods_hold_a_lock_the_operator_may_call_stale() -> None:
    assert locks.is_runner_pod("web-apply-0123456789ab-x7k2q", "web")
    assert locks.is_runner_pod("web-drift-0123456789ab-abcde", "web")
    assert not locks.is_runner_pod("webshop-apply-0123456789ab-x7k2q", "web")
    assert not locks.is_runner_pod("laptop", "web") and not locks.is_runner_pod(None, "web")
    assert locks.holder_state(None, ours=False) == locks.HolderState.FOREIGN
    foreign = locks.decide_release(lock_id="L1", state=locks.HolderState.FOREIGN, pod="laptop", auto_release=True,
                                   requested="L1")
    assert not foreign.release and "force-unlock" in str(foreign.refused)
    assert not locks.decide_release(lock_id="L1", state=locks.HolderState.FOREIGN, pod=None, auto_release=True,
                                    requested=None).release


def test_deployments_of_one_name_in_two_namespaces_never_share_a_state_or_a_lock() -> None:
    from devops_operator.api.devopsproject import TerraformBackend
    from devops_operator.terraform.backends import resolve_backend

    shared = TerraformBackend.model_validate({"type": "kubernetes", "kubernetes": {"namespace": "tfstate"}})
    a = resolve_backend(shared, deployment="web", deployment_namespace="team-a", project_namespace="p",
                        region="us-east-1")
    b = resolve_backend(shared, deployment="web", deployment_namespace="team-b", project_namespace="p",
                        region="us-east-1")
    assert a.namespace == b.namespace == "tfstate" and a.secret_suffix != b.secret_suffix
    own = resolve_backend(TerraformBackend.model_validate({"type": "kubernetes"}), deployment="web",
                          deployment_namespace="team-a", project_namespace="p", region="us-east-1")
    assert own.namespace == "team-a" and own.secret_suffix.endswith("web")  # unchanged where it was unique


def test_a_wake_up_asked_for_twice_keeps_the_earlier_moment() -> None:
    from devops_operator.controllers.wakeups import Wakeups

    now = [0.0]
    wakeups = Wakeups(clock=lambda: now[0])
    wakeups.schedule_earliest("InfraDeployment", "ns", "web", 10.0)  # the next drift check
    wakeups.schedule_earliest("InfraDeployment", "ns", "web", 5.0)  # a window opening sooner
    wakeups.schedule_earliest("InfraDeployment", "ns", "web", 20.0)  # a retry later: 5 stands
    assert wakeups.scheduled("InfraDeployment", "ns", "web") == 5.0
    now[0] = 4.9
    assert wakeups.take_due() == []
    now[0] = 5.0
    assert wakeups.take_due() == [("InfraDeployment", "ns", "web")] and wakeups.take_due() == []
