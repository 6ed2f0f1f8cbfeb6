"""Targets from a spec, from ARNs (the tagging API) and from a deployment's resource registry (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import TargetResource
from devops_operator.deploy import registry, registry_reader
from devops_operator.ops.health.registry import TYPES
from devops_operator.ops.health.targets import (
    Target,
    arn_problems,
    from_arn,
    from_spec,
    parse_arn,
    registry_targets,
    unique_names,
)
from devops_operator.terraform.planjson import StateResource

ARNS = [
    ("arn:aws:lambda:eu-west-1:123456789012:function:orders", ResourceType.LAMBDA, "orders", "eu-west-1", None),
    ("arn:aws:lambda:eu-west-1:123456789012:function:orders:live", ResourceType.LAMBDA, "orders", "eu-west-1", None),
    ("arn:aws:rds:us-east-1:123456789012:db:shop-db", ResourceType.RDS, "shop-db", "us-east-1", None),
    ("arn:aws:ecs:us-east-1:123456789012:service/shop/checkout", ResourceType.ECS_SERVICE, "checkout", "us-east-1",
     "shop"),
    ("arn:aws:apigateway:us-east-1::/restapis/a1b2c3", ResourceType.APIGATEWAY_REST, "a1b2c3", "us-east-1", None),
    ("arn:aws:apigateway:us-east-1::/apis/x9y8z7", ResourceType.APIGATEWAY_HTTP, "x9y8z7", "us-east-1", None),
    ("arn:aws:s3:::shop-assets", ResourceType.S3, "shop-assets", None, None),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/orders", ResourceType.DYNAMODB, "orders", "us-east-1", None),
    ("arn:aws:sqs:us-east-1:123456789012:jobs.fifo", ResourceType.SQS, "jobs.fifo", "us-east-1", None),
]


@pytest.mark.parametrize(("arn", "rtype", "ident", "region", "cluster"), ARNS)
def test_arns_of_every_type(arn: str, rtype: ResourceType, ident: str, region: str | None,
                            cluster: str | None) -> None:
    parsed = parse_arn(arn)
    assert parsed is not None
    assert (parsed.type, parsed.id, parsed.region, parsed.cluster) == (rtype, ident, region, cluster)
    target = from_arn(arn)
    assert target is not None and target.arn == arn
    # The tagging API lists what exists; a REST API's ARN holds its id, CloudWatch its name: looked up.
    assert target.check_existence is (rtype == ResourceType.APIGATEWAY_REST)


def test_arns_of_other_types_are_not_targets() -> None:
    assert from_arn("arn:aws:iam::123456789012:role/deploy") is None
    assert from_arn("arn:aws:sqs:us-east-1:123456789012:jobs", [ResourceType.LAMBDA]) is None
    assert all(info.arn_pattern.match(info.arn_example) for info in TYPES.values())


def test_explicit_targets_take_ids_or_arns() -> None:
    plain = from_spec(TargetResource.model_validate({"type": "sqs", "id": "jobs", "name": "queue"}), 2)
    assert (plain.id, plain.name, plain.field, plain.check_existence) == ("jobs", "queue", "spec.targets.resources[2]",
                                                                          True)
    service = from_spec(TargetResource.model_validate(
        {"type": "ecs-service", "id": "arn:aws:ecs:eu-west-1:123456789012:service/shop/checkout", "cluster": "shop"}),
        0)
    assert (service.id, service.cluster, service.region) == ("checkout", "shop", "eu-west-1")
    wrong = TargetResource.model_validate({"type": "lambda", "id": "arn:aws:sqs:us-east-1:123456789012:jobs"})
    assert arn_problems([wrong]) == [("spec.targets.resources[0].id",
                                      "'arn:aws:sqs:us-east-1:123456789012:jobs' is not an ARN of a lambda (expected "
                                      "e.g. arn:aws:lambda:us-east-1:123456789012:function:orders); or give the "
                                      "plain identifier")]


def entry(rtype: str, **fields: Any) -> dict[str, Any]:
    return {"type": rtype, "deployment": "shop/api", "tags": {}, **fields}


def test_registry_entries_map_through_their_terraform_types() -> None:
    entries = [
        entry("aws_lambda_function", id="shop-api", arn="arn:aws:lambda:us-east-1:123456789012:function:shop-api",
              name="api"),
        entry("aws_db_instance", id="db-ABCDEF", name="shop-db", region="eu-west-1"),
        entry("aws_ecs_service", id="arn:aws:ecs:us-east-1:123456789012:service/shop/checkout",
              arn="arn:aws:ecs:us-east-1:123456789012:service/shop/checkout", name="checkout"),
        entry("aws_api_gateway_rest_api", id="a1b2c3", name="shop-public"),
        entry("aws_apigatewayv2_api", id="x9y8z7", name="shop-http"),
        entry("aws_s3_bucket", id="shop-assets"),
        entry("aws_dynamodb_table", id="orders", arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders"),
        entry("aws_sqs_queue", id="https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
              arn="arn:aws:sqs:us-east-1:123456789012:jobs", name="jobs"),
        entry("aws_iam_role", id="deploy"),
        entry("aws_iam_role", id="runner"),
        entry("aws_cloudwatch_log_group", id="/aws/lambda/shop-api"),
        {"type": "aws_lambda_function", "id": "other", "deployment": "shop/web"},  # another deployment's
    ]
    found = registry_targets(entries, "shop/api")
    by_type = {t.type: t for t in found.targets}
    assert len(found.targets) == 8
    assert by_type[ResourceType.LAMBDA].id == "shop-api" and by_type[ResourceType.LAMBDA].name == "api"
    assert (by_type[ResourceType.RDS].id, by_type[ResourceType.RDS].region) == ("shop-db", "eu-west-1")
    assert (by_type[ResourceType.ECS_SERVICE].id, by_type[ResourceType.ECS_SERVICE].cluster) == ("checkout", "shop")
    assert by_type[ResourceType.APIGATEWAY_REST].id == "shop-public"  # CloudWatch names REST APIs by name
    assert by_type[ResourceType.APIGATEWAY_HTTP].id == "x9y8z7"
    assert by_type[ResourceType.SQS].id == "jobs"  # from the ARN, not the queue URL
    assert all(t.check_existence and "InfraDeployment shop/api" in t.field for t in found.targets)
    assert found.skipped == {"aws_iam_role": 2, "aws_cloudwatch_log_group": 1}
    only = registry_targets(entries, "shop/api", [ResourceType.SQS])
    assert [t.type for t in only.targets] == [ResourceType.SQS] and sum(only.skipped.values()) == 10


def test_registry_documents_and_unique_names() -> None:
    written = registry.record_apply(None, deployment="shop/api", changes=[], plan_id="p", revision=None,
                                    engine="terraform", at="t", resources=[StateResource(
                                        address="aws_sqs_queue.q", type="aws_sqs_queue", name="q", id="q",
                                        arn="arn:aws:sqs:us-east-1:123456789012:q", region="us-east-1")])
    found = registry_targets([dict(e.fields) for e in registry_reader.entries(written)], "shop/api")
    assert [(t.type, t.id) for t in found.targets] == [(ResourceType.SQS, "q")]
    same = [Target(ResourceType.SQS, "orders", "orders"), Target(ResourceType.DYNAMODB, "orders", "orders"),
            Target(ResourceType.SQS, "orders", "orders", region="eu-west-1")]
    names = [t.name for t in unique_names(same)]
    assert len(set(names)) == 3 and "dynamodb/orders" in names
