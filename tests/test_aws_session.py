"""The AWS session factory and call metering against a real moto server (and a throttling stub)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from prometheus_client import REGISTRY

from devops_operator.api.common import ErrorCategory
from devops_operator.api.devopsproject import (
    AwsSettings,
    CredentialsSource,
    DevOpsProjectSpec,
    EnvironmentPolicy,
)
from devops_operator.aws.errors import (
    AccountMismatchError,
    AwsConfigurationError,
    CredentialsError,
    ProjectNotVerifiedError,
    classify,
)
from devops_operator.aws.metering import AwsCallMeter
from devops_operator.aws.session import (
    AwsSessionFactory,
    AwsTarget,
    CredentialSpec,
    ProjectAwsConfig,
    SecretKeys,
    resolve_target,
)

ACCOUNT = "123456789012"
NAMESPACE = "team-a"
PROJECT = f"{NAMESPACE}/shop"
TRUST_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy ambient credentials, and nothing from the host's AWS configuration."""
    absent = tmp_path_factory.mktemp("aws") / "absent"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(absent))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(absent))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in (
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_PROFILE",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_STS",
            "AWS_MAX_ATTEMPTS",
            "AWS_RETRY_MODE",
        ):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def moto_url(aws_env: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def iam(moto_url: str) -> Any:
    return boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(scope="module")
def deploy_role(iam: Any) -> str:
    return str(iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]["Arn"])


@pytest.fixture(scope="module")
def discovery_role(iam: Any) -> str:
    return str(iam.create_role(RoleName="iam-manager", AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]["Arn"])


@pytest.fixture(scope="module")
def ci_user(iam: Any) -> dict[str, str]:
    """An IAM user whose keys go into a Secret; may only call sts:GetCallerIdentity."""
    iam.create_user(UserName="ci")
    iam.put_user_policy(
        UserName="ci",
        PolicyName="whoami-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def project(endpoint_url: str, environments: list[Any], region: str = "us-east-1",
            verified: bool = True) -> ProjectAwsConfig:
    """A project's AWS configuration, written the way users write the DevOpsProject spec.

    Verified by default: most tests here are about sessions that work; the gate has its own tests.
    """
    spec = DevOpsProjectSpec.model_validate(
        {"aws": {"region": region, "endpointUrl": endpoint_url}, "environments": environments}
    )
    return ProjectAwsConfig.from_spec(NAMESPACE, spec, verified=verified)


