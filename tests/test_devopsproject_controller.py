"""The DevOpsProject reconciler end to end: real kopf + our handlers against the emulated API."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.aws.metering import METER
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.operator_thread import OperatorThread

from support import condition, delete_namespaced_objects, get_custom, wait_for_condition, wait_until

PLURAL = "devopsprojects"


def project(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": "shop",
        "environments": [{"name": "test", "autoApprove": True}, {"name": "prod", "production": True}],
    }
    body.update(spec)
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "DevOpsProject",
            "metadata": {"name": name}, "spec": body}


def create(api: ApiClient, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    result = CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL,
                                                                 manifest)
    assert isinstance(result, dict)
    return result


def events_for(api: ApiClient, namespace: str, name: str) -> list[Any]:
    events = CoreV1Api(api).list_namespaced_event(namespace).items
    return [e for e in events if e.involved_object and e.involved_object.name == name]


def encoded(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def secret(api: ApiClient, namespace: str, name: str, data: dict[str, str]) -> None:
    CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": encoded(data)})


@pytest.fixture
def iam_user_keys(aws_url: str) -> Callable[[str], dict[str, str]]:
    """Keys of a new IAM user in moto: a Secret holding them resolves to that user."""
    iam = boto3.client("iam", endpoint_url=aws_url, region_name="us-east-1")

    def make(user: str) -> dict[str, str]:
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    return make


@pytest.fixture
def moto_keys(iam_user_keys: Callable[[str], dict[str, str]], namespace: str) -> dict[str, str]:
    return iam_user_keys(f"u-{abs(hash(namespace)) % 10**8}")


def reconcile_count(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("devops_operator_reconcile_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


def test_valid_project_becomes_ready_with_example_names(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    before = reconcile_count("DevOpsProject", "success")
    create(kube_api, namespace, project("shop", organization="acme",
                                        naming={"pattern": "{organization}-{project}-{environment}-{resource}"}))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "shop", "Ready")

    status = obj["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert [(e["name"], e["exampleResourceName"]) for e in status["environments"]] == [
        ("test", "acme-shop-test-api"), ("prod", "acme-shop-prod-api")]
    assert status["environmentCount"] == 2
    # kstatus: Reconciling and Stalled exist only while True, so a settled object has neither.
    assert condition(obj, "Stalled") is None
    assert condition(obj, "Reconciling") is None
    wait_until(lambda: events_for(kube_api, namespace, "shop"), what="an Event about the project")
    assert reconcile_count("DevOpsProject", "success") > before


@pytest.mark.parametrize(
    ("spec", "field", "fix"),
    [
        ({"naming": {"pattern": "{project}-{team}-{resource}"}}, "spec.naming.pattern", "{team}"),
        ({"environments": []}, "spec.environments", "add at least one"),
        ({"environments": [{"name": "prod", "production": True, "autoApprove": True}]},
         "spec.environments[0].autoApprove", "set autoApprove: false"),
        ({"environments": [{"name": "prod", "credentials": {"source": "secret", "secretRef": {"name": "nope"}}}]},
         "spec.environments[0].credentials.secretRef", "create it"),
    ],
    ids=["unknown-placeholder", "no-environments", "production-auto-approve", "missing-secret"],
)
def test_bad_input_is_stalled_with_the_field_and_the_fix(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, spec: dict[str, Any], field: str, fix: str
) -> None:
    create(kube_api, namespace, project("bad", **spec))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "bad", "Stalled")
    stalled, ready = condition(obj, "Stalled"), condition(obj, "Ready")
    assert stalled is not None and ready is not None
    assert field in stalled["message"] and fix in stalled["message"]
    assert ready["status"] == "False" and ready["message"] == stalled["message"]
    assert obj["status"]["phase"] == "Stalled"
    warnings = wait_until(
        lambda: [e for e in events_for(kube_api, namespace, "bad") if e.type == "Warning"],
        what="a Warning event",
    )
    assert field in warnings[0].message

    # The operator keeps serving every other object.
    create(kube_api, namespace, project("good"))
    wait_for_condition(kube_api, PLURAL, namespace, "good", "Ready")


def test_missing_secret_recovers_once_the_secret_exists(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    envs = [{"name": "prod", "production": True,
             "credentials": {"source": "secret", "secretRef": {"name": "prod-aws"}}}]
    create(kube_api, namespace, project("late", environments=envs))
    wait_for_condition(kube_api, PLURAL, namespace, "late", "Stalled")

    data = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    CoreV1Api(kube_api).create_namespaced_secret(namespace, {
        "metadata": {"name": "prod-aws"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    })
    obj = wait_for_condition(kube_api, PLURAL, namespace, "late", "Ready", timeout=30)
    # The keys never leak into status or events.
    text = str(obj) + str([e.message for e in events_for(kube_api, namespace, "late")])
    assert data["aws_secret_access_key"] not in text and data["aws_access_key_id"] not in text


def test_spec_change_is_observed_with_the_new_generation(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    create(kube_api, namespace, project("evolving"))
    first = wait_for_condition(kube_api, PLURAL, namespace, "evolving", "Ready")
    ready_since = condition(first, "Ready")["lastTransitionTime"]  # type: ignore[index]

    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "evolving",
        {"spec": {"environments": [{"name": "test"}, {"name": "staging"}, {"name": "prod", "production": True}]}},
    )
    obj = wait_until(
        lambda: (o := get_custom(kube_api, PLURAL, namespace, "evolving"))["status"].get("observedGeneration") == 2
        and o,
        what="observedGeneration 2",
    )
    assert obj["metadata"]["generation"] == 2
    assert [e["name"] for e in obj["status"]["environments"]] == ["test", "staging", "prod"]
    # Still Ready: the transition time of Ready does not move without a status change.
    assert condition(obj, "Ready")["lastTransitionTime"] == ready_since  # type: ignore[index]


def test_schema_rejects_bad_types_before_the_operator_sees_them(kube_api: ApiClient, namespace: str) -> None:
    bad = project("typo", environments=[{"name": "test", "credentials": {"source": "magic"}}])
    with pytest.raises(ApiException) as err:
        create(kube_api, namespace, bad)
    assert err.value.status == 422
    assert "spec.environments[0].credentials.source" in err.value.body


def test_each_environment_identity_is_verified_with_one_sts_call(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    with METER.measure() as calls:
        create(kube_api, namespace, project("verified"))
        obj = wait_for_condition(kube_api, PLURAL, namespace, "verified", "Ready")
    verified = condition(obj, "CredentialsVerified")
    assert verified is not None and verified["status"] == "True"
    # moto's default account: the identity really came from (emulated) STS.
    assert {e["accountId"] for e in obj["status"]["environments"]} == {"123456789012"}
    assert all(e["identity"].startswith("arn:aws:") for e in obj["status"]["environments"])
    # One reconciliation, two environments: exactly two GetCallerIdentity calls, nothing else.
    assert calls.count("sts", "GetCallerIdentity") == 2
    assert calls.total == 2


def test_account_mismatch_is_stalled_and_recovers_when_fixed(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    envs = [{"name": "test"}, {"name": "prod", "production": True, "accountId": "999999999999"}]
    create(kube_api, namespace, project("wrong-account", environments=envs))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "wrong-account", "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "CredentialsRejected"
    assert stalled["message"].startswith("spec.environments[1].credentials resolve to arn:aws:")
    assert "999999999999" in stalled["message"] and "accountId" in stalled["message"]
    assert condition(obj, "CredentialsVerified")["status"] == "False"  # type: ignore[index]

    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "wrong-account",
        {"spec": {"environments": [{"name": "test"},
                                   {"name": "prod", "production": True, "accountId": "123456789012"}]}},
    )
    obj = wait_for_condition(kube_api, PLURAL, namespace, "wrong-account", "Ready")
    assert condition(obj, "Stalled") is None


def test_one_reconciliation_costs_exactly_three_kubernetes_requests(
    operator: OperatorThread, kube_server: EmulatedKubernetes, kube_api: ApiClient, namespace: str
) -> None:
    """kopf's annotation patch, one Event, one status patch: no extra writes."""
    objects = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/devopsprojects"

    def writes() -> list[tuple[str, str, bool]]:
        # (method, path, whether the body changes the spec); this test's own polls are GETs.
        return [
            (r.method.value, r.url.path, isinstance(r.data, dict) and "spec" in r.data)
            for r in kube_server.emulator.requests
            if f"/namespaces/{namespace}/" in r.url.path and r.method.value != "GET"
        ]

    create(kube_api, namespace, project("counted"))
    wait_for_condition(kube_api, PLURAL, namespace, "counted", "Ready")
    event = ("POST", f"/api/v1/namespaces/{namespace}/events", False)
    wait_until(lambda: event in writes(), what="the Ready Event (kopf posts Events from a queue)")
    # The barrier for "nothing else follows": a spec change, and the operator reporting that it
    # observed it. kopf handles one object's events in order, so whatever the first reconciliation
    # would still have caused was done before the second one wrote its status.
    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "counted", {"spec": {"subsystem": "billing"}})
    wait_for_condition(kube_api, PLURAL, namespace, "counted", "Ready")
    made = wait_until(lambda: writes() if len(writes()) >= 7 else None, what="the requests of both reconciliations")

    barrier = made.index(("PATCH", f"{objects}/counted", True))
    first, second = made[:barrier], made[barrier + 1:]
    assert sorted(first) == sorted([
        ("POST", objects, True),  # the test's create
        ("PATCH", f"{objects}/counted", False),  # kopf's annotations
        event,  # Ready: the one transition
        ("PATCH", f"{objects}/counted/status", False),
    ]), made
    # Ready stays Ready: no Event, just the annotations and the status.
    assert sorted(second) == sorted([
        ("PATCH", f"{objects}/counted", False),
        ("PATCH", f"{objects}/counted/status", False),
    ]), made


