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


def test_a_crafted_id_or_region_cannot_change_a_console_link_s_host_or_path() -> None:
    from urllib.parse import parse_qs, urlsplit

    crafted = "x/../../evil?next=https://evil.example/#@evil.example) [click](https://evil.example"
    for rtype in CONSOLE_LINKS:
        plain = urlsplit(console_link(rtype, "eu-west-1", "thing", "arn:aws:x:eu-west-1:1:thing/a/b") or "")
        link = console_link(rtype, "eu-west-1", crafted, f"arn:aws:x:eu-west-1:1:{crafted}/a/b")
        assert link is not None
        parts = urlsplit(link)
        # The same host, the same number of path segments, the same query keys as for a plain id.
        assert parts.netloc == plain.netloc and parts.netloc.endswith("console.aws.amazon.com"), link
        assert parts.path.count("/") == plain.path.count("/"), link
        assert sorted(parse_qs(parts.query)) == sorted(parse_qs(plain.query)), link
        assert " " not in link and ")" not in link and "/../" not in link, link
    bucket = console_link("aws_s3_bucket", "us-east-1", "a/b?c#d", None)
    assert bucket == "https://s3.console.aws.amazon.com/s3/buckets/a%2Fb%3Fc%23d?region=us-east-1"
    # The region is part of the host name: one that is not an AWS region gives no link at all.
    assert console_link("aws_lambda_function", "evil.example/x", "fn", None) is None
    assert console_link("aws_lambda_function", "us-gov-west-1", "fn", None) == (
        "https://us-gov-west-1.console.aws.amazon.com/lambda/home?region=us-gov-west-1#/functions/fn")


def test_one_deployment_s_share_of_the_registry_is_capped_and_marked_without_evicting_others() -> None:
    doc = registry.record_apply(None, deployment="ns/a", resources=[resource("aws_sqs_queue.a", "arn:a")],
                                changes=[], plan_id="p1", revision="r1", engine="terraform", at="t1")
    many = [resource(f"aws_sqs_queue.q{i:03}", f"arn:q{i:03}") for i in range(30)]
    many.append(resource("aws_sqs_queue.aaa-takeover", "arn:a"))  # claims a's queue, first by address
    doc = registry.record_apply(doc, deployment="ns/big", resources=many, changes=[], plan_id="p2", revision="r2",
                                engine="terraform", at="t2", max_resources=10)
    assert len(registry.resources_of(doc, "ns/big")) == 9  # ten recorded, one of them a claim on a's entry
    assert doc["resources"]["arn:a"]["deployment"] == "ns/a"  # a's entry stays a's
    assert registry.truncation_of(doc, "ns/big") == {"recorded": 10, "total": 31}
    assert registry.truncation_of(doc, "ns/a") is None
    text = registry.render_deployed_md(doc, title="shop / test")
    assert "**Truncated:** this deployment manages 31 resources; only the first 10" in text
    # Back under the cap: the marker goes.
    doc = registry.record_apply(doc, deployment="ns/big", resources=many[:3], changes=[], plan_id="p3",
                                revision="r3", engine="terraform", at="t3", max_resources=10)
    assert registry.truncation_of(doc, "ns/big") is None and "Truncated" not in registry.render_deployed_md(
        doc, title="shop / test")


def test_the_default_share_bounds_a_registry_of_many_deployments() -> None:
    doc = None
    for index in range(3):
        resources = [resource(f"aws_sqs_queue.q{i}", f"arn:{index}:{i}") for i in range(
            registry.MAX_RESOURCES_PER_DEPLOYMENT + 100)]
        doc = registry.record_apply(doc, deployment=f"ns/d{index}", resources=resources, changes=[], plan_id="p",
                                    revision="r", engine="terraform", at="t")
    assert len(doc["resources"]) == 3 * registry.MAX_RESOURCES_PER_DEPLOYMENT
