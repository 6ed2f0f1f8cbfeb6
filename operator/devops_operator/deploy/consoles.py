"""AWS console links for deployed resources: a table from Terraform resource type to URL (pure data)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

ConsoleLink = Callable[[str, str, str], str]  # (region, id, arn) -> URL


def _console(service: str, region: str, fragment: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}#{fragment}"


def _arn_tail(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if arn else ""


def _queue_link(region: str, rid: str, arn: str) -> str:
    url = rid if rid.startswith("http") else f"https://sqs.{region}.amazonaws.com/{rid}"
    return _console("sqs/v3", region, f"/queues/{quote(url, safe='')}")


def _log_group_link(region: str, rid: str, arn: str) -> str:
    return _console("cloudwatch", region, f"logsV2:log-groups/log-group/{quote(rid, safe='').replace('%', '$25')}")


def _ecs_service_link(region: str, arn: str) -> str:
    cluster = arn.split("/")[-2] if arn.count("/") >= 2 else ""
    return f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{_arn_tail(arn)}?region={region}"


CONSOLE_LINKS: dict[str, ConsoleLink] = {
    "aws_s3_bucket": lambda region, rid, arn: f"https://s3.console.aws.amazon.com/s3/buckets/{rid}?region={region}",
    "aws_lambda_function": lambda region, rid, arn: _console("lambda", region, f"/functions/{rid}"),
    "aws_db_instance": lambda region, rid, arn: _console("rds", region, f"database:id={rid}"),
    "aws_rds_cluster": lambda region, rid, arn: _console("rds", region, f"database:id={rid};is-cluster=true"),
    "aws_ecs_cluster": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{_arn_tail(arn or rid)}?region={region}"),
    "aws_ecs_service": lambda region, rid, arn: _ecs_service_link(region, arn or rid),
    "aws_ecs_task_definition": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/ecs/v2/task-definitions/{_arn_tail(arn or rid).split(':')[0]}"
        f"?region={region}"),
    "aws_dynamodb_table": lambda region, rid, arn: _console("dynamodbv2", region, f"table?name={rid}"),
    "aws_iam_role": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/roles/{rid}",
    "aws_iam_role_policy": lambda region, rid, arn: (
        f"https://console.aws.amazon.com/iam/home#/roles/{rid.split(':')[0]}"),
    "aws_iam_policy": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/policies/{arn or rid}",
    "aws_iam_user": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/users/{rid}",
    "aws_instance": lambda region, rid, arn: _console("ec2", region, f"InstanceDetails:instanceId={rid}"),
    "aws_vpc": lambda region, rid, arn: _console("vpcconsole", region, f"VpcDetails:VpcId={rid}"),
    "aws_subnet": lambda region, rid, arn: _console("vpcconsole", region, f"SubnetDetails:subnetId={rid}"),
    "aws_security_group": lambda region, rid, arn: _console("ec2", region, f"SecurityGroup:groupId={rid}"),
    "aws_ebs_volume": lambda region, rid, arn: _console("ec2", region, f"VolumeDetails:volumeId={rid}"),
    "aws_api_gateway_rest_api": lambda region, rid, arn: _console("apigateway", region, f"/apis/{rid}/resources"),
    "aws_apigatewayv2_api": lambda region, rid, arn: _console("apigateway", region, f"/apis/{rid}"),
    "aws_cloudwatch_log_group": _log_group_link,
    "aws_cloudwatch_metric_alarm": lambda region, rid, arn: _console("cloudwatch", region, f"alarmsV2:alarm/{rid}"),
    "aws_sqs_queue": _queue_link,
    "aws_sns_topic": lambda region, rid, arn: _console("sns/v3", region, f"/topic/{arn or rid}"),
    "aws_eks_cluster": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/eks/home?region={region}#/clusters/{rid}"),
}


def console_link(resource_type: str, region: str | None, resource_id: str | None, arn: str | None) -> str | None:
    """The console URL of one resource, or None for a type the table does not know (or no id)."""
    link = CONSOLE_LINKS.get(resource_type)
    if link is None or not (resource_id or arn):
        return None
    return link(region or "us-east-1", resource_id or "", arn or "")