def ready_gauge(namespace: str, name: str) -> float | None:
    return REGISTRY.get_sample_value(
        "devops_operator_resource_ready", {"kind": "DevOpsProject", "namespace": namespace, "name": name})


def test_deleting_a_project_leaves_nothing_behind(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    create(kube_api, namespace, project("doomed"))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "doomed", "Ready")
    assert not obj["metadata"].get("finalizers")  # in-memory cleanup needs no finalizer: deletion never hangs
    assert ready_gauge(namespace, "doomed") == 1.0

    CustomObjectsApi(kube_api).delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, "doomed")
    wait_until(lambda: ready_gauge(namespace, "doomed") is None, what="the metric series to go")


def test_a_bad_edit_clears_what_was_verified(operator: OperatorThread, kube_api: ApiClient, namespace: str) -> None:
    create(kube_api, namespace, project("edited"))
    wait_for_condition(kube_api, PLURAL, namespace, "edited", "Ready")
    CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "edited", {"spec": {"naming": {"pattern": "{nope}-{resource}"}}})
    obj = wait_for_condition(kube_api, PLURAL, namespace, "edited", "Stalled")
    verified = condition(obj, "CredentialsVerified")
    assert verified is not None and verified["status"] == "Unknown" and verified["reason"] == "NotChecked"
    assert obj["status"]["environments"] == [] and obj["status"]["environmentCount"] == 0