class Secrets:
    """Secret data by (namespace, name): the test's stand-in for the Kubernetes API."""

    def __init__(self, data: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> None:
        self.data = dict(data or {})

    def __call__(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return self.data.get((namespace, name))


def make_factory(
    projects: dict[str, ProjectAwsConfig], secrets: Secrets | None = None, **settings: Any
) -> tuple[AwsSessionFactory, AwsCallMeter]:
    meter = AwsCallMeter()
    settings.setdefault("max_attempts", 3)
    return AwsSessionFactory(projects.get, secrets, meter=meter, **settings), meter


def prom(name: str, service: str, operation: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service, "operation": operation}) or 0.0


# -- resolution (pure) -----------------------------------------------------------------


def test_resolve_target_takes_the_environment_region_else_the_project_default() -> None:
    aws = AwsSettings.model_validate({"region": "us-east-2", "endpointUrl": ""})
    test = EnvironmentPolicy.model_validate({"name": "test"})
    prod = EnvironmentPolicy.model_validate(
        {
            "name": "prod",
            "region": "eu-west-1",
            "accountId": ACCOUNT,
            "credentials": {"source": "irsa", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer"},
        }
    )

    assert resolve_target(aws, test) == AwsTarget(
        environment="test",
        identity="deploy",
        region="us-east-2",
        endpoint_url=None,
        credentials=CredentialSpec(source=CredentialsSource.AMBIENT),
    )
    target = resolve_target(aws, prod)
    assert (target.region, target.account_id) == ("eu-west-1", ACCOUNT)
    assert target.credentials == CredentialSpec(
        source=CredentialsSource.IRSA, role_arn=f"arn:aws:iam::{ACCOUNT}:role/deployer"
    )


def test_resolve_target_reads_secret_references_and_discovery_credentials() -> None:
    aws = AwsSettings.model_validate({"endpointUrl": "http://localhost:4566"})
    env = EnvironmentPolicy.model_validate(
        {
            "name": "test",
            "credentials": {
                "source": "secret",
                "secretRef": {"name": "keys", "sessionTokenKey": "token"},
                "externalId": "ext-123",
            },
            "discoveryCredentials": {"source": "ambient", "sessionName": "grants"},
        }
    )

    deploy = resolve_target(aws, env)
    discovery = resolve_target(aws, env, "discovery")

    assert deploy.endpoint_url == "http://localhost:4566"
    assert deploy.credentials.secret == SecretKeys(
        name="keys",
        access_key_id_key="aws_access_key_id",
        secret_access_key_key="aws_secret_access_key",
        session_token_key="token",
    )
    assert deploy.credentials.external_id == "ext-123"
    assert deploy.credentials_field == "spec.environments[test].credentials"
    assert discovery.credentials == CredentialSpec(source=CredentialsSource.AMBIENT, session_name="grants")
    assert discovery.credentials_field == "spec.environments[test].discoveryCredentials"


def test_resolve_target_refuses_a_secret_source_without_a_secret_ref() -> None:
    env = EnvironmentPolicy.model_validate({"name": "qa", "credentials": {"source": "secret"}})

    with pytest.raises(
        CredentialsError, match=r"spec.environments\[qa\].credentials has source: secret but no"
    ):
        resolve_target(AwsSettings(), env)


# -- credentials and endpoints ---------------------------------------------------------


@pytest.mark.integration
def test_ambient_session_reaches_moto_through_endpoint_url(moto_url: str) -> None:
    factory, _ = make_factory({PROJECT: project(moto_url, [{"name": "test"}])})
    s3 = factory.client(PROJECT, "test", "s3")

    s3.create_bucket(Bucket="shop-test-artifacts")

    assert "shop-test-artifacts" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert factory.target(PROJECT, "test").endpoint_url == moto_url


@pytest.mark.integration
def test_secret_credentials_are_the_secret_keys(moto_url: str, ci_user: dict[str, str]) -> None:
    secrets = Secrets({(NAMESPACE, "aws-keys"): {**ci_user, "note": "unused"}})
    env = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "aws-keys"}}}
    factory, _ = make_factory({PROJECT: project(moto_url, [env])}, secrets)

    who = factory.caller_identity(PROJECT, "test")

    assert who.arn == f"arn:aws:iam::{ACCOUNT}:user/ci"


@pytest.mark.integration
def test_secret_with_custom_key_names_and_whitespace(moto_url: str, ci_user: dict[str, str]) -> None:
    secrets = Secrets(
        {
            (NAMESPACE, "keys"): {
                "id": ci_user["aws_access_key_id"] + "\n",
                "secret": ci_user["aws_secret_access_key"] + "\n",
            }
        }
    )
    ref = {"name": "keys", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"}
    env = {"name": "test", "credentials": {"source": "secret", "secretRef": ref}}
    factory, _ = make_factory({PROJECT: project(moto_url, [env])}, secrets)

    assert factory.caller_identity(PROJECT, "test").arn.endswith(":user/ci")


@pytest.mark.integration
def test_missing_secret_names_the_secret_and_the_fix(moto_url: str) -> None:
    env = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "absent"}}}
    factory, _ = make_factory({PROJECT: project(moto_url, [env])}, Secrets())

    with pytest.raises(CredentialsError) as caught:
        factory.client(PROJECT, "test", "s3")

    message = str(caught.value)
    assert "Secret team-a/absent" in message
    assert "spec.environments[0].credentials.secretRef" in message
    assert "kubectl -n team-a create secret generic absent" in message
    assert "aws_access_key_id" in message and "aws_secret_access_key" in message


