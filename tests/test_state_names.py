"""State names in a shared state namespace never collide (issue 14, item 13d), and old state is kept.

The attack first: `team`/`a-web` and `team-a`/`web` were both `<prefix>-team-a-web`, one state Secret and one
lock Lease for two deployments (each apply would plan to destroy the other's resources). Then the upgrade: a
deployment that already has state under the old name keeps it, and one created after the upgrade never takes
an old name that happens to be another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.devopsproject import TerraformBackend
from devops_operator.api.infradeployment import REPLAN_ANNOTATION
from devops_operator.kube.client import call_json
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.terraform.backends import (
    MAX_SECRET_SUFFIX,
    bounded_suffix,
    legacy_sharers,
    legacy_state_suffix,
    lock_lease_name,
    resolve_backend,
    state_secret_name,
)

from deployments import deployment, get, project, state_of, wait_phase
from support import delete_namespaced_objects, wait_until

SHARED = TerraformBackend.model_validate({"type": "kubernetes", "kubernetes": {"namespace": "tfstate"}})


def _suffix(namespace: str, name: str, backend: TerraformBackend = SHARED) -> str:
    settings = resolve_backend(backend, deployment=name, deployment_namespace=namespace, project_namespace="p",
                               region="us-east-1")
    assert settings.secret_suffix is not None
    return settings.secret_suffix


# -- pure ------------------------------------------------------------------------------------------


def test_namespace_and_name_pairs_that_the_old_naming_joined_get_distinct_states() -> None:
    assert legacy_state_suffix("tfstate", deployment="a-web", deployment_namespace="team",
                               state_namespace="tfstate") == legacy_state_suffix(
        "tfstate", deployment="web", deployment_namespace="team-a", state_namespace="tfstate")  # the attack
    first, second = _suffix("team", "a-web"), _suffix("team-a", "web")
    assert (first, second) == ("tfstate.team.a-web", "tfstate.team-a.web")
    assert state_secret_name(first) != state_secret_name(second) and lock_lease_name(first) != lock_lease_name(second)
    # In the deployment's own namespace the name alone is unique: unchanged, no state moves.
    own = TerraformBackend.model_validate({"type": "kubernetes"})
    assert _suffix("team-a", "web", own) == "tfstate-web"
    assert resolve_backend(own, deployment="web", deployment_namespace="team-a", project_namespace="p",
                           region="r").legacy_suffix is None


def test_long_names_are_bounded_with_a_hash_of_the_whole_pair_never_cut_into_a_collision() -> None:
    long_a, long_b = "web-" + "x" * 240 + "-a", "web-" + "x" * 240 + "-b"  # one 244-character head, as [:200] cut
    a, b = _suffix("team-a", long_a), _suffix("team-a", long_b)
    assert a != b and len(a) <= MAX_SECRET_SUFFIX and len(b) <= MAX_SECRET_SUFFIX
    assert a.startswith("tfstate.team-a.web-xxx") and a.rsplit(".h", 1)[1].isalnum()
    assert len(state_secret_name(a)) <= 253 and len(lock_lease_name(a)) <= 253
    # A name shaped like a hashed suffix is hashed too, so nobody can name themselves into another's hash.
    assert bounded_suffix(a) != a and bounded_suffix("tfstate.team.web") == "tfstate.team.web"
    assert _suffix("team-a", a[len("tfstate.team-a."):]) != a
    # A prefix with a dot would make the first dots ambiguous: the hash decides.
    dotted = TerraformBackend.model_validate({"type": "kubernetes", "kubernetes": {
        "namespace": "tfstate", "secretSuffixPrefix": "tf.state"}})
    assert ".h" in _suffix("team", "web", dotted)


def test_the_old_naming_names_every_deployment_it_gave_the_same_state() -> None:
    assert legacy_sharers(deployment="a-web", deployment_namespace="team", state_namespace="tfstate") == [
        ("tfstate", "team-a-web"), ("team-a", "web")]
    assert legacy_sharers(deployment="web", deployment_namespace="team", state_namespace="tfstate") == [
        ("tfstate", "team-web")]


# -- end to end: the operator, the kubelet double, the stand-in and moto ------------------------------------


def _state(api: ApiClient, namespace: str, suffix: str) -> dict[str, Any] | None:
    return state_of(api, namespace, state_secret_name(suffix))


def _lease(api: ApiClient, namespace: str, suffix: str) -> bool:
    try:
        call_json(api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lock_lease_name(suffix)}")
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture
def second_namespace(namespace: str, kube_api: ApiClient) -> Iterator[str]:
    name = f"{namespace}-a"  # `<ns>`/`a-web` and `<ns>-a`/`web`: one name under the old naming
    yield name
    delete_namespaced_objects(kube_api, name)


SHARED_STATE = {"type": "kubernetes", "kubernetes": {"namespace": "state-shared"}}
AUTO = {"mode": "auto"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_deployments_the_old_naming_joined_keep_states_and_locks_of_their_own(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str, second_namespace: str
) -> None:
    project(kube_api, namespace)
    project(kube_api, second_namespace)
    deployment(kube_api, namespace, "a-web", backend=SHARED_STATE, approval=AUTO,
               variables={"name": f"{namespace}-one"})
    deployment(kube_api, second_namespace, "web", backend=SHARED_STATE, approval=AUTO,
               variables={"name": f"{namespace}-two"})
    for ns, name in ((namespace, "a-web"), (second_namespace, "web")):
        ready = wait_phase(kube_api, ns, name, "Ready", "Failed")["status"]
        assert ready["phase"] == "Ready", ready["message"]
        assert ready["state"] == {"namespace": "state-shared", "secretSuffix": f"tfstate.{ns}.{name}",
                                  "legacy": False}
    one, two = (_state(kube_api, "state-shared", f"tfstate.{namespace}.a-web"),
                _state(kube_api, "state-shared", f"tfstate.{second_namespace}.web"))
    assert one is not None and two is not None
    # Each state holds its own queue only: neither apply saw (or planned to destroy) the other's.
    assert [r["name"] for r in one["resources"]] == [r["name"] for r in two["resources"]] == ["jobs"]
    assert one["resources"][0]["instances"][0]["attributes"]["name"] == f"{namespace}-one-jobs"
    assert two["resources"][0]["instances"][0]["attributes"]["name"] == f"{namespace}-two-jobs"
    assert _lease(kube_api, "state-shared", f"tfstate.{namespace}.a-web")
    assert _lease(kube_api, "state-shared", f"tfstate.{second_namespace}.web")
    assert _state(kube_api, "state-shared", f"tfstate-{namespace}-a-web") is None  # the old shared name: unused


def _move_secret(api: ApiClient, namespace: str, old: str, new: str) -> None:
    secret = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{old}")
    CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": new, "labels": secret["metadata"].get(
        "labels")}, "type": secret.get("type"), "data": secret["data"]})
    CoreV1Api(api).delete_namespaced_secret(old, namespace)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_deployment_with_state_under_the_old_name_keeps_it_and_a_new_one_never_takes_it(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, aws_url: str, namespace: str,
    second_namespace: str,
) -> None:
    project(kube_api, second_namespace)
    deployment(kube_api, second_namespace, "web", backend=SHARED_STATE, approval=AUTO,
               variables={"name": f"{namespace}-old"})
    ready = wait_phase(kube_api, second_namespace, "web", "Ready", "Failed")["status"]
    assert ready["phase"] == "Ready", ready["message"]
    # What an operator before the fix left: the state under `<prefix>-<ns>-<name>`, a status with no record.
    legacy = f"tfstate-{second_namespace}-web"
    _move_secret(kube_api, "state-shared", state_secret_name(f"tfstate.{second_namespace}.web"),
                 state_secret_name(legacy))
    CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, second_namespace, "infradeployments", "web", {"status": {"state": None}})
    CustomObjectsApi(kube_api).patch_namespaced_custom_object(  # a look now (a status change triggers none)
        API_GROUP, API_VERSION, second_namespace, "infradeployments", "web",
        {"metadata": {"annotations": {REPLAN_ANNOTATION: "after-upgrade"}}})

    def kept() -> dict[str, Any] | None:
        status = get(kube_api, second_namespace, "web").get("status") or {}
        seen.append({k: status.get(k) for k in ("phase", "message", "state", "plan")})
        return status if (status.get("state") or {}).get("legacy") and status.get("phase") == "Ready" and (
            status.get("plan") or {}).get("id") != ready["plan"]["id"] else None

    seen: list[dict[str, Any]] = []
    try:
        status = wait_until(kept, timeout=120, what="the old state kept, planned again")
    except AssertionError:
        raise AssertionError(seen[-1]) from None
    assert status["state"] == {"namespace": "state-shared", "secretSuffix": legacy, "legacy": True}
    # Planned against the old state: nothing to create again, and no second, empty state under the new name.
    assert status["plan"]["add"] == 0 and status["plan"]["destroy"] == 0, status["plan"]
    assert _state(kube_api, "state-shared", f"tfstate.{second_namespace}.web") is None
    assert len((_state(kube_api, "state-shared", legacy) or {})["resources"]) == 1
    # A deployment created after the upgrade whose old name is that very state: it starts its own.
    project(kube_api, namespace)
    deployment(kube_api, namespace, "a-web", backend=SHARED_STATE, approval=AUTO,
               variables={"name": f"{namespace}-new"})
    newcomer = wait_phase(kube_api, namespace, "a-web", "Ready", "Failed")["status"]
    assert newcomer["phase"] == "Ready", newcomer["message"]
    assert newcomer["state"] == {"namespace": "state-shared", "secretSuffix": f"tfstate.{namespace}.a-web",
                                 "legacy": False}
    assert newcomer["plan"]["add"] == 1
    assert [r["instances"][0]["attributes"]["name"] for r in (_state(kube_api, "state-shared", legacy) or {})[
        "resources"]] == [f"{namespace}-old-jobs"]  # the old state is the old deployment's alone


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_deployments_that_may_both_have_written_one_old_state_are_both_stalled(
    operator: OperatorThread, kube_api: ApiClient, namespace: str, second_namespace: str
) -> None:
    legacy = f"tfstate-{namespace}-a-web"  # what older operators named both states
    CoreV1Api(kube_api).create_namespaced_secret("state-shared", {"metadata": {"name": state_secret_name(legacy)},
                                                                  "data": {"tfstate": ""}})
    pairs = ((namespace, "a-web"), (second_namespace, "web"))
    for ns, name in pairs:
        project(kube_api, ns)
        deployment(kube_api, ns, name, backend=SHARED_STATE, suspend=True)
        wait_until(lambda ns=ns, name=name: (get(kube_api, ns, name).get("status") or {}).get("state"),
                   what=f"{name}'s first look")
    for ns, name in pairs:  # as older operators left them: a plan made, no state name recorded
        CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
            API_GROUP, API_VERSION, ns, "infradeployments", name,
            {"status": {"state": None, "plan": {"id": "0123456789abcdef", "digest": "old"}}})
    for ns, name in pairs:
        CustomObjectsApi(kube_api).patch_namespaced_custom_object(
            API_GROUP, API_VERSION, ns, "infradeployments", name,
            {"metadata": {"annotations": {REPLAN_ANNOTATION: "after-upgrade"}}})
    for (ns, name), (other_ns, other) in zip(pairs, reversed(pairs), strict=True):
        status = wait_phase(kube_api, ns, name, "Stalled")["status"]
        assert {c["reason"] for c in status["conditions"] if c["type"] == "Stalled"} == {"LegacyStateShared"}
        assert status["message"].startswith(f"spec.backend: the state Secret state-shared/{state_secret_name(legacy)}")
        assert f"{other_ns}/{other}" in status["message"] and "state" not in status
