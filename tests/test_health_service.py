"""`check_with_clients` against moto: every verdict, NO_DATA, a missing target, paging past 500 queries,
existence by describe and by listing, anchored windows; AWS calls counted exactly with a meter."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from devops_operator.api.common import ResourceType
from devops_operator.api.healthcheck import EvaluationWindow, TagSelector, Verdict
from devops_operator.aws.cloudwatch import calls_needed
from devops_operator.aws.metering import AwsCallMeter
from devops_operator.ops.health.calls import CallCounter
from devops_operator.ops.health.discovery import tagged_targets
from devops_operator.ops.health.service import CheckSettings, check_with_clients
from devops_operator.ops.health.targets import Target

pytestmark = pytest.mark.integration
REGION = "us-east-1"


class Moto:
    """boto3 clients on moto, counted by a meter of the test's own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = boto3.session.Session(region_name=REGION)
        self.meter = AwsCallMeter()
        self.meter.attach(self.session)
        self._clients: dict[str, Any] = {}
        self.prefix = f"t{uuid.uuid4().hex[:8]}"

    def client(self, service: str, region: str | None = None) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.url,  # type: ignore[call-overload]
                                                         region_name=region or REGION)
        return self._clients[service]

    @property
    def client_for(self) -> Callable[[str, str | None], Any]:
        return self.client

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def function(self, name: str) -> None:
        role = self.client("iam").create_role(RoleName=self.name(f"role-{name}")[:64],
                                              AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(e, c):\n    return 1\n")
        self.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                              Handler="index.handler", Code={"ZipFile": code.getvalue()})

    def put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        for start in range(0, len(data), 20):
            self.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data[start:start + 20])


@pytest.fixture
def moto(aws_url: str) -> Iterator[Moto]:
    yield Moto(aws_url)


def minute() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


# A minute may turn between seeding and checking: the oldest datapoint then falls out of the window.
BREACH = re.compile(r"^ErrorRate 12 % > critical 5 % \(([45]) of \1 datapoints\)$")


def lambda_minutes(name: str, *, errors: float, minutes: range = range(1, 6), at: dt.datetime | None = None,
                   duration: float = 120.0) -> list[dict[str, Any]]:
    at = at or minute()
    dims = [{"Name": "FunctionName", "Value": name}]
    data = []
    for back in minutes:
        moment = at - dt.timedelta(minutes=back) + dt.timedelta(seconds=10)
        for metric, value in (("Invocations", 100.0), ("Errors", errors), ("Throttles", 0.0),
                              ("Duration", duration)):
            data.append({"MetricName": metric, "Dimensions": dims, "Timestamp": moment, "Value": value})
    return data


def test_every_verdict_with_exact_calls(moto: Moto) -> None:
    names = {v: moto.name(v) for v in ("healthy", "degraded", "unhealthy")}
    for name in names.values():
        moto.function(name)
    moto.put("AWS/Lambda", lambda_minutes(names["healthy"], errors=0.0)
             + lambda_minutes(names["degraded"], errors=2.0) + lambda_minutes(names["unhealthy"], errors=12.0))
    quiet_queue = moto.name("quiet")
    moto.client("sqs").create_queue(QueueName=quiet_queue)
    targets = [Target(ResourceType.LAMBDA, name, verdict, field=f"spec.targets.resources[{i}]")
               for i, (verdict, name) in enumerate(names.items())]
    targets += [Target(ResourceType.SQS, quiet_queue, "quiet", field="spec.targets.resources[3]"),
                Target(ResourceType.DYNAMODB, moto.name("gone"), "gone", field="spec.targets.resources[4]")]

    with moto.meter.measure() as calls:
        result = check_with_clients(moto.client_for, targets, CheckSettings())

    verdicts = {r.target.name: r.verdict.verdict for r in result.resources}
    assert verdicts == {"healthy": Verdict.HEALTHY, "degraded": Verdict.DEGRADED, "unhealthy": Verdict.UNHEALTHY,
                        "quiet": Verdict.NO_DATA, "gone": Verdict.NOT_FOUND}
    assert [r.target.name for r in result.resources][:2] == ["gone", "unhealthy"]  # worst first
    assert result.verdict == Verdict.UNHEALTHY
    by_name = {r.target.name: r for r in result.resources}
    (reason,) = by_name["unhealthy"].verdict.reasons
    assert BREACH.match(reason), reason
    assert by_name["degraded"].verdict.decided_by == "ErrorRate"
    assert "spec.targets.resources[4]" in by_name["gone"].verdict.reasons[0]
    # Existence: three functions and a queue described, the table asked for; one GetMetricData for the rest.
    assert calls.snapshot().calls == {
        ("lambda", "GetFunctionConfiguration"): 3, ("sqs", "GetQueueUrl"): 1, ("dynamodb", "DescribeTable"): 1,
        ("cloudwatch", "GetMetricData"): 1,
    }
    # No query for the table that does not exist: 4 series per function, 3 per queue.
    assert result.fetch.metrics_requested == 3 * 4 + 3 and result.fetch.requests == 1
    assert result.requests == calls.total == 6