@pytest.mark.integration
def test_missing_key_names_the_key_and_never_the_values(moto_url: str) -> None:
    secrets = Secrets(
        {(NAMESPACE, "aws-keys"): {"aws_access_key_id": "AKIAEXAMPLE", "secret": "s3cr3t-value"}}
    )
    env = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "aws-keys"}}}
    factory, _ = make_factory({PROJECT: project(moto_url, [env])}, secrets)

    with pytest.raises(CredentialsError) as caught:
        factory.client(PROJECT, "test", "s3")

    message = str(caught.value)
    assert "Secret team-a/aws-keys has no (or an empty) key 'aws_secret_access_key'" in message
    assert "keys present: aws_access_key_id, secret" in message
    assert "secretRef.secretAccessKeyKey" in message
    assert "s3cr3t-value" not in message and "AKIAEXAMPLE" not in message
    assert isinstance(caught.value, AwsConfigurationError)


@pytest.mark.integration
def test_secret_source_needs_a_secret_reader(moto_url: str) -> None:
    env = {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "aws-keys"}}}
    factory, _ = make_factory({PROJECT: project(moto_url, [env])}, secrets=None)

    with pytest.raises(CredentialsError, match="without access to Secrets"):
        factory.client(PROJECT, "test", "s3")


@pytest.mark.integration
@pytest.mark.parametrize("source", ["ambient", "secret"])
def test_assume_role_gives_the_assumed_identity(
    moto_url: str, deploy_role: str, ci_user: dict[str, str], source: str
) -> None:
    creds: dict[str, Any] = {
        "source": source,
        "roleArn": deploy_role,
        "externalId": "shop-ext-id",
        "sessionName": "shop-test",
    }
    if source == "secret":
        creds["secretRef"] = {"name": "aws-keys"}
    secrets = Secrets({(NAMESPACE, "aws-keys"): ci_user})
    factory, meter = make_factory(
        {PROJECT: project(moto_url, [{"name": "test", "credentials": creds}])}, secrets
    )

    who = factory.caller_identity(PROJECT, "test")

    assert who.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/shop-test"
    credentials = factory.session(PROJECT, "test").get_credentials()
    assert isinstance(credentials, RefreshableCredentials)
    assert credentials.method == "assume-role"
    assert meter.count("sts", "AssumeRole") == 1  # the base session is metered too


@pytest.mark.integration
def test_irsa_uses_the_web_identity_then_assumes_role_arn(
    moto_url: str, deploy_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.sig")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/operator-pod")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)  # where botocore's web-identity exchange goes
    environments = [
        {"name": "test", "credentials": {"source": "irsa"}},
        {
            "name": "prod",
            "credentials": {"source": "irsa", "roleArn": deploy_role, "sessionName": "shop-prod"},
        },
    ]
    factory, _ = make_factory({PROJECT: project(moto_url, environments)})

    pod = factory.caller_identity(PROJECT, "test")
    chained = factory.caller_identity(PROJECT, "prod")

    assert pod.arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/operator-pod/")
    assert chained.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/shop-prod"


@pytest.mark.integration
def test_discovery_identity_is_separate(moto_url: str, deploy_role: str, discovery_role: str) -> None:
    environments = [
        {
            "name": "test",
            "credentials": {"roleArn": deploy_role},
            "discoveryCredentials": {"roleArn": discovery_role, "sessionName": "grants"},
        },
        {"name": "prod"},
    ]
    factory, _ = make_factory({PROJECT: project(moto_url, environments)})

    assert factory.caller_identity(PROJECT, "test").arn.endswith(":assumed-role/deployer/devops-operator")
    assert factory.caller_identity(PROJECT, "test", "discovery").arn.endswith(
        ":assumed-role/iam-manager/grants"
    )
    with pytest.raises(AwsConfigurationError, match="'prod' has no discoveryCredentials"):
        factory.client(PROJECT, "prod", "iam", "discovery")


