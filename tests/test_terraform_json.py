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