def test_many_targets_of_a_type_are_matched_against_one_listing(moto: Moto) -> None:
    queues = [moto.name(f"q{i}") for i in range(5)]
    for queue in queues[:4]:
        moto.client("sqs").create_queue(QueueName=queue)
    targets = [Target(ResourceType.SQS, queue, queue) for queue in queues]

    with moto.meter.measure() as calls:
        result = check_with_clients(moto.client_for, targets, CheckSettings())

    assert calls.count("sqs") == calls.count("sqs", "ListQueues") == 1  # not five GetQueueUrl
    assert {r.target.name: r.verdict.verdict for r in result.resources}[queues[4]] == Verdict.NOT_FOUND
    assert sum(1 for r in result.resources if r.verdict.verdict == Verdict.NO_DATA) == 4


def test_paging_past_500_queries_makes_exactly_ceil_n_over_500_requests(moto: Moto) -> None:
    names = [moto.name(f"fn{i:03d}") for i in range(126)]  # 126 functions x 4 series = 504 queries
    moto.put("AWS/Lambda", lambda_minutes(names[0], errors=12.0, minutes=range(1, 3))
             + lambda_minutes(names[-1], errors=0.0, minutes=range(1, 3)))
    targets = [Target(ResourceType.LAMBDA, name, name, check_existence=False) for name in names]

    with moto.meter.measure() as calls:
        result = check_with_clients(moto.client_for, targets, CheckSettings())

    assert calls.count("cloudwatch", "GetMetricData") == calls_needed(504) == 2 == result.fetch.requests
    assert calls.total == 2
    assert result.fetch.metrics_requested == 504 and result.fetch.estimated_cost_usd == 0.00504
    verdicts = {r.target.name: r.verdict.verdict for r in result.resources}
    assert verdicts[names[0]] == Verdict.UNHEALTHY  # the first query batch
    assert verdicts[names[-1]] == Verdict.HEALTHY  # the second
    assert sum(1 for v in verdicts.values() if v == Verdict.NO_DATA) == 124


def test_anchored_windows_read_around_the_moment(moto: Moto) -> None:
    name = moto.name("incident")
    moto.function(name)
    incident = minute() - dt.timedelta(hours=2)
    moto.put("AWS/Lambda", lambda_minutes(name, errors=30.0, minutes=range(-4, 6), at=incident)
             + lambda_minutes(name, errors=0.0, minutes=range(6, 16), at=incident, duration=90.0))
    target = [Target(ResourceType.LAMBDA, name, "api")]
    anchored = EvaluationWindow.model_validate({"anchor": {"at": incident.isoformat().replace("+00:00", "Z"),
                                                           "before": "5m", "after": "5m"}})

    around = check_with_clients(moto.client_for, target, CheckSettings(window=anchored))
    recent = check_with_clients(moto.client_for, target, CheckSettings())

    assert (around.window.start, around.window.end) == (incident - dt.timedelta(minutes=5),
                                                        incident + dt.timedelta(minutes=5))
    assert around.verdict == Verdict.UNHEALTHY
    rate = next(t for t in around.resources[0].trends if t.metric == "ErrorRate")
    assert (rate.current, rate.previous, rate.direction, rate.assessment) == (30.0, 0.0, "up", "worse")
    assert recent.verdict == Verdict.NO_DATA  # nothing in the last five minutes


def test_tag_selector_pages_through_get_resources_and_counts_every_page(moto: Moto) -> None:
    tag = {"hc-paging": moto.prefix}
    for index in range(101):
        moto.client("sqs").create_queue(QueueName=moto.name(f"tagged{index:03d}"), tags=tag)
    moto.client("dynamodb").create_table(
        TableName=moto.name("tagged-table"), KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "hc-paging", "Value": moto.prefix}])
    counter = CallCounter()
    selector = TagSelector.model_validate({"tags": tag, "resourceTypes": ["sqs"]})

    with moto.meter.measure() as calls:
        found = tagged_targets(moto.client("resourcegroupstaggingapi"), selector, counter)

    assert len(found.targets) == 101 and {t.type for t in found.targets} == {ResourceType.SQS}
    # moto cuts a page at 100 tags (99 resources of one tag each here): two pages, both counted.
    assert calls.count("resourcegroupstaggingapi", "GetResources") == counter.total == 2
    assert all(not t.check_existence and t.field == "spec.targets.tagSelector" for t in found.targets)