@pytest.mark.integration
def test_expected_account_is_checked(moto_url: str) -> None:
    environments = [{"name": "test", "accountId": ACCOUNT}, {"name": "prod", "accountId": "210987654321"}]
    factory, _ = make_factory({PROJECT: project(moto_url, environments)})

    assert factory.caller_identity(PROJECT, "test").account == ACCOUNT
    with pytest.raises(AccountMismatchError, match="expects account 210987654321"):
        factory.caller_identity(PROJECT, "prod")


@pytest.mark.integration
def test_environment_region_overrides_the_project_default(moto_url: str) -> None:
    environments = [{"name": "test"}, {"name": "prod", "region": "eu-west-1"}]
    factory, _ = make_factory({PROJECT: project(moto_url, environments, region="us-east-2")})

    arns = {}
    for env in ("test", "prod"):
        logs = factory.client(PROJECT, env, "logs")
        logs.create_log_group(logGroupName="/shop/api")
        arns[env] = logs.describe_log_groups(logGroupNamePrefix="/shop/api")["logGroups"][0]["arn"]

    assert factory.client(PROJECT, "test", "logs").meta.region_name == "us-east-2"
    assert factory.client(PROJECT, "prod", "logs").meta.region_name == "eu-west-1"
    assert arns["test"].startswith(f"arn:aws:logs:us-east-2:{ACCOUNT}:log-group:/shop/api")
    assert arns["prod"].startswith(f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/shop/api")


@pytest.mark.integration
def test_unknown_project_and_environment_are_configuration_errors(moto_url: str) -> None:
    factory, _ = make_factory({PROJECT: project(moto_url, [{"name": "test"}, {"name": "prod"}])})

    with pytest.raises(AwsConfigurationError, match="'team-a/other' is unknown"):
        factory.client("team-a/other", "test", "s3")
    with pytest.raises(AwsConfigurationError, match=r"'staging' is not defined .*\(defined: test, prod\)"):
        factory.client(PROJECT, "staging", "s3")
    with pytest.raises(AwsConfigurationError, match="Unknown AWS identity 'admin'"):
        factory.client(PROJECT, "test", "s3", "admin")  # type: ignore[arg-type]


# -- caching and client settings -------------------------------------------------------


@pytest.mark.integration
def test_clients_are_cached_until_the_project_is_invalidated(moto_url: str) -> None:
    other = f"{NAMESPACE}/billing"
    projects = {PROJECT: project(moto_url, [{"name": "test"}]), other: project(moto_url, [{"name": "test"}])}
    factory, _ = make_factory(projects)
    s3 = factory.client(PROJECT, "test", "s3")
    billing_s3 = factory.client(other, "test", "s3")

    assert factory.client(PROJECT, "test", "s3") is s3
    assert factory.client(PROJECT, "test", "sts") is not s3

    projects[PROJECT] = project(moto_url, [{"name": "test", "region": "ap-southeast-2"}])
    assert factory.client(PROJECT, "test", "s3") is s3  # cached until told
    factory.invalidate(PROJECT)

    rebuilt = factory.client(PROJECT, "test", "s3")
    assert rebuilt is not s3
    assert rebuilt.meta.region_name == "ap-southeast-2"
    assert factory.client(other, "test", "s3") is billing_s3


@pytest.mark.integration
def test_sessions_share_one_model_loader(moto_url: str) -> None:
    """Many projects x environments must not each parse and keep botocore's service models."""
    projects = {f"{NAMESPACE}/p{i}": project(moto_url, [{"name": "test"}, {"name": "prod"}]) for i in range(5)}
    factory, _ = make_factory(projects)
    loaders = {
        id(factory.session(key, env)._session.get_component("data_loader"))
        for key in projects for env in ("test", "prod")
    }
    assert len(loaders) == 1
    loader = factory.session(f"{NAMESPACE}/p0", "test")._session.get_component("data_loader")
    # boto3 adds its data directory on each new session; the shared loader keeps one copy.
    assert len(loader.search_paths) == len(set(loader.search_paths))


@pytest.mark.integration
def test_a_session_built_while_invalidated_is_not_cached(moto_url: str) -> None:
    config = project(moto_url, [{"name": "test"}])
    factory: AwsSessionFactory | None = None
    lookups = 0

    def projects(key: str) -> ProjectAwsConfig | None:
        nonlocal lookups
        lookups += 1
        if lookups == 1 and factory is not None:
            factory.invalidate(key)  # the DevOpsProject changes while the first session is built
        return config

    factory = AwsSessionFactory(projects, meter=AwsCallMeter())
    first = factory.client(PROJECT, "test", "s3")
    second = factory.client(PROJECT, "test", "s3")

    assert first is not second
    assert factory.client(PROJECT, "test", "s3") is second
    factory.clear()
    assert factory.client(PROJECT, "test", "s3") is not second


@pytest.mark.integration
def test_concurrent_first_calls_share_one_client(moto_url: str) -> None:
    factory, _ = make_factory({PROJECT: project(moto_url, [{"name": "test"}])})

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: factory.client(PROJECT, "test", "cloudwatch"), range(16)))

    assert all(c is clients[0] for c in clients)