def test_unreachable_aws_keeps_reconciling_instead_of_stalling(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    # Nothing listens on port 9: a network failure, which botocore retries and then gives up on.
    create(kube_api, namespace, project("offline", aws={"endpointUrl": "http://127.0.0.1:9"},
                                        environments=[{"name": "test"}]))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "offline", "Reconciling", timeout=60)
    reconciling = condition(obj, "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "AwsUnreachable"
    assert condition(obj, "Stalled") is None
    assert condition(obj, "Ready")["status"] == "Unknown"  # type: ignore[index]
    assert "network" in reconciling["message"]


def test_binary_values_in_a_credentials_secret_do_not_break_it(
    operator: OperatorThread, kube_api: ApiClient, namespace: str
) -> None:
    CoreV1Api(kube_api).create_namespaced_secret(namespace, {
        "metadata": {"name": "mixed"},
        "data": {
            "aws_access_key_id": base64.b64encode(b"AKIAIOSFODNN7EXAMPLE").decode(),
            "aws_secret_access_key": base64.b64encode(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").decode(),
            "ca.der": base64.b64encode(bytes(range(256))).decode(),  # not UTF-8
        },
    })
    envs = [{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "mixed"}}}]
    create(kube_api, namespace, project("mixed", environments=envs))
    wait_for_condition(kube_api, PLURAL, namespace, "mixed", "Ready")


# -- trust: the operator's tenancy policy, not the tenant's spec, decides ------------------------


def policy_namespace(namespace: str) -> str:
    """A namespace the test operator's policy restricts (support.TEST_POLICY: policy-* namespaces)."""
    return f"policy-{namespace}"[:63].rstrip("-")


