"""The resource types HealthCheck understands, as data (Cloud Custodian style: a table, not if/elif).

For each type, one `ResourceTypeInfo`:
- where its metrics live: the CloudWatch namespace and how a target's dimensions are built;
- its default metrics (`MetricDefault`): statistic, period, thresholds, comparison, how missing data
  counts, and for rates (`DerivedRate`) the raw series they are computed from, in Python, so the same
  code runs against moto and AWS (no metric math);
- how to tell that a resource exists: a describe call per resource (`Describe`) and a paged listing of
  every resource of the type (`Inventory`), the latter for many targets at once;
- how it is named elsewhere: its ARN pattern (tag selector, ARNs as ids), its tagging-API type filter,
  and the Terraform resource types that create it (a deployment's registry).

`KNOWN_METRICS` lists, per AWS namespace, the metrics AWS publishes there: a metric name CloudWatch
never had is refused before any call (with the closest names), instead of reading as NO_DATA forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import ComparisonOperator, MissingDataPolicy

if TYPE_CHECKING:
    from devops_operator.ops.health.targets import Target

GT = ComparisonOperator.GREATER_THAN
LT = ComparisonOperator.LESS_THAN
MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class RawInput:
    """One raw series a derived metric is computed from."""

    metric_name: str
    statistic: str = "Sum"
    namespace: str | None = None  # None: the type's namespace
    # Counters CloudWatch omits when nothing happened (no errors in a minute): a missing datapoint is 0
    # wherever the other input has one.
    zero_when_missing: bool = False


@dataclass(frozen=True)
class DerivedRate:
    """numerator / denominator * scale per period (a period whose denominator is 0 has no value)."""

    numerator: RawInput
    denominator: RawInput
    scale: float = 100.0


@dataclass(frozen=True)
class MetricDefault:
    """A built-in metric of a type: what it reads and when it stops being healthy."""

    name: str
    statistic: str = "Average"
    period: int = 60
    unit: str | None = None
    warning: float | None = None
    critical: float | None = None
    comparison: ComparisonOperator = GT
    missing_data: MissingDataPolicy | None = None  # None: the check's spec.missingData
    derived: DerivedRate | None = None
    namespace: str | None = None  # None: the type's namespace
    dimensions: Mapping[str, str] = field(default_factory=dict)  # added to the resource's own
    percentiles: bool = False  # CloudWatch serves percentiles for it (published as raw values)
    why: str = ""


@dataclass(frozen=True)
class Describe:
    """One call per resource; an error code in `missing_codes` (or `found` false) means it does not exist."""

    service: str
    operation: str  # the boto3 method
    params: Callable[[Target], dict[str, Any]]
    missing_codes: frozenset[str]
    found: Callable[[Mapping[str, Any]], bool] = lambda _response: True


@dataclass(frozen=True)
class Inventory:
    """A paged listing of every resource of the type (in a region, or a `scope` such as an ECS cluster)."""

    service: str
    operation: str
    items: str  # the list in each page
    keys_of: Callable[[Any], tuple[str, ...]]  # every identifier an item answers to (id, name)
    cloudwatch_id_of: Callable[[Any], str]  # the one CloudWatch's dimensions use
    token_param: str  # the request parameter carrying the page token
    token_key: str  # where the response carries the next one
    page_params: Mapping[str, Any] = field(default_factory=dict)
    scope: Callable[[Target], dict[str, Any]] = lambda _target: {}
    scope_missing_codes: frozenset[str] = frozenset()  # the scope itself does not exist: none of it does


@dataclass(frozen=True)
class ResourceTypeInfo:
    type: ResourceType
    namespace: str
    dimensions: Callable[[Target], tuple[tuple[str, str], ...]]
    defaults: tuple[MetricDefault, ...]
    inventory: Inventory
    describe: Describe | None
    arn_pattern: re.Pattern[str]
    arn_example: str
    tagging_type: str  # the Resource Groups Tagging API's ResourceTypeFilters entry
    terraform_types: tuple[str, ...]
    registry_id_fields: tuple[str, ...]  # registry entry fields holding the CloudWatch id, preferred first
    arn_id_is_cloudwatch_id: bool = True
    permissions: tuple[str, ...] = ()  # IAM actions the existence checks need (docs/operations.md)

    def default(self, name: str) -> MetricDefault | None:
        return next((d for d in self.defaults if d.name == name), None)


def _arn(pattern: str) -> re.Pattern[str]:
    return re.compile(r"^arn:aws[a-zA-Z-]*:" + pattern + "$")


def _stage(target: Target, key: str) -> tuple[tuple[str, str], ...]:
    dims = ((key, target.id),)
    return (*dims, ("Stage", target.stage)) if target.stage else dims


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _service_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _ecs_found(response: Mapping[str, Any]) -> bool:
    return any(s.get("status") in ("ACTIVE", "DRAINING") for s in response.get("services") or [])


LAMBDA = ResourceTypeInfo(
    type=ResourceType.LAMBDA,
    namespace="AWS/Lambda",
    dimensions=lambda t: (("FunctionName", t.id),),
    defaults=(
        MetricDefault(
            "ErrorRate", statistic="Sum", unit="Percent", warning=1.0, critical=5.0,
            derived=DerivedRate(RawInput("Errors", zero_when_missing=True), RawInput("Invocations")),
            why="errors per invocation, in percent",
        ),
        MetricDefault("Throttles", statistic="Sum", unit="Count", warning=0.0, critical=10.0,
                      missing_data=MissingDataPolicy.NOT_BREACHING, why="Lambda publishes it when it throttles"),
        MetricDefault("Duration", statistic="Average", unit="Milliseconds", warning=3000.0, critical=10000.0,
                      percentiles=True),
        MetricDefault("Invocations", statistic="Sum", unit="Count", why="traffic, reported only"),
    ),
    inventory=Inventory(
        service="lambda", operation="list_functions", items="Functions",
        keys_of=lambda item: (item["FunctionName"], item.get("FunctionArn", "")),
        cloudwatch_id_of=lambda item: item["FunctionName"],
        token_param="Marker", token_key="NextMarker", page_params={"MaxItems": 50},
    ),
    describe=Describe(
        service="lambda", operation="get_function_configuration",
        params=lambda t: {"FunctionName": t.id}, missing_codes=frozenset({"ResourceNotFoundException"}),
    ),
    arn_pattern=_arn(r"lambda:(?P<region>[a-z0-9-]+):[0-9]{12}:function:(?P<id>[A-Za-z0-9_-]+)(:[A-Za-z0-9_$-]+)?"),
    arn_example="arn:aws:lambda:us-east-1:123456789012:function:orders",
    tagging_type="lambda:function",
    terraform_types=("aws_lambda_function",),
    registry_id_fields=("id", "name"),
    permissions=("lambda:GetFunctionConfiguration", "lambda:ListFunctions"),
)

RDS = ResourceTypeInfo(
    type=ResourceType.RDS,
    namespace="AWS/RDS",
    dimensions=lambda t: (("DBInstanceIdentifier", t.id),),
    defaults=(
        MetricDefault("CPUUtilization", unit="Percent", warning=80.0, critical=95.0),
        MetricDefault("DatabaseConnections", unit="Count",
                      why="reported only: the limit depends on the instance class (set thresholds to judge it)"),
        MetricDefault("FreeableMemory", unit="Bytes", warning=256.0 * MIB, critical=64.0 * MIB, comparison=LT),
        MetricDefault("FreeStorageSpace", statistic="Minimum", unit="Bytes", warning=10.0 * GIB,
                      critical=2.0 * GIB, comparison=LT),
    ),
    inventory=Inventory(
        service="rds", operation="describe_db_instances", items="DBInstances",
        keys_of=lambda item: (item["DBInstanceIdentifier"], item.get("DBInstanceArn", ""),
                              item.get("DbiResourceId", "")),
        cloudwatch_id_of=lambda item: item["DBInstanceIdentifier"],
        token_param="Marker", token_key="Marker", page_params={"MaxRecords": 100},
    ),
    describe=Describe(
        service="rds", operation="describe_db_instances", params=lambda t: {"DBInstanceIdentifier": t.id},
        missing_codes=frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault"}),
    ),
    arn_pattern=_arn(r"rds:(?P<region>[a-z0-9-]+):[0-9]{12}:db:(?P<id>[A-Za-z0-9-]+)"),
    arn_example="arn:aws:rds:us-east-1:123456789012:db:orders-db",
    tagging_type="rds:db",
    terraform_types=("aws_db_instance",),
    registry_id_fields=("name", "identifier", "id"),
    permissions=("rds:DescribeDBInstances",),
)

ECS_SERVICE = ResourceTypeInfo(
    type=ResourceType.ECS_SERVICE,
    namespace="AWS/ECS",
    dimensions=lambda t: (("ClusterName", t.cluster or ""), ("ServiceName", t.id)),
    defaults=(
        MetricDefault(
            "RunningTaskPercent", statistic="Average", unit="Percent", warning=100.0, critical=50.0,
            comparison=LT,
            derived=DerivedRate(RawInput("RunningTaskCount", "Average", "ECS/ContainerInsights"),
                                RawInput("DesiredTaskCount", "Average", "ECS/ContainerInsights")),
            why="running tasks over desired tasks (Container Insights)",
        ),
        MetricDefault("CPUUtilization", unit="Percent", warning=80.0, critical=95.0),
        MetricDefault("MemoryUtilization", unit="Percent", warning=80.0, critical=95.0),
    ),
    inventory=Inventory(
        service="ecs", operation="list_services", items="serviceArns",
        keys_of=lambda arn: (_service_name(arn), arn), cloudwatch_id_of=_service_name,
        token_param="nextToken", token_key="nextToken", page_params={"maxResults": 100},
        scope=lambda t: {"cluster": t.cluster or ""},
        scope_missing_codes=frozenset({"ClusterNotFoundException"}),
    ),
    describe=Describe(
        service="ecs", operation="describe_services",
        params=lambda t: {"cluster": t.cluster or "", "services": [t.id]},
        missing_codes=frozenset({"ClusterNotFoundException", "ServiceNotFoundException"}), found=_ecs_found,
    ),
    arn_pattern=_arn(r"ecs:(?P<region>[a-z0-9-]+):[0-9]{12}:service/(?P<cluster>[A-Za-z0-9_-]+)/(?P<id>[A-Za-z0-9_-]+)"),
    arn_example="arn:aws:ecs:us-east-1:123456789012:service/shop/checkout",
    tagging_type="ecs:service",
    terraform_types=("aws_ecs_service",),
    registry_id_fields=("name", "id"),
    permissions=("ecs:DescribeServices", "ecs:ListServices"),
)

_REST_ITEM_KEYS: Callable[[Any], tuple[str, ...]] = lambda item: (item["id"], item.get("name", ""))  # noqa: E731

APIGATEWAY_REST = ResourceTypeInfo(
    type=ResourceType.APIGATEWAY_REST,
    namespace="AWS/ApiGateway",
    dimensions=lambda t: _stage(t, "ApiName"),
    defaults=(
        MetricDefault(
            "ServerErrorRate", statistic="Sum", unit="Percent", warning=1.0, critical=5.0,
            derived=DerivedRate(RawInput("5XXError", zero_when_missing=True), RawInput("Count")),
            why="5xx responses per request, in percent",
        ),
        MetricDefault("Latency", unit="Milliseconds", warning=1000.0, critical=3000.0, percentiles=True),
        MetricDefault("Count", statistic="Sum", unit="Count", why="traffic, reported only"),
    ),
    inventory=Inventory(
        service="apigateway", operation="get_rest_apis", items="items", keys_of=_REST_ITEM_KEYS,
        cloudwatch_id_of=lambda item: item["name"], token_param="position", token_key="position",
        page_params={"limit": 500},
    ),
    describe=None,  # CloudWatch names REST APIs by name, which no single describe call takes
    arn_pattern=_arn(r"apigateway:(?P<region>[a-z0-9-]+)::/restapis/(?P<id>[A-Za-z0-9]+)"),
    arn_example="arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5",
    tagging_type="apigateway:restapis",
    terraform_types=("aws_api_gateway_rest_api",),
    registry_id_fields=("name", "id"),
    arn_id_is_cloudwatch_id=False,
    permissions=("apigateway:GET",),
)

APIGATEWAY_HTTP = ResourceTypeInfo(
    type=ResourceType.APIGATEWAY_HTTP,
    namespace="AWS/ApiGateway",
    dimensions=lambda t: _stage(t, "ApiId"),
    defaults=(
        MetricDefault(
            "ServerErrorRate", statistic="Sum", unit="Percent", warning=1.0, critical=5.0,
            derived=DerivedRate(RawInput("5xx", zero_when_missing=True), RawInput("Count")),
            why="5xx responses per request, in percent",
        ),
        MetricDefault("Latency", unit="Milliseconds", warning=1000.0, critical=3000.0, percentiles=True),
        MetricDefault("Count", statistic="Sum", unit="Count", why="traffic, reported only"),
    ),
    inventory=Inventory(
        service="apigatewayv2", operation="get_apis", items="Items",
        keys_of=lambda item: (item["ApiId"], item.get("Name", "")), cloudwatch_id_of=lambda item: item["ApiId"],
        token_param="NextToken", token_key="NextToken", page_params={"MaxResults": "500"},
    ),
    describe=Describe(
        service="apigatewayv2", operation="get_api", params=lambda t: {"ApiId": t.id},
        missing_codes=frozenset({"NotFoundException"}),
    ),
    arn_pattern=_arn(r"apigateway:(?P<region>[a-z0-9-]+)::/apis/(?P<id>[A-Za-z0-9]+)"),
    arn_example="arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5",
    tagging_type="apigateway:apis",
    terraform_types=("aws_apigatewayv2_api",),
    registry_id_fields=("id", "name"),
    permissions=("apigateway:GET",),
)

_REQUESTS = {"FilterId": "EntireBucket"}

S3 = ResourceTypeInfo(
    type=ResourceType.S3,
    namespace="AWS/S3",
    dimensions=lambda t: (("BucketName", t.id),),
    defaults=(
        MetricDefault(
            "ServerErrorRate", statistic="Sum", unit="Percent", warning=1.0, critical=5.0,
            derived=DerivedRate(RawInput("5xxErrors", zero_when_missing=True), RawInput("AllRequests")),
            dimensions=_REQUESTS, why="needs S3 request metrics (filter EntireBucket) enabled on the bucket",
        ),
        MetricDefault("FirstByteLatency", unit="Milliseconds", warning=1000.0, critical=5000.0,
                      dimensions=_REQUESTS, percentiles=True),
        MetricDefault("AllRequests", statistic="Sum", unit="Count", dimensions=_REQUESTS,
                      why="traffic, reported only"),
    ),
    inventory=Inventory(
        service="s3", operation="list_buckets", items="Buckets", keys_of=lambda item: (item["Name"],),
        cloudwatch_id_of=lambda item: item["Name"], token_param="ContinuationToken",
        token_key="ContinuationToken",
    ),
    describe=Describe(
        service="s3", operation="head_bucket", params=lambda t: {"Bucket": t.id},
        missing_codes=frozenset({"404", "NoSuchBucket", "NotFound"}),
    ),
    arn_pattern=_arn(r"s3:::(?P<id>[a-z0-9.-]+)"),
    arn_example="arn:aws:s3:::shop-assets",
    tagging_type="s3",
    terraform_types=("aws_s3_bucket",),
    registry_id_fields=("id", "name"),
    permissions=("s3:ListBucket", "s3:ListAllMyBuckets"),
)

DYNAMODB = ResourceTypeInfo(
    type=ResourceType.DYNAMODB,
    namespace="AWS/DynamoDB",
    dimensions=lambda t: (("TableName", t.id),),
    defaults=(
        MetricDefault("ReadThrottleEvents", statistic="Sum", unit="Count", warning=0.0, critical=100.0,
                      missing_data=MissingDataPolicy.NOT_BREACHING, why="published only when reads throttle"),
        MetricDefault("WriteThrottleEvents", statistic="Sum", unit="Count", warning=0.0, critical=100.0,
                      missing_data=MissingDataPolicy.NOT_BREACHING, why="published only when writes throttle"),
        MetricDefault("ConsumedReadCapacityUnits", statistic="Sum", unit="Count", why="reported only"),
        MetricDefault("ConsumedWriteCapacityUnits", statistic="Sum", unit="Count", why="reported only"),
    ),
    inventory=Inventory(
        service="dynamodb", operation="list_tables", items="TableNames", keys_of=lambda name: (name,),
        cloudwatch_id_of=lambda name: name, token_param="ExclusiveStartTableName",
        token_key="LastEvaluatedTableName", page_params={"Limit": 100},
    ),
    describe=Describe(
        service="dynamodb", operation="describe_table", params=lambda t: {"TableName": t.id},
        missing_codes=frozenset({"ResourceNotFoundException"}),
    ),
    arn_pattern=_arn(r"dynamodb:(?P<region>[a-z0-9-]+):[0-9]{12}:table/(?P<id>[A-Za-z0-9_.-]+)"),
    arn_example="arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    tagging_type="dynamodb:table",
    terraform_types=("aws_dynamodb_table",),
    registry_id_fields=("id", "name"),
    permissions=("dynamodb:DescribeTable", "dynamodb:ListTables"),
)

SQS = ResourceTypeInfo(
    type=ResourceType.SQS,
    namespace="AWS/SQS",
    dimensions=lambda t: (("QueueName", t.id),),
    defaults=(
        MetricDefault("ApproximateAgeOfOldestMessage", statistic="Maximum", unit="Seconds", warning=300.0,
                      critical=900.0),
        MetricDefault("ApproximateNumberOfMessagesVisible", statistic="Maximum", unit="Count",
                      why="backlog, reported only"),
        MetricDefault("NumberOfMessagesSent", statistic="Sum", unit="Count", why="traffic, reported only"),
    ),
    inventory=Inventory(
        service="sqs", operation="list_queues", items="QueueUrls", keys_of=lambda url: (_queue_name(url), url),
        cloudwatch_id_of=_queue_name, token_param="NextToken", token_key="NextToken",
        page_params={"MaxResults": 1000},
    ),
    describe=Describe(
        service="sqs", operation="get_queue_url", params=lambda t: {"QueueName": t.id},
        missing_codes=frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}),
    ),
    arn_pattern=_arn(r"sqs:(?P<region>[a-z0-9-]+):[0-9]{12}:(?P<id>[A-Za-z0-9_-]+(\.fifo)?)"),
    arn_example="arn:aws:sqs:us-east-1:123456789012:jobs",
    tagging_type="sqs",
    terraform_types=("aws_sqs_queue",),
    registry_id_fields=("name", "id"),
    permissions=("sqs:GetQueueUrl", "sqs:ListQueues"),
)

TYPES: dict[ResourceType, ResourceTypeInfo] = {
    info.type: info
    for info in (LAMBDA, RDS, ECS_SERVICE, APIGATEWAY_REST, APIGATEWAY_HTTP, S3, DYNAMODB, SQS)
}
BY_TERRAFORM_TYPE: dict[str, ResourceTypeInfo] = {
    terraform: info for info in TYPES.values() for terraform in info.terraform_types
}


def required_permissions(targets: Iterable[Target], tag_selector: bool = False) -> list[str]:
    """The IAM actions a check of these targets makes (docs/operations.md lists them per type)."""
    needed = {"cloudwatch:GetMetricData"} | ({"tag:GetResources"} if tag_selector else set())
    for target in targets:
        needed.update(TYPES[target.type].permissions)
    return sorted(needed)

# The metrics AWS publishes in each namespace the types use (from the services' CloudWatch docs).
KNOWN_METRICS: dict[str, frozenset[str]] = {
    "AWS/Lambda": frozenset({
        "Invocations", "Errors", "DeadLetterErrors", "DestinationDeliveryFailures", "Throttles",
        "OversizedRecordCount", "ProvisionedConcurrencyInvocations", "ProvisionedConcurrencySpilloverInvocations",
        "RecursiveInvocationsDropped", "Duration", "PostRuntimeExtensionsDuration", "IteratorAge", "OffsetLag",
        "ConcurrentExecutions", "ProvisionedConcurrentExecutions", "ProvisionedConcurrencyUtilization",
        "UnreservedConcurrentExecutions", "ClaimedAccountConcurrency", "AsyncEventsReceived", "AsyncEventAge",
        "AsyncEventsDropped", "SignatureValidationErrors",
    }),
    "AWS/RDS": frozenset({
        "BinLogDiskUsage", "BurstBalance", "CheckpointLag", "ConnectionAttempts", "CPUUtilization",
        "CPUCreditUsage", "CPUCreditBalance", "CPUSurplusCreditBalance", "CPUSurplusCreditsCharged",
        "DatabaseConnections", "DiskQueueDepth", "EBSByteBalance%", "EBSIOBalance%", "FreeableMemory",
        "FreeLocalStorage", "FreeStorageSpace", "MaximumUsedTransactionIDs", "NetworkReceiveThroughput",
        "NetworkTransmitThroughput", "OldestReplicationSlotLag", "ReadIOPS", "ReadLatency", "ReadThroughput",
        "ReplicaLag", "ReplicationSlotDiskUsage", "SwapUsage", "TransactionLogsDiskUsage",
        "TransactionLogsGeneration", "WriteIOPS", "WriteLatency", "WriteThroughput", "DBLoad", "DBLoadCPU",
        "DBLoadNonCPU", "Deadlocks", "FailedSQLServerAgentJobsCount", "ReadIOPSLocalStorage",
        "WriteIOPSLocalStorage", "ReadLatencyLocalStorage", "WriteLatencyLocalStorage",
    }),
    "AWS/ECS": frozenset({
        "CPUUtilization", "MemoryUtilization", "CPUReservation", "MemoryReservation", "GPUReservation",
        "ActiveConnectionCount", "NewConnectionCount", "ProcessedBytes", "RequestCount", "GrpcRequestCount",
        "HTTPCode_Target_2XX_Count", "HTTPCode_Target_3XX_Count", "HTTPCode_Target_4XX_Count",
        "HTTPCode_Target_5XX_Count", "RequestCountPerTarget", "TargetProcessedBytes", "TargetResponseTime",
        "ClientTLSNegotiationErrorCount", "TargetTLSNegotiationErrorCount",
    }),
    "ECS/ContainerInsights": frozenset({
        "RunningTaskCount", "DesiredTaskCount", "PendingTaskCount", "CpuUtilized", "CpuReserved",
        "MemoryUtilized", "MemoryReserved", "NetworkRxBytes", "NetworkTxBytes", "StorageReadBytes",
        "StorageWriteBytes", "DeploymentCount", "TaskSetCount", "ServiceCount", "TaskCount",
        "ContainerInstanceCount", "EphemeralStorageReserved", "EphemeralStorageUtilized", "RestartCount",
        "ContainerCpuUtilization", "ContainerMemoryUtilization", "TaskCpuUtilization", "TaskMemoryUtilization",
    }),
    "AWS/ApiGateway": frozenset({
        "4XXError", "5XXError", "CacheHitCount", "CacheMissCount", "Count", "IntegrationLatency", "Latency",
        "4xx", "5xx", "DataProcessed", "ConnectCount", "MessageCount", "IntegrationError", "ClientError",
        "ExecutionError",
    }),
    "AWS/S3": frozenset({
        "BucketSizeBytes", "NumberOfObjects", "AllRequests", "GetRequests", "PutRequests", "DeleteRequests",
        "HeadRequests", "PostRequests", "SelectRequests", "SelectBytesScanned", "SelectBytesReturned",
        "ListRequests", "BytesDownloaded", "BytesUploaded", "4xxErrors", "5xxErrors", "FirstByteLatency",
        "TotalRequestLatency", "ReplicationLatency", "BytesPendingReplication", "OperationsPendingReplication",
        "OperationsFailedReplication",
    }),
    "AWS/DynamoDB": frozenset({
        "AccountMaxReads", "AccountMaxTableLevelReads", "AccountMaxTableLevelWrites", "AccountMaxWrites",
        "AccountProvisionedReadCapacityUtilization", "AccountProvisionedWriteCapacityUtilization",
        "AgeOfOldestUnreplicatedRecord", "ConditionalCheckFailedRequests", "ConsumedChangeDataCaptureUnits",
        "ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "FailedToReplicateRecordCount",
        "MaxProvisionedTableReadCapacityUtilization", "MaxProvisionedTableWriteCapacityUtilization",
        "OnlineIndexConsumedWriteCapacity", "OnlineIndexPercentageProgress", "OnlineIndexThrottleEvents",
        "PendingReplicationCount", "ProvisionedReadCapacityUnits", "ProvisionedWriteCapacityUnits",
        "ReadThrottleEvents", "ReplicationLatency", "ReturnedBytes", "ReturnedItemCount", "ReturnedRecordsCount",
        "SuccessfulRequestLatency", "SystemErrors", "TimeToLiveDeletedItemCount", "ThrottledPutRecordCount",
        "ThrottledRequests", "TransactionConflict", "UserErrors", "WriteThrottleEvents",
        "ReadKeyRangeThroughputThrottleEvents", "WriteKeyRangeThroughputThrottleEvents",
        "ReadMaxOnDemandThroughputThrottleEvents", "WriteMaxOnDemandThroughputThrottleEvents",
        "ReadAccountLimitThrottleEvents", "WriteAccountLimitThrottleEvents",
        "ReadProvisionedThroughputThrottleEvents", "WriteProvisionedThroughputThrottleEvents",
    }),
    "AWS/SQS": frozenset({
        "ApproximateAgeOfOldestMessage", "ApproximateNumberOfGroupsWithInflightMessages",
        "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesVisible", "NumberOfEmptyReceives", "NumberOfDeduplicatedSentMessages",
        "NumberOfMessagesDeleted", "NumberOfMessagesReceived", "NumberOfMessagesSent", "SentMessageSize",
    }),
}