@pytest.mark.integration
def test_client_config_uses_adaptive_retries_and_the_configured_timeouts(moto_url: str) -> None:
    factory, _ = make_factory(
        {PROJECT: project(moto_url, [{"name": "test"}])}, max_attempts=7, connect_timeout=2.5, read_timeout=11
    )

    config = factory.client(PROJECT, "test", "logs").meta.config

    assert config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert config.connect_timeout == 2.5
    assert config.read_timeout == 11
    assert "devops-operator" in config.user_agent_extra


# -- metering --------------------------------------------------------------------------


@pytest.mark.integration
def test_meter_counts_exactly_the_calls_made(moto_url: str) -> None:
    factory, meter = make_factory({PROJECT: project(moto_url, [{"name": "test"}])})
    s3 = factory.client(PROJECT, "test", "s3")
    before = prom("devops_operator_aws_api_calls_total", "s3", "ListBuckets")

    with meter.measure() as measured:
        for _ in range(3):
            s3.list_buckets()
    factory.client(PROJECT, "test", "sts").get_caller_identity()

    assert measured.count("s3", "ListBuckets") == 3
    assert measured.total == 3
    assert meter.count("s3", "ListBuckets") == 3
    assert meter.count("s3") == 3
    assert meter.count("sts", "GetCallerIdentity") == 1
    assert meter.snapshot().total == 4
    assert prom("devops_operator_aws_api_calls_total", "s3", "ListBuckets") - before == 3
    meter.reset()
    assert meter.snapshot().total == 0


@pytest.mark.integration
def test_meter_counts_calls_from_many_threads(moto_url: str) -> None:
    factory, meter = make_factory({PROJECT: project(moto_url, [{"name": "test"}])})
    sts = factory.client(PROJECT, "test", "sts")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: sts.get_caller_identity(), range(12)))

    assert meter.count("sts", "GetCallerIdentity") == 12


# -- throttling ------------------------------------------------------------------------

STS_THROTTLED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    "<RequestId>r-1</RequestId></ErrorResponse>"
)
STS_IDENTITY = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    f"<Arn>arn:aws:iam::{ACCOUNT}:user/throttled</Arn><UserId>AIDATHROTTLED</UserId><Account>{ACCOUNT}</Account>"
    "</GetCallerIdentityResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>"
    "</GetCallerIdentityResponse>"
)