@pytest.mark.parametrize(
    ("environments", "aws", "field", "says"),
    [
        ([{"name": "test"}], {}, "spec.environments[0].credentials.source", "the operator's own AWS identity"),
        ([{"name": "test", "accountId": "123456789012",
           "credentials": {"source": "irsa", "roleArn": "arn:aws:iam::123456789012:role/admin"}}], {},
         "spec.environments[0].credentials.roleArn", "is not one this namespace may assume"),
        ([{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "k"}}}], {},
         "spec.environments[0].accountId", "may only use accounts 123456789012"),
        ([{"name": "test", "accountId": "123456789012",
           "credentials": {"source": "secret", "secretRef": {"name": "k"}}}],
         {"endpointUrl": "http://127.0.0.1:9"}, "spec.aws.endpointUrl", "endpoint overrides are not allowed"),
    ],
    ids=["ambient", "role-outside-pattern", "account-not-declared", "endpoint-override"],
)
def test_a_project_outside_the_tenancy_policy_is_stalled_and_makes_no_aws_call(
    operator: OperatorThread, kube_api: ApiClient, namespace: str,
    environments: list[dict[str, Any]], aws: dict[str, str], field: str, says: str,
) -> None:
    ns = policy_namespace(namespace)
    with METER.measure() as calls:
        create(kube_api, ns, project("tenant", environments=environments, aws=aws))
        obj = wait_for_condition(kube_api, PLURAL, ns, "tenant", "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["reason"] == "PolicyDenied"
    assert stalled["message"].startswith(field) and says in stalled["message"]
    assert "tenancy policy rule 'restricted'" in stalled["message"]
    assert obj["status"]["tenancyRule"] == "restricted"
    assert condition(obj, "CredentialsVerified")["reason"] == "NotChecked"  # type: ignore[index]
    assert calls.total == 0
    delete_namespaced_objects(kube_api, ns)


def test_a_project_within_the_policy_is_ready(operator: OperatorThread, kube_api: ApiClient, namespace: str,
                                              moto_keys: dict[str, str]) -> None:
    ns = policy_namespace(namespace)
    secret(kube_api, ns, "keys", moto_keys)
    envs = [{"name": "test", "accountId": "123456789012",
             "credentials": {"source": "secret", "secretRef": {"name": "keys"}}}]
    create(kube_api, ns, project("tenant", environments=envs))
    obj = wait_for_condition(kube_api, PLURAL, ns, "tenant", "Ready")
    assert obj["status"]["tenancyRule"] == "restricted"
    delete_namespaced_objects(kube_api, ns)


def test_a_rotated_credentials_secret_is_verified_again_at_once(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, iam_user_keys: Any
) -> None:
    first, second = iam_user_keys("rotation-a"), iam_user_keys("rotation-b")
    secret(kube_api, namespace, "keys", first)
    envs = [{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "keys"}}}]
    create(kube_api, namespace, project("rotating", environments=envs))
    obj = wait_for_condition(kube_api, PLURAL, namespace, "rotating", "Ready")
    assert obj["status"]["environments"][0]["identity"].endswith(":user/rotation-a")

    # Reverification is due only every reverifySeconds (10 min here): the Secret watch makes it immediate.
    CoreV1Api(kube_api).replace_namespaced_secret("keys", namespace, {
        "metadata": {"name": "keys"}, "data": encoded(second)})
    wait_until(lambda: get_custom(kube_api, PLURAL, namespace, "rotating")["status"]["environments"][0]
               ["identity"].endswith(":user/rotation-b"), what="the new key's identity in status")


def test_waiting_for_a_secret_is_not_logged_as_an_error(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    envs = [{"name": "test", "credentials": {"source": "secret", "secretRef": {"name": "later"}}}]
    with caplog.at_level(logging.INFO):
        create(kube_api, namespace, project("patient", environments=envs))
        first = wait_for_condition(kube_api, PLURAL, namespace, "patient", "Stalled")
        # Observable progress instead of a sleep: the background recheck has looked twice more (each look is
        # a Stalled reconciliation in the metric).
        looked = reconcile_count("DevOpsProject", "stalled")
        wait_until(lambda: reconcile_count("DevOpsProject", "stalled") >= looked + 2, timeout=30,
                   what="two rechecks of the waiting project")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "patient" in r.getMessage()]
    assert errors == []
    obj = get_custom(kube_api, PLURAL, namespace, "patient")
    # Still waiting for the same Secret: the rechecks wrote nothing (no status churn for watches).
    assert obj["status"]["lastReconciled"] == first["status"]["lastReconciled"]
    assert condition(obj, "Stalled")["reason"] == "MissingCredentials"  # type: ignore[index]
    assert not obj["metadata"].get("finalizers")  # waiting needs no finalizer: deletion never hangs
