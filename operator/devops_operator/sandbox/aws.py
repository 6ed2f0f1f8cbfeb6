"""The sandbox's emulated AWS: a moto server on localhost, seeded with a small demo estate.

The estate is what the runtime-operations features look at: a Lambda-style service whose
errors spike with "Database connection timeout" in its logs, a table, a queue and a bucket.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from devops_operator.aws.executors import RESTART_VARIABLE

SANDBOX_REGION = "us-east-1"
# moto accepts any keys; these make boto3 work with no ~/.aws on the machine.
SANDBOX_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": SANDBOX_REGION,
}


@dataclass
class DemoEstate:
    """Names of what `seed_estate` created, for the demo's own output."""

    bucket: str = "acme-shop-core-test-assets"
    table: str = "acme-shop-core-test-orders"
    queue: str = "acme-shop-core-test-jobs"
    function: str = "acme-shop-core-test-api"
    prod_function: str = "acme-shop-core-prod-api"
    log_group: str = "/aws/lambda/acme-shop-core-test-api"
    deploy_role: str = "acme-shop-test-deploy"
    created: list[str] = field(default_factory=list)

    @property
    def function_names(self) -> tuple[str, str]:
        return (self.function, self.prod_function)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def emulated_aws(port: int | None = None) -> Iterator[str]:
    """Run a moto server; yields its URL. Dummy credentials are put in the environment."""
    for key, value in SANDBOX_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    # Port 0: the server binds a free port itself (a port picked beforehand could be taken by then, by a
    # parallel test worker say, and moto's start() would then wait forever).
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or 0, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


def seed_estate(endpoint_url: str, estate: DemoEstate | None = None) -> DemoEstate:
    """Create the demo estate in the emulated AWS account (idempotent enough to re-run on a fresh server)."""
    estate = estate or DemoEstate()
    session = boto3.session.Session(region_name=SANDBOX_REGION)

    def client(service: str):  # type: ignore[no-untyped-def]
        return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    client("s3").create_bucket(Bucket=estate.bucket)
    estate.created.append(f"s3 bucket {estate.bucket}")
    client("dynamodb").create_table(
        TableName=estate.table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    estate.created.append(f"dynamodb table {estate.table}")
    client("sqs").create_queue(QueueName=estate.queue)
    estate.created.append(f"sqs queue {estate.queue}")
    role = client("iam").create_role(
        RoleName=estate.deploy_role,
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}',
    )
    estate.created.append(f"iam role {estate.deploy_role}")
    _seed_function(client("lambda"), role["Role"]["Arn"], estate)
    _seed_logs_and_metrics(client("logs"), client("cloudwatch"), estate)
    return estate


def _seed_function(lambda_client, role_arn: str, estate: DemoEstate) -> None:  # type: ignore[no-untyped-def]
    """The function itself, so that it exists in AWS (a missing target is NOT_FOUND); it is never invoked."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    for function in estate.function_names:
        lambda_client.create_function(FunctionName=function, Runtime="python3.12", Role=role_arn,
                                      Handler="index.handler", Code={"ZipFile": code.getvalue()})
        estate.created.append(f"lambda function {function}")


def _seed_logs_and_metrics(logs, cloudwatch, estate: DemoEstate) -> None:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.UTC)
    logs.create_log_group(logGroupName=estate.log_group)
    logs.create_log_stream(logGroupName=estate.log_group, logStreamName="2026/demo")
    events = []
    for minute in range(30, 0, -1):
        at = now - datetime.timedelta(minutes=minute)
        millis = int(at.timestamp() * 1000)
        events.append({"timestamp": millis, "message": f"INFO request handled in {40 + minute} ms"})
        if minute <= 10:  # the last ten minutes: the database starts timing out
            events.append({"timestamp": millis + 1,
                           "message": f"ERROR Database connection timeout after 3000 ms (attempt {minute % 3 + 1})"})
    logs.put_log_events(logGroupName=estate.log_group, logStreamName="2026/demo", logEvents=events)
    estate.created.append(f"log group {estate.log_group} ({len(events)} events)")
    data: dict[str, list[dict[str, Any]]] = {"AWS/Lambda": [], "AWS/SQS": []}
    for minute in range(30, 0, -1):
        at = now - datetime.timedelta(minutes=minute)
        errors = 12.0 if minute <= 10 else 0.0
        dims = [{"Name": "FunctionName", "Value": estate.function}]
        data["AWS/Lambda"].append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": 100.0})
        data["AWS/Lambda"].append({"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors})
        queue = [{"Name": "QueueName", "Value": estate.queue}]  # a queue drained within seconds: healthy
        data["AWS/SQS"].append({"MetricName": "ApproximateAgeOfOldestMessage", "Dimensions": queue,
                                "Timestamp": at, "Value": 4.0, "Unit": "Seconds"})
    for namespace, datums in data.items():
        for start in range(0, len(datums), 20):  # PutMetricData takes at most 20 datums per call here
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=datums[start:start + 20])
    estate.created.append(f"cloudwatch metrics for {estate.function} (errors spike in the last 10 min) and "
                          f"{estate.queue}")


class SimulatedTraffic:
    """The sandbox's stand-in for the functions' users (as the sandbox plays the kubelet for Jobs).

    Every few seconds each demo function gets 100 invocations. Until it is restarted, 12 of them fail
    with the database timeouts of the seeded logs; once a restart has reached it (the variable a
    Remediation's restart sets), none do: the demo's story is that a restart drops the stale database
    connections. That is what lets the example Remediation's verification see a healthy minute.
    """

    def __init__(self, endpoint_url: str, estate: DemoEstate, interval: float = 5.0) -> None:
        session = boto3.session.Session(region_name=SANDBOX_REGION)
        self._lambda = session.client("lambda", endpoint_url=endpoint_url)
        self._cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
        self.functions = estate.function_names
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-traffic", daemon=True)

    def restarted(self, function: str) -> bool:
        config = self._lambda.get_function_configuration(FunctionName=function)
        return RESTART_VARIABLE in ((config.get("Environment") or {}).get("Variables") or {})

    def tick(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for function in self.functions:
            errors = 0.0 if self.restarted(function) else 12.0
            dims = [{"Name": "FunctionName", "Value": function}]
            self._cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
                {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": 100.0},
                {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors},
                {"MetricName": "Duration", "Dimensions": dims, "Timestamp": now, "Value": 120.0,
                 "Unit": "Milliseconds"},
            ])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # a tick lost (the emulator busy or stopping) is the next tick's to make up
                logging.getLogger(__name__).debug("simulated traffic: %s", exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> SimulatedTraffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
