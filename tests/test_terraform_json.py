"""Plan and state JSON: the recorded real Terraform outputs and the stand-in's go through the same parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devops_operator.terraform.planjson import (
    MASK,
    PlanFormatError,
    mask_sensitive,
    state_outputs,
    state_resources,
    summarize_plan,
    verify_applied,
)

FIXTURES = Path(__file__).parent / "fixtures" / "terraform"
PLANS = sorted(FIXTURES.glob("plan-*.json"))


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("path", PLANS, ids=[p.name for p in PLANS])
def test_every_recorded_plan_summarises(path: Path) -> None:
    plan = json.loads(path.read_text())
    summary = summarize_plan(plan)
    assert len(summary.digest) == 64
    assert summary.add + summary.change + summary.destroy + summary.replace == len(summary.changes)
    assert summary.terraform_version == plan["terraform_version"]


def test_counts_of_the_recorded_plans() -> None:
    assert summarize_plan(load("plan-55-aws-resources.tf0.12.json")).describe() == \
        "55 to add, 0 to change, 0 to destroy"
    replace = summarize_plan(load("plan-replace.tf1.2.json"))
    assert (replace.replace, replace.add, replace.destroy, replace.destructive) == (1, 0, 0, True)
    assert replace.changes[0].action == "replace"
    update = summarize_plan(load("plan-update.tf1.4.json"))
    assert (update.change, update.destructive) == (2, False)


def test_summary_puts_destructive_changes_first() -> None:
    plan = {"format_version": "1.2", "resource_changes": [
        {"address": "a.create", "type": "a", "name": "create", "change": {"actions": ["create"]}},
        {"address": "b.delete", "type": "b", "name": "delete", "change": {"actions": ["delete"]}},
        {"address": "c.same", "type": "c", "name": "same", "change": {"actions": ["no-op"]}},
    ]}
    assert [c.address for c in summarize_plan(plan).changes] == ["b.delete", "a.create"]


def test_without_a_key_the_digest_masks_sensitive_values_and_follows_content() -> None:
    # A Job of an operator before issue 14 (13a); with the key, tests/test_plan_digest_sensitive.py.
    def plan(secret: str, name: str = "x") -> dict:
        return {"format_version": "1.2", "resource_changes": [{
            "address": "aws_x.y", "type": "aws_x", "name": "y",
            "change": {"actions": ["create"], "before": None, "after": {"name": name, "password": secret},
                       "after_sensitive": {"password": True}}}]}
    assert summarize_plan(plan("one")).digest == summarize_plan(plan("two")).digest
    assert summarize_plan(plan("one")).digest != summarize_plan(plan("one", name="z")).digest


def test_mask_sensitive_follows_terraform_shapes() -> None:
    value = {"a": "x", "b": {"c": "secret", "d": "ok"}, "e": ["p", "q"]}
    sensitive = {"b": {"c": True}, "e": [False, True]}
    assert mask_sensitive(value, sensitive) == {"a": "x", "b": {"c": MASK, "d": "ok"}, "e": ["p", MASK]}


def test_state_resources_from_child_modules() -> None:
    found = state_resources(load("state-child-modules.tf1.5.json"), default_region="eu-west-1")
    assert found and all(r.address for r in found)
    assert any(r.address.startswith("module.") for r in found)


def test_sensitive_outputs_are_split_from_the_others() -> None:
    outputs = state_outputs(load("state-sensitive-outputs.tf1.1.json"))
    assert outputs.sensitive_names == ["foo"]
    assert "foo" not in outputs.values and outputs.values["string"] == "foo"


def test_not_terraform_json_is_refused() -> None:
    with pytest.raises(PlanFormatError, match="format_version"):
        summarize_plan({"resources": []})


def test_verification_names_what_the_state_lacks() -> None:
    plan = summarize_plan({"format_version": "1.2", "resource_changes": [
        {"address": "a.one", "type": "a", "name": "one", "change": {"actions": ["create"]}},
        {"address": "a.gone", "type": "a", "name": "gone", "change": {"actions": ["delete"]}}]})
    resources = state_resources({"format_version": "1.0", "values": {"root_module": {"resources": [
        {"address": "a.gone", "type": "a", "name": "gone", "values": {"id": "1"}}]}}})
    result = verify_applied(plan.changes, resources)
    assert not result.passed
    assert result.missing == ("a.one",) and result.unexpected == ("a.gone",)


def test_a_backend_s_state_file_is_read_as_the_registry_needs_it() -> None:
    from devops_operator.terraform.planjson import raw_state_resources

    state = {"version": 4, "serial": 3, "lineage": "l", "resources": [
        {"mode": "data", "type": "aws_caller_identity", "name": "me", "instances": [{"attributes": {"id": "1"}}]},
        {"mode": "managed", "type": "aws_sqs_queue", "name": "q", "instances": [
            {"index_key": 0, "attributes": {"id": "https://q0", "arn": "arn:aws:sqs:eu-west-1:1:q0",
                                             "tags": {"team": "a"}}},
            {"index_key": 1, "attributes": {"id": "https://q1", "arn": "arn:aws:sqs:eu-west-1:1:q1"}}]},
        {"module": "module.db", "mode": "managed", "type": "aws_db_instance", "name": "main", "instances": [
            {"index_key": "blue", "attributes": {"id": "db-1", "password": "hunter2", "region": "us-west-2"},
             "sensitive_attributes": [[{"type": "get_attr", "value": "password"}]]}]},
    ]}
    found = raw_state_resources(state, default_region="us-east-1")
    assert [r.address for r in found] == ['aws_sqs_queue.q[0]', 'aws_sqs_queue.q[1]',
                                          'module.db.aws_db_instance.main["blue"]']
    assert (found[0].region, found[0].tags, found[2].region) == ("eu-west-1", {"team": "a"}, "us-west-2")
    assert "hunter2" not in repr(found)
    with pytest.raises(PlanFormatError):
        raw_state_resources({"format_version": "1.0", "values": {}})


def test_what_a_runner_reports_is_compared_with_what_the_operator_reads() -> None:
    from devops_operator.deploy import results
    from devops_operator.terraform.planjson import StateResource

    plan = {"format_version": "1.2", "resource_changes": [
        {"address": "aws_sqs_queue.q", "type": "aws_sqs_queue", "name": "q",
         "change": {"actions": ["delete", "create"], "before": {"name": "a"}, "after": {"name": "b"}}}]}
    summary = summarize_plan(plan)
    honest = {"add": 0, "change": 0, "destroy": 0, "replace": 1, "planDigest": summary.digest, "planId": "p",
              "changesTotal": 1}
    assert results.plan_differences(honest, summary, "p") == []
    lying = {**honest, "replace": 0, "add": 1, "planId": "other"}
    assert results.plan_differences(lying, summary, "p") == [
        "add 1 reported, 0 in the artefact", "replace 0 reported, 1 in the artefact",
        "plan id 'other' reported, p computed"]
    held = [StateResource("aws_sqs_queue.q", "aws_sqs_queue", "q", "u", "arn:q", "us-east-1")]
    assert results.resource_differences({"resourceCount": 1, "resources": [
        {"address": "aws_sqs_queue.q", "type": "aws_sqs_queue", "arn": "arn:q"}]}, held) == []
    assert results.resource_differences({"resourceCount": 1, "resources": [
        {"address": "aws_sqs_queue.q", "type": "aws_sqs_queue", "arn": "arn:theirs"}]}, held) == [
        "reported but not in the state: arn:theirs", "in the state but not reported: arn:q"]
    assert results.condition([], "plan p")[1:3] == ("True", "Matches")
