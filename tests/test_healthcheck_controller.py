"""The HealthCheck controller end to end: real kopf and our handlers against the emulated API and moto.

Each test's project reaches moto through an `AwsProxy` of its own, which records every AWS request the
operator makes for that project (and can throttle GetMetricData): call counts are exact even while other
tests' objects are being cleaned up, and "no call that cannot succeed" is something a test can check.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from prometheus_client import REGISTRY

from devops_operator.api.common import API_GROUP, API_VERSION, REQUESTED_AT_ANNOTATION
from devops_operator.controllers import healthcheck as controller
from devops_operator.ops.health.service import CheckResult
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.planjson import StateResource

from registry_support import lambda_resource, write_registry
from support import condition, get_custom, wait_for_condition, wait_until

PLURAL = "healthchecks"
REGION = "us-east-1"
def cbor_text(text: str) -> bytes:
    data = text.encode()
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def error_body(content_type: str, code: str, message: str) -> tuple[str, bytes]:
    """An AWS error answer in the protocol the request spoke (rpc-v2-cbor, JSON or query)."""
    if "cbor" in content_type:
        body = b"\xa2" + cbor_text("__type") + cbor_text(code) + cbor_text("message") + cbor_text(message)
        return "application/cbor", body
    if "json" in content_type:
        return "application/x-amz-json-1.0", json.dumps({"__type": code, "message": message}).encode()
    xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
           "<RequestId>refused</RequestId></ErrorResponse>")
    return "text/xml", xml.encode()


THROTTLED = ("Throttling", "Rate exceeded")
DENIED = ("AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
          "cloudwatch:GetMetricData because no identity-based policy allows the cloudwatch:GetMetricData action")


class AwsProxy:
    """Forwards AWS requests to moto, recording each one's operation; refuses the first `refuse_first`
    GetMetricData requests with `refusal` (code, message)."""

    def __init__(self, moto_url: str, refuse_first: int = 0, refusal: tuple[str, str] = THROTTLED) -> None:
        self.moto_url = moto_url
        self.refuse_left = refuse_first
        self.refusal = refusal
        self.operations: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = proxy._operation(self.command, self.path, self.headers, body)
                if proxy._refuse(operation):
                    code, message = proxy.refusal
                    kind, answer = error_body(str(self.headers.get("Content-Type", "")), code, message)
                    headers = {"Content-Type": kind, "x-amzn-query-error": f"{code};Sender"}
                    if kind == "application/cbor":
                        headers["smithy-protocol"] = "rpc-v2-cbor"
                    self._answer(400, headers, answer)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(proxy.moto_url + self.path, data=body or None, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        self._answer(answer.status, dict(answer.headers), answer.read())
                except urllib.error.HTTPError as error:
                    self._answer(error.code, dict(error.headers), error.read())

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _operation(self, method: str, path: str, headers: Any, body: bytes) -> str:
        if "/operation/" in path:
            operation = path.rsplit("/operation/", 1)[1]
        elif headers.get("X-Amz-Target"):
            operation = str(headers["X-Amz-Target"]).rsplit(".", 1)[-1]
        elif body and b"Action=" in body:
            operation = parse_qs(body.decode())["Action"][0]
        else:
            operation = f"{method} {path.split('?')[0]}"
        with self._lock:
            self.operations.append(operation)
        return operation

    def _refuse(self, operation: str) -> bool:
        with self._lock:
            if operation == "GetMetricData" and self.refuse_left > 0:
                self.refuse_left -= 1
                return True
            return False

    def count(self, operation: str) -> int:
        with self._lock:
            return sum(1 for op in self.operations if op == operation)

    def others(self, *expected: str) -> Counter[str]:
        with self._lock:
            return Counter(op for op in self.operations if op not in expected)

    def __enter__(self) -> AwsProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy(aws_url: str) -> Iterator[AwsProxy]:
    with AwsProxy(aws_url) as running:
        yield running


@pytest.fixture
def hook_calls() -> Iterator[list[tuple[str, str, str]]]:
    """What a post-check hook was handed: (namespace/name, overall verdict, first resource's verdict)."""
    seen: list[tuple[str, str, str]] = []

    def record(obj: Any, result: CheckResult) -> None:
        meta = obj["metadata"]
        seen.append((f"{meta['namespace']}/{meta['name']}", str(result.verdict),
                     str(result.resources[0].verdict.verdict)))

    controller.POST_CHECK_HOOKS.append(record)
    yield seen
    controller.POST_CHECK_HOOKS.remove(record)


@pytest.fixture
def estate(aws_url: str) -> Estate:
    return Estate(aws_url)


NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


class Estate:
    """Resources and metrics in moto under names of this test's own."""

    def __init__(self, url: str) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.url = url
        self.client = lambda service: session.client(service, endpoint_url=url)  # type: ignore[call-overload]
        self.prefix = f"hc{uuid.uuid4().hex[:8]}"
        self.tag = self.prefix

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def function(self, suffix: str, *, errors: float | None = None, tags: dict[str, str] | None = None) -> str:
        name = self.name(suffix)
        role = self.client("iam").create_role(RoleName=name[:64], AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(e, c):\n    return 1\n")
        self.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                              Handler="index.handler", Code={"ZipFile": code.getvalue()},
                                              Tags=tags or {})
        if errors is not None:
            dims = [{"Name": "FunctionName", "Value": name}]
            data = []
            now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            for back in range(1, 6):
                moment = now - dt.timedelta(minutes=back) + dt.timedelta(seconds=5)
                for metric, value in (("Invocations", 100.0), ("Errors", errors), ("Throttles", 0.0),
                                      ("Duration", 80.0)):
                    data.append({"MetricName": metric, "Dimensions": dims, "Timestamp": moment, "Value": value})
            self.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)
        return name

    def queue(self, suffix: str, tags: dict[str, str] | None = None) -> str:
        name = self.name(suffix)
        self.client("sqs").create_queue(QueueName=name, tags=tags or {})
        return name


