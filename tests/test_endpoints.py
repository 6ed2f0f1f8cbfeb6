"""spec.aws.endpointUrl is parsed once, as the HTTP client reads it: the allow-list cannot be walked around."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3.util
from botocore.config import Config
from kubernetes.client import ApiClient
from pydantic import ValidationError

from devops_operator.api.devopsproject import DevOpsProjectSpec
from devops_operator.aws.metering import METER
from devops_operator.endpoints import EndpointError, parse_endpoint
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.tenancy import TenancyPolicy, TenancyRule, project_violations

from support import condition, wait_for_condition

KEYED = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "k"}}}


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        Recorder.seen.append(self.path)
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 that records every request sent to it (the attacker's target)."""
    Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_backslash_url_reaches_another_host_than_the_one_a_urlsplit_check_sees(recorder: int) -> None:
    """The attack as it was: urllib.parse sees allowed-host, botocore (urllib3) connects to 127.0.0.1."""
    from urllib.parse import urlsplit

    hostile = f"http://127.0.0.1:{recorder}\\@allowed-host:4566/"
    assert urlsplit(hostile).hostname == "allowed-host"  # what the old allow-list compared
    sts = boto3.client("sts", endpoint_url=hostile, region_name="us-east-1", aws_access_key_id="a",
                       aws_secret_access_key="b", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(Exception):  # noqa: B017 (the recorder answers 403: whatever botocore makes of it)
        sts.get_caller_identity()
    assert Recorder.seen, "the signed request went to 127.0.0.1"
    # Now refused, by the policy and by the model, before any session exists.
    policy = TenancyPolicy(endpoint_hosts=["allowed-host:4566"],
                           rules=[TenancyRule(name="dev", endpoint_overrides=True)])
    with pytest.raises(ValidationError, match="backslash"):
        DevOpsProjectSpec.model_validate({"environments": [KEYED], "aws": {"endpointUrl": hostile}})
    valid = DevOpsProjectSpec.model_validate({"environments": [KEYED]})
    raw = valid.model_copy(update={"aws": valid.aws.model_copy(update={"endpoint_url": hostile})})
    refused = project_violations(policy, "dev", raw)
    assert [p.field for p in refused] == ["spec.aws.endpointUrl"] and "backslash" in refused[0].message
    assert not policy.endpoint_host_allowed(hostile)


HOSTILE = [
    ("http://127.0.0.1:8080\\@allowed-host:4566/", "backslash"),
    ("http://attacker@allowed-host:4566/", "names a user"),
    ("http://allowed-host:4566@127.0.0.1:8080/", "names a user"),
    ("http://user:pass@allowed-host:4566", "names a user"),
    ("file:///etc/passwd", "scheme must be http or https"),
    ("ftp://allowed-host:4566", "scheme must be http or https"),
    ("gopher://allowed-host:4566", "scheme must be http or https"),
    ("//allowed-host:4566", "scheme must be http or https"),
    ("allowed-host:4566", "scheme must be http or https"),
    ("http://allowed-host:99999", "port '99999' is not a number from 1 to 65535"),
    ("http://allowed-host:0", "port '0'"),
    ("http://allowed-host:-1", "port '-1'"),
    ("http://allowed-host:45a6", "port '45a6'"),
    ("http://allowed-host:", "port ''"),
    ("http://allowed-host%2e:4566", "percent-escapes"),
    ("http://allowed-host:4566/?x=@127.0.0.1", "query or a fragment"),
    ("http://allowed-host:4566#@127.0.0.1", "query or a fragment"),
    ("http://allowed host:4566", "whitespace"),
    ("http://allowed-host:4566\n.evil", "whitespace"),
    ("http://allowéd-host:4566", "non-ASCII"),
    ("http://[::1:4566", "IPv6 address must be written in brackets"),
    ("http://[not-v6]:4566", "is not an IPv6 address"),
    ("http://allowed_host:4566", "is not a DNS name"),
    ("http://-allowed-host:4566", "is not a DNS name"),
    ("http://:4566", "is not a DNS name"),
    ("", "1 to 2048 characters"),
]


@pytest.mark.parametrize(("url", "says"), HOSTILE, ids=[u or "empty" for u, _ in HOSTILE])
def test_hostile_endpoint_urls_are_refused_naming_why(url: str, says: str) -> None:
    with pytest.raises(EndpointError, match=None) as refused:
        parse_endpoint(url)
    assert says in str(refused.value)
    assert "http(s)://host[:port]" in str(refused.value)
    policy = TenancyPolicy(endpoint_hosts=["*"], rules=[TenancyRule(name="dev", endpoint_overrides=True)])
    assert not policy.endpoint_host_allowed(url)  # even an allow-everything list: an unusable URL is never allowed


@pytest.mark.parametrize("url", [
    "http://localstack.localstack.svc:4566", "https://LocalStack.LocalStack.svc.:4566/", "http://127.0.0.1:5000",
    "http://[::1]:4566", "https://s3.eu-west-1.amazonaws.com", "http://moto:5000/base/path",
])
def test_accepted_urls_read_the_same_as_the_http_client_reads_them(url: str) -> None:
    endpoint = parse_endpoint(url)
    client = urllib3.util.parse_url(endpoint.url)
    assert (client.scheme, client.host.strip("[]") if client.host else None) == (endpoint.scheme, endpoint.host)
    assert (client.port or {"http": 80, "https": 443}[endpoint.scheme]) == endpoint.port
    assert parse_endpoint(endpoint.url) == endpoint  # canonical: parsing it again changes nothing


def test_the_model_stores_the_canonical_url_the_policy_and_the_sessions_use() -> None:
    spec = DevOpsProjectSpec.model_validate({"environments": [KEYED],
                                             "aws": {"endpointUrl": "HTTP://LocalStack.Localstack.SVC.:4566/"}})
    assert spec.aws.endpoint_url == "http://localstack.localstack.svc:4566"
    policy = TenancyPolicy(endpoint_hosts=["localstack.localstack.svc:4566"],
                           rules=[TenancyRule(name="dev", endpoint_overrides=True)])
    assert project_violations(policy, "dev", spec) == []
    # Host and port are compared normalised: the scheme's port when none is written.
    assert not policy.endpoint_host_allowed("http://localstack.localstack.svc")
    assert TenancyPolicy(endpoint_hosts=["moto:80"]).endpoint_host_allowed("http://moto")
    assert TenancyPolicy(endpoint_hosts=["[::1]:4566"]).endpoint_host_allowed("http://[::1]:4566")


def test_a_project_with_a_hostile_endpoint_is_stalled_and_nothing_is_sent(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, recorder: int,
) -> None:
    """Against the operator: the endpoint names an allowed host after a backslash; the project stalls on
    the field, no AWS call is made, and the server behind the backslash receives nothing."""
    from test_devopsproject_controller import PLURAL, create, project

    hostile = f"http://127.0.0.1:{recorder}\\@localhost:4566/"
    with METER.measure() as calls:
        create(kube_api, namespace, project("hostile", environments=[{"name": "test"}], aws={"endpointUrl": hostile}))
        obj = wait_for_condition(kube_api, PLURAL, namespace, "hostile", "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "InvalidSpec"
    assert stalled["message"].startswith("spec.aws.endpointUrl") and "backslash" in stalled["message"]
    assert calls.total == 0 and Recorder.seen == []
