"""Batched GetMetricData against moto: ceil(n/500) requests, empty series for no data, cost counted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest

from devops_operator.aws.cloudwatch import (
    MAX_QUERIES_PER_CALL,
    MetricQuery,
    MetricQueryError,
    calls_needed,
    fetch_metrics,
)
from devops_operator.aws.metering import AwsCallMeter

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def cloudwatch(aws_url: str) -> Any:
    session = boto3.session.Session(region_name="us-east-1")
    return session, session.client("cloudwatch", endpoint_url=aws_url)


def query(index: int, namespace: str) -> MetricQuery:
    return MetricQuery(id=f"q{index}", namespace=namespace, metric_name="Errors",
                       dimensions=(("FunctionName", f"fn-{index}"),), stat="Sum", period=60)


def test_queries_go_in_batches_of_500_with_exactly_ceil_n_over_500_requests(cloudwatch: Any) -> None:
    session, client = cloudwatch
    namespace = "Test/Batching"
    client.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": f"fn-{i}"}],
         "Timestamp": NOW - dt.timedelta(minutes=2), "Value": float(i)} for i in (0, 499, 500, 700)])
    meter = AwsCallMeter()
    meter.attach(session)
    metered = session.client("cloudwatch", endpoint_url=client.meta.endpoint_url)
    queries = [query(i, namespace) for i in range(1001)]

    with meter.measure() as calls:
        found, stats = fetch_metrics(metered, queries, NOW - dt.timedelta(minutes=10), NOW)

    assert calls.count("cloudwatch", "GetMetricData") == calls_needed(1001) == 3 == stats.requests
    assert stats.metrics_requested == 1001 and stats.estimated_cost_usd == 0.01001
    assert set(found) == {q.id for q in queries}  # every query answered, data or not
    assert found["q700"].values == [700.0] and found["q499"].values == [499.0]
    assert found["q1"].values == [] and found["q1"].status == "Complete"


class PagingCloudWatch:
    """An AWS double answering in pages (moto does not page GetMetricData), recording each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        ids = [q["Id"] for q in request["MetricDataQueries"]]
        if "NextToken" not in request:
            return {"MetricDataResults": [{"Id": i, "Timestamps": [NOW], "Values": [1.0],
                                           "StatusCode": "PartialData"} for i in ids],
                    "NextToken": "page-2", "ResponseMetadata": {"RetryAttempts": 2}}
        return {"MetricDataResults": [{"Id": i, "Timestamps": [NOW - dt.timedelta(minutes=1)], "Values": [2.0],
                                       "StatusCode": "Complete"} for i in ids],
                "ResponseMetadata": {"RetryAttempts": 0}}


def test_next_token_pages_are_followed_counted_and_merged_oldest_first() -> None:
    client = PagingCloudWatch()
    found, stats = fetch_metrics(client, [query(1, "N"), query(2, "N")], NOW - dt.timedelta(minutes=5), NOW)
    assert len(client.requests) == 2 and client.requests[1]["NextToken"] == "page-2"
    assert (stats.requests, stats.metrics_requested, stats.retries) == (2, 4, 2)
    assert found["q1"].values == [2.0, 1.0]  # oldest first across pages
    assert found["q1"].status == "PartialData"


def test_bad_query_ids_are_refused_before_any_request() -> None:
    client = PagingCloudWatch()
    with pytest.raises(MetricQueryError, match="used twice"):
        fetch_metrics(client, [query(1, "N"), query(1, "N")], NOW, NOW)
    with pytest.raises(MetricQueryError, match="must match"):
        fetch_metrics(client, [MetricQuery(id="1-bad", namespace="N", metric_name="M")], NOW, NOW)
    assert client.requests == []
    assert MAX_QUERIES_PER_CALL == 500
