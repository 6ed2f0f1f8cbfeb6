"""Where a service's logs and metrics are, per resource type (a table kept as data)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from devops_operator.api.common import ResourceType
from devops_operator.aws.cloudwatch import MetricQuery
from devops_operator.ops.investigation.anomalies import Direction

MAX_POINTS_PER_SERIES = 1440


@dataclass(frozen=True)
class AnomalyMetric:
    name: str
    statistic: str
    direction: Direction
    unit: str = ""


@dataclass(frozen=True)
class ServiceType:
    namespace: str
    # Log group names with {id} (and {cluster}) placeholders, most common first.
    log_groups: tuple[str, ...]
    dimensions: tuple[tuple[str, str], ...]
    metrics: tuple[AnomalyMetric, ...]


SERVICE_TYPES: dict[ResourceType, ServiceType] = {
    ResourceType.LAMBDA: ServiceType(
        "AWS/Lambda", ("/aws/lambda/{id}",), (("FunctionName", "{id}"),),
        (AnomalyMetric("Errors", "Sum", Direction.UP), AnomalyMetric("Throttles", "Sum", Direction.UP),
         AnomalyMetric("Duration", "Average", Direction.UP, "Milliseconds"),
         AnomalyMetric("ConcurrentExecutions", "Maximum", Direction.UP)),
    ),
    ResourceType.ECS_SERVICE: ServiceType(
        "AWS/ECS", ("/ecs/{id}", "/aws/ecs/{cluster}/{id}"), (("ClusterName", "{cluster}"), ("ServiceName", "{id}")),
        (AnomalyMetric("CPUUtilization", "Average", Direction.UP, "Percent"),
         AnomalyMetric("MemoryUtilization", "Average", Direction.UP, "Percent")),
    ),
    ResourceType.RDS: ServiceType(
        "AWS/RDS", ("/aws/rds/instance/{id}/error", "/aws/rds/instance/{id}/postgresql",
                    "/aws/rds/instance/{id}/slowquery"),
        (("DBInstanceIdentifier", "{id}"),),
        (AnomalyMetric("CPUUtilization", "Average", Direction.UP, "Percent"),
         AnomalyMetric("DatabaseConnections", "Maximum", Direction.UP),
         AnomalyMetric("FreeableMemory", "Minimum", Direction.DOWN, "Bytes"),
         AnomalyMetric("ReadLatency", "Average", Direction.UP, "Seconds"),
         AnomalyMetric("WriteLatency", "Average", Direction.UP, "Seconds")),
    ),
    ResourceType.APIGATEWAY_REST: ServiceType(
        "AWS/ApiGateway", (), (("ApiName", "{id}"),),
        (AnomalyMetric("5XXError", "Sum", Direction.UP), AnomalyMetric("Latency", "Average", Direction.UP,
                                                                      "Milliseconds")),
    ),
}

_LOG_GROUP_SERVICES: tuple[tuple[re.Pattern[str], ResourceType], ...] = (
    (re.compile(r"^/aws/lambda/(?P<id>[^/]+)$"), ResourceType.LAMBDA),
    (re.compile(r"^/aws/rds/instance/(?P<id>[^/]+)/[^/]+$"), ResourceType.RDS),
    (re.compile(r"^/aws/ecs/(?P<cluster>[^/]+)/(?P<id>[^/]+)$"), ResourceType.ECS_SERVICE),
)
_ARN_SERVICES: tuple[tuple[re.Pattern[str], ResourceType], ...] = (
    (re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:(?P<id>[^:]+)(:.+)?$"), ResourceType.LAMBDA),
    (re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:(?P<id>.+)$"), ResourceType.RDS),
    (re.compile(r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:service/(?P<cluster>[^/]+)/(?P<id>.+)$"),
     ResourceType.ECS_SERVICE),
)


@dataclass(frozen=True)
class ServiceRef:
    type: ResourceType
    id: str
    cluster: str | None = None

    def log_groups(self) -> list[str]:
        service = SERVICE_TYPES.get(self.type)
        if service is None:
            return []
        return [t.format(id=self.id, cluster=self.cluster or "") for t in service.log_groups
                if self.cluster or "{cluster}" not in t]

    def metric_queries(self, seconds: float) -> list[tuple[MetricQuery, AnomalyMetric]]:
        """The anomaly metrics' queries, with a period that keeps every series under 1,440 datapoints."""
        service = SERVICE_TYPES.get(self.type)
        if service is None or (any("{cluster}" in v for _, v in service.dimensions) and not self.cluster):
            return []
        period = max(60, math.ceil(seconds / MAX_POINTS_PER_SERIES / 60) * 60)
        dims = tuple((name, value.format(id=self.id, cluster=self.cluster or "")) for name, value in service.dimensions)
        return [
            (MetricQuery(id=f"m{index}", namespace=service.namespace, metric_name=metric.name, dimensions=dims,
                         stat=metric.statistic, period=period), metric)
            for index, metric in enumerate(service.metrics)
        ]


def from_log_group(name: str) -> ServiceRef | None:
    for pattern, rtype in _LOG_GROUP_SERVICES:
        found = pattern.match(name)
        if found:
            return ServiceRef(rtype, found["id"], found.groupdict().get("cluster"))
    return None


def from_arn(arn: str) -> ServiceRef | None:
    for pattern, rtype in _ARN_SERVICES:
        found = pattern.match(arn)
        if found:
            return ServiceRef(rtype, found["id"], found.groupdict().get("cluster"))
    return None


# The order types are tried in for a bare service name that is not in the registry.
NAME_LOOKUP_ORDER: tuple[ResourceType, ...] = (ResourceType.LAMBDA, ResourceType.ECS_SERVICE, ResourceType.RDS)