class ThrottlingSts:
    """An STS endpoint on 127.0.0.1 that throttles the first `throttle_first` requests."""

    def __init__(self, throttle_first: int) -> None:
        self.throttle_first = throttle_first
        self.requests = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                throttled = stub._count() <= stub.throttle_first
                body = (STS_THROTTLED if throttled else STS_IDENTITY).encode()
                self.send_response(400 if throttled else 200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _count(self) -> int:
        with self._lock:
            self.requests += 1
            return self.requests

    def __enter__(self) -> ThrottlingSts:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.integration
def test_throttled_call_succeeds_after_retries_and_retries_are_counted(aws_env: None) -> None:
    with ThrottlingSts(throttle_first=2) as stub:
        factory, meter = make_factory({PROJECT: project(stub.url, [{"name": "test"}])}, max_attempts=3)
        before = prom("devops_operator_aws_api_retries_total", "sts", "GetCallerIdentity")

        who = factory.client(PROJECT, "test", "sts").get_caller_identity()

    assert who["Arn"].endswith(":user/throttled")
    assert stub.requests == 3
    assert meter.count("sts", "GetCallerIdentity") == 1
    assert meter.retries("sts", "GetCallerIdentity") == 2
    assert prom("devops_operator_aws_api_retries_total", "sts", "GetCallerIdentity") - before == 2


@pytest.mark.integration
def test_throttling_stops_after_max_attempts_and_is_classified(aws_env: None) -> None:
    with ThrottlingSts(throttle_first=100) as stub:
        factory, meter = make_factory({PROJECT: project(stub.url, [{"name": "test"}])}, max_attempts=2)

        with pytest.raises(ClientError) as caught:
            factory.client(PROJECT, "test", "sts").get_caller_identity()

    assert stub.requests == 2
    assert meter.retries("sts") == 1
    failure = classify(caught.value)
    assert failure.category is ErrorCategory.THROTTLING
    assert (failure.code, failure.retryable) == ("Throttling", True)
    assert failure.operation == "GetCallerIdentity"


# -- real errors from moto, classified -------------------------------------------------


def set_moto_auth(moto_url: str, initial_no_auth_count: str) -> str:
    """Switch moto's IAM enforcement (server-mode API); returns the previous setting."""
    request = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth",
        data=initial_no_auth_count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@pytest.mark.integration
def test_real_access_denied_and_unknown_key_from_moto_are_classified(
    moto_url: str, ci_user: dict[str, str]
) -> None:
    secrets = Secrets({(NAMESPACE, "aws-keys"): ci_user})
    environments = [
        {"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "aws-keys"}}},
        {"name": "prod"},  # ambient "testing" keys: unknown to moto's IAM
    ]
    factory, _ = make_factory({PROJECT: project(moto_url, environments)}, secrets)
    ec2 = factory.client(PROJECT, "test", "ec2")
    ambient_s3 = factory.client(PROJECT, "prod", "s3")

    previous = set_moto_auth(moto_url, "0")
    try:
        assert factory.caller_identity(PROJECT, "test").arn.endswith(":user/ci")  # allowed by its policy
        with pytest.raises(ClientError) as denied:
            ec2.describe_instances()
        with pytest.raises(ClientError) as unknown_key:
            ambient_s3.list_buckets()
    finally:
        set_moto_auth(moto_url, previous)

    failure = classify(denied.value)
    assert failure.category is ErrorCategory.PERMISSION
    assert (failure.code, failure.http_status, failure.retryable) == ("AccessDenied", 403, False)
    assert failure.action == "ec2:DescribeInstances"
    assert failure.principal == f"arn:aws:iam::{ACCOUNT}:user/ci"
    assert f"Grant ec2:DescribeInstances on the resource to arn:aws:iam::{ACCOUNT}:user/ci" in failure.fix
    credentials = classify(unknown_key.value)
    assert (credentials.category, credentials.code) == (ErrorCategory.CREDENTIALS, "InvalidAccessKeyId")
    assert "Secret's keys" in credentials.fix


# -- freshness and the verification gate ------------------------------------------------


@pytest.mark.integration
def test_no_session_for_work_before_the_project_is_verified(moto_url: str) -> None:
    factory, meter = make_factory({PROJECT: project(moto_url, [{"name": "test"}], verified=False)})

    with pytest.raises(ProjectNotVerifiedError, match="has not been verified"):
        factory.client(PROJECT, "test", "s3")
    with pytest.raises(ProjectNotVerifiedError):
        factory.session(PROJECT, "test")
    # Verification itself is the one call allowed before: it is how the project gets verified.
    assert factory.caller_identity(PROJECT, "test").account == ACCOUNT
    assert meter.snapshot().calls == {("sts", "GetCallerIdentity"): 1}


@pytest.mark.integration
def test_a_rotated_secret_is_used_at_once(moto_url: str, iam: Any) -> None:
    keys = {}
    for user in ("rotate-old", "rotate-new"):
        iam.create_user(UserName=user)
        created = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"aws_access_key_id": created["AccessKeyId"],
                      "aws_secret_access_key": created["SecretAccessKey"]}
    secrets = Secrets({(NAMESPACE, "keys"): keys["rotate-old"]})
    versions = {(NAMESPACE, "keys"): "100"}
    environments = [{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "keys"}}}]
    factory = AwsSessionFactory(
        {PROJECT: project(moto_url, environments)}.get, secrets,
        secret_version=lambda ns, name: versions.get((ns, name)), meter=AwsCallMeter(),
    )

    sts = factory.client(PROJECT, "test", "sts")
    assert sts.get_caller_identity()["Arn"].endswith(":user/rotate-old")
    assert factory.client(PROJECT, "test", "sts") is sts  # same Secret version: cached

    secrets.data[(NAMESPACE, "keys")] = keys["rotate-new"]
    versions[(NAMESPACE, "keys")] = "101"  # what the operator's Secret watch records
    rotated = factory.client(PROJECT, "test", "sts")
    assert rotated is not sts
    assert rotated.get_caller_identity()["Arn"].endswith(":user/rotate-new")


