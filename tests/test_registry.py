"""The resource registry: entries, conflicts on both sides, DEPLOYED.md with console links and rollback."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kubernetes.client import ApiClient

from devops_operator.deploy import registry
from devops_operator.deploy.consoles import CONSOLE_LINKS, console_link
from devops_operator.kube.store import ConfigMapDocument
from devops_operator.terraform.planjson import Change, StateResource, state_resources, summarize_plan

FIXTURES = Path(__file__).parent / "fixtures" / "terraform"


def resource(address: str, arn: str | None = None, rid: str = "id-1") -> StateResource:
    rtype, name = address.split(".", 1)
    return StateResource(address, rtype, name, rid, arn, "us-east-1", {"team": "x"})


def test_console_links_cover_the_listed_services() -> None:
    for rtype in ("aws_s3_bucket", "aws_lambda_function", "aws_db_instance", "aws_ecs_service", "aws_dynamodb_table",
                  "aws_iam_role", "aws_security_group", "aws_vpc", "aws_api_gateway_rest_api",
                  "aws_cloudwatch_log_group", "aws_sqs_queue", "aws_sns_topic", "aws_eks_cluster"):
        assert rtype in CONSOLE_LINKS
        assert console_link(rtype, "eu-west-1", "thing", "arn:aws:x:eu-west-1:1:thing/a/b").startswith("https://")
    assert console_link("aws_unknown", "us-east-1", "x", None) is None


def test_two_deployments_claiming_one_resource_conflict_on_both() -> None:
    doc = registry.record_apply(None, deployment="ns/a", resources=[resource("aws_sqs_queue.q", "arn:q")],
                                changes=[], plan_id="p1", revision="r1", engine="terraform", at="t1")
    doc = registry.record_apply(doc, deployment="ns/b", resources=[resource("aws_sqs_queue.other", "arn:q")],
                                changes=[], plan_id="p2", revision="r2", engine="terraform", at="t2")
    assert doc["resources"]["arn:q"]["deployment"] == "ns/a"
    assert [c.other for c in registry.conflicts_of(doc, "ns/a")] == ["ns/b"]
    assert [c.other for c in registry.conflicts_of(doc, "ns/b")] == ["ns/a"]
    assert "## Conflicts" in registry.render_deployed_md(doc, title="shop / test")
    # b drops the claim: no conflict remains on either side.
    doc = registry.record_apply(doc, deployment="ns/b", resources=[], changes=[], plan_id="p3", revision="r3",
                                engine="terraform", at="t3")
    assert registry.conflicts_of(doc, "ns/a") == [] and registry.conflicts_of(doc, "ns/b") == []


def test_first_applied_is_kept_and_removed_resources_leave() -> None:
    doc = registry.record_apply(None, deployment="ns/a", resources=[resource("aws_sqs_queue.q", "arn:q"),
                                                                     resource("aws_sns_topic.t", "arn:t")],
                                changes=[], plan_id="p1", revision="r1", engine="terraform", at="t1")
    doc = registry.record_apply(doc, deployment="ns/a", resources=[resource("aws_sqs_queue.q", "arn:q")],
                                changes=[Change("aws_sns_topic.t", "aws_sns_topic", "t", "delete")],
                                plan_id="p2", revision="r2", engine="terraform", at="t2")
    assert list(doc["resources"]) == ["arn:q"]
    assert doc["resources"]["arn:q"]["firstApplied"] == "t1" and doc["resources"]["arn:q"]["lastApplied"] == "t2"
    text = registry.render_deployed_md(doc, title="shop / test")
    assert "Last apply: plan p2 (revision r2" in text and "delete aws_sns_topic.t" in text
    assert "point the deployment's source back to revision r1" in text
    assert registry.forget_deployment(doc, "ns/a") == {"resources": {}, "deployments": {}}


def test_the_55_resource_fixture_renders_every_type_with_links() -> None:
    plan = json.loads((FIXTURES / "plan-55-aws-resources.tf0.12.json").read_text())
    values = {"format_version": "1.0", "values": plan["planned_values"]}
    resources = state_resources(values, default_region="us-east-1")
    assert len(resources) == 55
    doc = registry.record_apply(None, deployment="ns/big", resources=resources,
                                changes=list(summarize_plan(plan).changes), plan_id="p", revision="r",
                                engine="terraform", at="t")
    text = registry.render_deployed_md(doc, title="big")
    assert text.count("\n## aws_") == len({r.type for r in resources if r.type.startswith("aws_")})


def test_concurrent_deployments_lose_no_entry(kube_api: ApiClient, namespace: str) -> None:
    def write(index: int) -> None:
        store = ConfigMapDocument(kube_api, namespace, "shop-test-registry", registry.REGISTRY_KEY,
                                  render=lambda d: {registry.DEPLOYED_KEY: registry.render_deployed_md(d, title="t")})
        store.update(lambda doc: registry.record_apply(
            doc, deployment=f"{namespace}/d{index}", resources=[resource(f"aws_sqs_queue.q{index}", f"arn:q{index}")],
            changes=[], plan_id=f"p{index}", revision="r", engine="terraform", at="t"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = ConfigMapDocument(kube_api, namespace, "shop-test-registry", registry.REGISTRY_KEY).read()
    assert sorted(stored["resources"]) == sorted(f"arn:q{i}" for i in range(8))
    assert len(stored["deployments"]) == 8
