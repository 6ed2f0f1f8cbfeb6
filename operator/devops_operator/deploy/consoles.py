"""AWS console links for deployed resources: a table from Terraform resource type to URL (pure data).

The ids, ARNs and regions come from Terraform state (the tenant's module decides them), and the links are
rendered into DEPLOYED.md, which others open: every id or ARN put into a URL is percent-encoded (`/`, `?`,
`#`, `@`, `)` and spaces included), so a crafted id stays one segment and cannot change the link's host,
path or query; a region must look like an AWS region (it becomes part of the host name), else no link.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

ConsoleLink = Callable[[str, str, str], str]  # (region, id, arn) -> URL

REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$")


def _part(text: str) -> str:
    """One URL segment, query value or fragment part: nothing in it is a delimiter any more."""
    return quote(text, safe="")


def _console(service: str, region: str, fragment: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}#{fragment}"


def _arn_tail(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if arn else ""


def _queue_link(region: str, rid: str, arn: str) -> str:
    url = rid if rid.startswith("https://") else f"https://sqs.{region}.amazonaws.com/{rid}"
    return _console("sqs/v3", region, f"/queues/{_part(url)}")


def _log_group_link(region: str, rid: str, arn: str) -> str:
    return _console("cloudwatch", region, f"logsV2:log-groups/log-group/{_part(rid).replace('%', '$25')}")


def _ecs_service_link(region: str, arn: str) -> str:
    cluster = arn.split("/")[-2] if arn.count("/") >= 2 else ""
    return (f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{_part(cluster)}/services/"
            f"{_part(_arn_tail(arn))}?region={region}")


CONSOLE_LINKS: dict[str, ConsoleLink] = {
    "aws_s3_bucket": lambda region, rid, arn: f"https://s3.console.aws.amazon.com/s3/buckets/{_part(rid)}?region={region}",
    "aws_lambda_function": lambda region, rid, arn: _console("lambda", region, f"/functions/{_part(rid)}"),
    "aws_db_instance": lambda region, rid, arn: _console("rds", region, f"database:id={_part(rid)}"),
    "aws_rds_cluster": lambda region, rid, arn: _console("rds", region, f"database:id={_part(rid)};is-cluster=true"),
    "aws_ecs_cluster": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{_part(_arn_tail(arn or rid))}?region={region}"),
    "aws_ecs_service": lambda region, rid, arn: _ecs_service_link(region, arn or rid),
    "aws_ecs_task_definition": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/ecs/v2/task-definitions/{_part(_arn_tail(arn or rid).split(':')[0])}"
        f"?region={region}"),
    "aws_dynamodb_table": lambda region, rid, arn: _console("dynamodbv2", region, f"table?name={_part(rid)}"),
    "aws_iam_role": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/roles/{_part(rid)}",
    "aws_iam_role_policy": lambda region, rid, arn: (
        f"https://console.aws.amazon.com/iam/home#/roles/{_part(rid.split(':')[0])}"),
    "aws_iam_policy": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/policies/{_part(arn or rid)}",
    "aws_iam_user": lambda region, rid, arn: f"https://console.aws.amazon.com/iam/home#/users/{_part(rid)}",
    "aws_instance": lambda region, rid, arn: _console("ec2", region, f"InstanceDetails:instanceId={_part(rid)}"),
    "aws_vpc": lambda region, rid, arn: _console("vpcconsole", region, f"VpcDetails:VpcId={_part(rid)}"),
    "aws_subnet": lambda region, rid, arn: _console("vpcconsole", region, f"SubnetDetails:subnetId={_part(rid)}"),
    "aws_security_group": lambda region, rid, arn: _console("ec2", region, f"SecurityGroup:groupId={_part(rid)}"),
    "aws_ebs_volume": lambda region, rid, arn: _console("ec2", region, f"VolumeDetails:volumeId={_part(rid)}"),
    "aws_api_gateway_rest_api": lambda region, rid, arn: _console("apigateway", region,
                                                                  f"/apis/{_part(rid)}/resources"),
    "aws_apigatewayv2_api": lambda region, rid, arn: _console("apigateway", region, f"/apis/{_part(rid)}"),
    "aws_cloudwatch_log_group": _log_group_link,
    "aws_cloudwatch_metric_alarm": lambda region, rid, arn: _console("cloudwatch", region,
                                                                     f"alarmsV2:alarm/{_part(rid)}"),
    "aws_sqs_queue": _queue_link,
    "aws_sns_topic": lambda region, rid, arn: _console("sns/v3", region, f"/topic/{_part(arn or rid)}"),
    "aws_eks_cluster": lambda region, rid, arn: (
        f"https://{region}.console.aws.amazon.com/eks/home?region={region}#/clusters/{_part(rid)}"),
}


def console_link(resource_type: str, region: str | None, resource_id: str | None, arn: str | None) -> str | None:
    """The console URL of one resource, or None for a type the table does not know (or no id)."""
    link = CONSOLE_LINKS.get(resource_type)
    region = region or "us-east-1"
    if link is None or not (resource_id or arn) or not REGION_RE.match(region):
        return None
    return link(region, resource_id or "", arn or "")