@pytest.mark.integration
def test_account_id_is_enforced_when_a_session_is_built(moto_url: str, deploy_role: str) -> None:
    elsewhere = "210987654321"
    environments = [
        {"name": "keys", "accountId": elsewhere},  # ambient keys resolve to the moto account
        {"name": "role", "accountId": elsewhere, "credentials": {"source": "ambient", "roleArn": deploy_role}},
    ]
    factory, meter = make_factory({PROJECT: project(moto_url, environments)})

    with meter.measure() as calls, pytest.raises(AccountMismatchError, match=f"expects account {elsewhere}"):
        factory.client(PROJECT, "keys", "s3")
    assert calls.snapshot().calls == {("sts", "GetCallerIdentity"): 1}  # nothing but the check

    with meter.measure() as calls, pytest.raises(AccountMismatchError, match=f"expects account {elsewhere}"):
        factory.client(PROJECT, "role", "s3")
    assert calls.total == 0  # the role's ARN names its account: refused without a call


@pytest.mark.integration
def test_an_auth_failure_drops_the_sessions_and_asks_for_reverification(moto_url: str) -> None:
    failed: list[str] = []
    factory = AwsSessionFactory(
        {PROJECT: project(moto_url, [{"name": "test"}])}.get, meter=AwsCallMeter(), on_auth_failure=failed.append,
    )
    s3 = factory.client(PROJECT, "test", "s3")
    assert factory.client(PROJECT, "test", "s3") is s3

    previous = set_moto_auth(moto_url, "0")  # the ambient "testing" keys are unknown to moto's IAM
    try:
        with pytest.raises(ClientError) as caught:
            s3.list_buckets()
    finally:
        set_moto_auth(moto_url, previous)

    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert failed == [PROJECT]
    assert factory.client(PROJECT, "test", "s3") is not s3