def custom(api: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(api)


def create_project(api: ApiClient, namespace: str, endpoint: str, name: str = "shop") -> None:
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject", "metadata": {"name": name},
            "spec": {"project": "shop", "aws": {"region": REGION, "endpointUrl": endpoint},
                     "environments": [{"name": "test", "autoApprove": True}]}}
    custom(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "devopsprojects", body)
    wait_for_condition(api, "devopsprojects", namespace, name, "Ready")


def healthcheck(name: str, targets: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "HealthCheck", "metadata": {"name": name},
            "spec": {"projectRef": {"name": "shop"}, "environment": "test", "interval": "1h", "targets": targets,
                     **spec}}


def create(api: ApiClient, namespace: str, manifest: dict[str, Any]) -> None:
    custom(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, manifest)


def status(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(get_custom(api, PLURAL, namespace, name).get("status") or {})


def wait_checked(api: ApiClient, namespace: str, name: str, checks: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """The object once it has `checks` entries in its history, for its current generation."""
    def done() -> dict[str, Any] | None:
        obj = get_custom(api, PLURAL, namespace, name)
        found = obj.get("status") or {}
        current = found.get("observedGeneration") == obj["metadata"].get("generation")
        return obj if current and len(found.get("history") or []) >= checks else None
    return wait_until(done, timeout=timeout, what=f"{name} checked {checks} time(s)")


def must(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    found = condition(obj, ctype)
    assert found is not None, f"no {ctype} condition in {obj.get('status')}"
    return found


def gauge(series: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(series, labels)


def test_a_check_writes_verdicts_conditions_report_event_and_its_bill(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy,
    hook_calls: list[tuple[str, str, str]],
) -> None:
    create_project(kube_api, namespace, proxy.url)
    bad, good = estate.function("bad", errors=12.0), estate.function("good", errors=0.0)
    create(kube_api, namespace, healthcheck("api", {"resources": [
        {"type": "lambda", "id": bad, "name": "checkout"},
        {"type": "lambda", "id": good, "name": "orders"},
        {"type": "lambda", "id": estate.name("ghost"), "name": "ghost"},
    ]}))

    obj = wait_checked(kube_api, namespace, "api")
    found = obj["status"]
    assert (found["phase"], found["verdict"]) == ("Ready", "UNHEALTHY")
    assert found["counts"] == {"total": 3, "healthy": 1, "degraded": 0, "unhealthy": 1, "noData": 0, "notFound": 1}
    verdicts = {r["name"]: r["verdict"] for r in found["resources"]}
    assert verdicts == {"ghost": "NOT_FOUND", "checkout": "UNHEALTHY", "orders": "HEALTHY"}
    # A minute may turn between seeding and checking: the oldest datapoint then falls out of the window.
    assert re.match(r"^ErrorRate 12 % > critical 5 % \(([45]) of \1 datapoints\)$", found["resources"][1]["reasons"][0])
    assert must(obj, "Ready")["reason"] == "Checked"
    assert must(obj, "Healthy")["status"] == "False"
    missing = condition(obj, "TargetsFound")
    assert missing is not None and missing["reason"] == "TargetNotFound"
    assert "spec.targets.resources[2]" in missing["message"] and "spec.targets.resources[2]" in found["message"]

    # Its own bill: three existence checks, one GetMetricData for the eight series of the two functions
    # that exist (none for the one that does not), and what that cost.
    calls = found["apiCalls"]
    assert (calls["getMetricData"], calls["metricsRequested"], calls["total"], calls["retries"]) == (1, 8, 4, 0)
    assert calls["estimatedCostUsd"] == 0.00008 and calls["cpuSeconds"] > 0
    assert proxy.count("GetMetricData") == 1 and proxy.count("GET /2015-03-31/functions/" + bad + "/configuration") == 1
    assert gauge("devops_operator_health_check_metrics_requested_total", namespace=namespace, name="api") == 8

    report = CoreV1Api(kube_api).read_namespaced_config_map(found["report"], namespace)
    document = json.loads(report.data["report.json"])
    assert document["verdict"] == "UNHEALTHY" and len(document["resources"]) == 3
    assert report.metadata.owner_references[0].name == "api"
    assert "| checkout | lambda | UNHEALTHY |" in report.data["report.md"]
    assert "## Performance" in report.data["report.md"]

    def verdict_event() -> Any:
        events = CoreV1Api(kube_api).list_namespaced_event(namespace).items
        return next((e for e in events if e.reason == "VerdictChanged" and e.involved_object.name == "api"), None)
    event = wait_until(verdict_event, what="a VerdictChanged event")
    assert event.type == "Warning" and event.message.startswith("none -> UNHEALTHY")
    # Every post-check hook got the object and the result (the remediation policy registers there).
    wait_until(lambda: (f"{namespace}/api", "UNHEALTHY", "NOT_FOUND") in hook_calls, what="the post-check hook")


def test_gauges_per_resource_follow_the_spec_and_go_with_the_object(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy
) -> None:
    create_project(kube_api, namespace, proxy.url)
    bad, good = estate.function("bad", errors=12.0), estate.function("good", errors=0.0)
    slo = {"name": "checkout-errors", "target": "checkout", "metric": "ErrorRate", "objective": 99, "window": "1d",
           "goodCondition": {"comparison": "LessThanThreshold", "threshold": 1}}
    create(kube_api, namespace, healthcheck("api", {"resources": [
        {"type": "lambda", "id": bad, "name": "checkout"}, {"type": "lambda", "id": good, "name": "orders"}]},
        slos=[slo]))
    obj = wait_checked(kube_api, namespace, "api")
    labels = {"namespace": namespace, "name": "api"}

    assert gauge("devops_operator_health_verdict", **labels, verdict="UNHEALTHY") == 1.0
    assert gauge("devops_operator_health_verdict", **labels, verdict="HEALTHY") == 0.0
    assert gauge("devops_operator_health_resource_verdict", **labels, resource="checkout", type="lambda",
                 verdict="UNHEALTHY") == 1.0
    assert gauge("devops_operator_health_metric_value", **labels, resource="checkout", metric="ErrorRate") == 12.0
    assert gauge("devops_operator_health_metric_value", **labels, resource="orders", metric="Duration") == 80.0
    assert gauge("devops_operator_health_slo_burn_rate", **labels, slo="checkout-errors", window="5m") == \
        pytest.approx(100.0)
    assert obj["status"]["slos"][0]["alert"] == "page"
    assert must(obj, "SLOBurnRate")["reason"] == "FastBurn"

    # A resource taken out of the spec takes its series with it.
    custom(kube_api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, "api", {"spec": {
        "slos": [], "targets": {"resources": [{"type": "lambda", "id": bad, "name": "checkout"}]}}})
    wait_checked(kube_api, namespace, "api", checks=2)
    assert gauge("devops_operator_health_resource_verdict", **labels, resource="orders", type="lambda",
                 verdict="HEALTHY") is None
    assert gauge("devops_operator_health_metric_value", **labels, resource="orders", metric="Duration") is None
    assert gauge("devops_operator_health_slo_burn_rate", **labels, slo="checkout-errors", window="5m") is None

    # So does the object.
    custom(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, "api")
    wait_until(lambda: gauge("devops_operator_health_verdict", **labels, verdict="UNHEALTHY") is None,
               what="the gauges of a deleted HealthCheck to go")
    assert gauge("devops_operator_health_resource_verdict", **labels, resource="checkout", type="lambda",
                 verdict="UNHEALTHY") is None


def request_check(api: ApiClient, namespace: str, name: str, value: str) -> None:
    custom(api).patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name,
                                               {"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: value}}})


def test_suspended_checks_run_only_on_request(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy
) -> None:
    create_project(kube_api, namespace, proxy.url)
    fn = estate.function("api", errors=0.0)
    targets = {"resources": [{"type": "lambda", "id": fn, "name": "api"}]}
    create(kube_api, namespace, healthcheck("paused", targets, interval="1s", suspend=True))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "paused", "Ready")
    assert must(obj, "Ready")["reason"] == "Suspended" and "lastCheck" not in obj["status"]

    request_check(kube_api, namespace, "paused", "2025-03-20T12:00:00Z")
    first = wait_checked(kube_api, namespace, "paused")["status"]
    assert first["lastHandledRequest"] == "2025-03-20T12:00:00Z" and first["verdict"] == "HEALTHY"

    # A running check at the same 1 s interval checks three times while the suspended one would have too.
    create(kube_api, namespace, healthcheck("running", targets, interval="1s"))
    wait_checked(kube_api, namespace, "running", checks=3)
    paused = status(kube_api, namespace, "paused")
    assert (len(paused["history"]), paused["lastCheck"]) == (1, first["lastCheck"])

    request_check(kube_api, namespace, "paused", "2025-03-20T12:05:00Z")
    again = wait_checked(kube_api, namespace, "paused", checks=2)["status"]
    assert again["lastHandledRequest"] == "2025-03-20T12:05:00Z"


def test_a_requested_check_runs_at_once_between_intervals(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy
) -> None:
    create_project(kube_api, namespace, proxy.url)
    fn = estate.function("api", errors=2.0)
    create(kube_api, namespace, healthcheck("api", {"resources": [{"type": "lambda", "id": fn}]}, historyLimit=5))
    first = wait_checked(kube_api, namespace, "api")["status"]
    assert first["verdict"] == "DEGRADED" and first["nextCheck"] > first["lastCheck"]

    request_check(kube_api, namespace, "api", "now-1")
    second = wait_checked(kube_api, namespace, "api", checks=2)["status"]
    assert second["lastHandledRequest"] == "now-1"
    assert [h["verdict"] for h in second["history"]] == ["DEGRADED", "DEGRADED"]
    assert proxy.count("GetMetricData") == 2


def test_throttled_get_metric_data_is_retried_and_counted(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, aws_url: str
) -> None:
    with AwsProxy(aws_url, refuse_first=2) as throttling:
        create_project(kube_api, namespace, throttling.url)
        fn = estate.function("api", errors=12.0)
        create(kube_api, namespace, healthcheck("api", {"resources": [{"type": "lambda", "id": fn}]}))
        found = wait_checked(kube_api, namespace, "api")["status"]

    assert found["verdict"] == "UNHEALTHY"
    assert (found["apiCalls"]["getMetricData"], found["apiCalls"]["retries"]) == (1, 2)
    assert throttling.count("GetMetricData") == 3  # two throttled, retried by botocore with backoff


def test_a_refused_permission_stalls_naming_what_the_check_needs(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, aws_url: str
) -> None:
    with AwsProxy(aws_url, refuse_first=1000, refusal=DENIED) as denying:
        create_project(kube_api, namespace, denying.url)
        fn = estate.function("api", errors=0.0)
        create(kube_api, namespace, healthcheck("api", {"resources": [{"type": "lambda", "id": fn}]}))
        obj = wait_for_condition(kube_api, PLURAL, namespace, "api", "Stalled")
        refused = denying.count("GetMetricData")

    stalled = must(obj, "Stalled")
    assert stalled["reason"] == "AccessDenied" and "cloudwatch:GetMetricData" in stalled["message"]
    assert "lambda:GetFunctionConfiguration" in stalled["message"]  # everything such a check calls
    assert refused == 1  # a refusal is not retried


@pytest.mark.parametrize(
    ("spec", "reason", "field", "fragment"),
    [
        ({"metrics": [{"type": "lambda", "metrics": [{"name": "Errrors", "threshold": {"warning": 1}}]}]},
         "InvalidSpec", "spec.metrics[0].metrics[0].name", "did you mean Errors"),
        ({"metrics": [{"type": "lambda", "metrics": [{"name": "Duration", "period": 10}]}],
          "window": {"lastMinutes": 600}},
         "InvalidSpec", "spec.metrics[0].metrics[0].period", "keeps 10-second datapoints only 3h"),
        ({"window": {"anchor": {"at": (NOW - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")}}},
         "InvalidSpec", "spec.window.anchor.at", "keeps 60-second datapoints only 15d"),
        ({"environment": "staging"}, "EnvironmentNotFound", "spec.environment", "defined: test"),
    ],
    ids=["unknown-metric", "window-past-retention", "anchor-past-retention", "unknown-environment"],
)
def test_bad_input_stalls_naming_the_field_and_calls_nothing(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, proxy: AwsProxy, spec: dict[str, Any],
    reason: str, field: str, fragment: str
) -> None:
    create_project(kube_api, namespace, proxy.url)
    create(kube_api, namespace, healthcheck("bad", {"resources": [{"type": "lambda", "id": "api"}]}, **spec))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "bad", "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == reason
    assert field in stalled["message"] and fragment in stalled["message"]
    assert "apiCalls" not in obj["status"]
    assert proxy.others("GetCallerIdentity") == Counter()  # only the project's own verification


def test_an_unknown_project_is_a_quiet_wait_with_no_call(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    create(kube_api, namespace, healthcheck("orphan", {"resources": [{"type": "lambda", "id": "api"}]}))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "orphan", "Reconciling")
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "Unknown" and ready["reason"] == "ProjectNotFound"
    assert "spec.projectRef" in ready["message"]
    assert condition(obj, "Stalled") is None and obj["status"]["phase"] == "Pending"
    assert "apiCalls" not in obj["status"]


def test_an_unknown_resource_type_is_refused_by_the_api_server(kube_api: ApiClient, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        create(kube_api, namespace, healthcheck("ec2", {"resources": [{"type": "ec2", "id": "i-123"}]}))
    assert refused.value.status == 422
    assert "spec.targets.resources[0].type" in str(refused.value.body)


def test_targets_from_a_tag_selector(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy
) -> None:
    create_project(kube_api, namespace, proxy.url)
    tags = {"hc-test": estate.tag}
    estate.function("tagged", errors=0.0, tags=tags)
    estate.queue("jobs", tags=tags)
    estate.client("sns").create_topic(Name=estate.name("topic"), Tags=[{"Key": "hc-test", "Value": estate.tag}])
    create(kube_api, namespace, healthcheck("tagged", {"tagSelector": {"tags": tags}}))

    found = wait_checked(kube_api, namespace, "tagged")["status"]
    assert sorted(r["name"] if "name" in r else r["id"] for r in found["resources"]) == sorted(
        [estate.name("tagged"), estate.name("jobs")])
    assert found["targets"]["source"] == "tagSelector" and found["targets"]["resolved"] == 2
    assert proxy.count("GetResources") == 1 and found["targets"]["skipped"] == 0  # the topic is no target type
    # The tagging API lists what exists: nothing is described again.
    assert found["apiCalls"]["total"] == found["apiCalls"]["getMetricData"] + 1


def test_targets_from_a_deployment_registry_wait_quietly_for_it(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, estate: Estate, proxy: AwsProxy
) -> None:
    create_project(kube_api, namespace, proxy.url)
    fn = estate.function("api", errors=0.0)
    create(kube_api, namespace, healthcheck("deployed", {"deploymentRef": {"name": "shop-api"}}))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "deployed", "Reconciling")
    assert must(obj, "Ready")["reason"] == "RegistryNotFound"
    assert condition(obj, "Stalled") is None
    assert "InfraDeployment" in must(obj, "TargetsFound")["message"]

    deployment = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "InfraDeployment",
                  "metadata": {"name": "shop-api"},
                  "spec": {"projectRef": {"name": "shop"}, "environment": "test", "suspend": True,
                           "source": {"inline": {"main.tf": "# registry fixture\n"}}}}
    custom(kube_api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "infradeployments",
                                                     deployment)
    custom(kube_api).patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, namespace, "infradeployments", "shop-api",
        {"status": {"registry": {"configMapName": "shop-test-registry", "resourceCount": 2}}})
    # The registry as an apply writes it: in the project's namespace, owned by the project, every deployment's.
    write_registry(kube_api, namespace, "shop", "test", f"{namespace}/shop-api", [
        lambda_resource(fn, REGION),
        StateResource(address="aws_iam_role.api", type="aws_iam_role", name="api", id="api-role", arn=None,
                      region=REGION)])
    write_registry(kube_api, namespace, "shop", "test", f"{namespace}/another", [
        StateResource(address="aws_sqs_queue.other", type="aws_sqs_queue", name="other", id="other", arn=None,
                      region=REGION)])

    found = wait_checked(kube_api, namespace, "deployed")["status"]
    assert [(r["name"], r["verdict"]) for r in found["resources"]] == [("api", "HEALTHY")]
    assert found["targets"] == {"source": "deploymentRef", "resolved": 1, "skipped": 1,
                                "skippedTypes": ["aws_iam_role"], "skippedTypesTruncated": False}
