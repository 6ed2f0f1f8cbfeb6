"""Crash safety, tried from outside: the runner pod of an apply is deleted at a random moment, as a node drain,
an eviction or `kubectl delete pod --grace-period=N` would, and what the runner promises is checked.

Each trial is a namespace of its own: a project, one deployment of four CloudWatch log groups (AWS refuses to
create a log group that exists, so an apply made twice shows as ResourceAlreadyExistsException), the stand-in
Terraform slowed down so the apply takes a few seconds, its state saved every second or two as Terraform's
TF_STATE_PERSIST_INTERVAL does. Trials vary the moment of the deletion (before the engine starts, mid-apply,
after it finished), the grace period (2 s: often too short, so the runner is SIGKILLed; 10 s: Terraform
finishes the resource in flight and saves the state) and the Job's backoffLimit (0, or 1: a replacement pod).

The promise, per trial: no resource created twice, no plan applied twice, the state never corrupt nor older
than before the deletion, the lock released or reported in status.lock, and the deployment Ready or Failed
with a message that says what to do. `CRASH_SAFETY_TRIALS` sets the number of trials (50 is the acceptance
run of docs/performance.md; `make test` runs 10); `CRASH_SAFETY_REPORT=path` writes the per-outcome counts as
JSON.
"""

from __future__ import annotations

import collections
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import call_json, new_api_client
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread

from deployments import deployment, get, project, state_of
from support import delete_namespaced_objects, wait_until

TRIALS = int(os.environ.get("CRASH_SAFETY_TRIALS") or 10)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 + 60 * TRIALS)]  # a trial takes 10-40 s, five at once
AT_ONCE = 5
SEED = 14
GROUPS = ("alpha", "bravo", "charlie", "delta")
MODULE = {"main.tf": 'variable "name" {\n  type = string\n}\n' + "".join(
    f'resource "aws_cloudwatch_log_group" "{g}" {{\n  name = "${{var.name}}-{g}"\n}}\n' for g in GROUPS)}
# Seconds between two resource operations and seconds each one takes (a signal cannot cut an AWS call short).
# quick: each operation ends well inside a 2 s grace period; slow: an operation in flight outlasts it.
PROFILES = {"quick": ("0.3", "0.3", "1"), "slow": ("0.5", "2.5", "2")}
GRACES = (0, 2, 10)  # 0: `kubectl delete pod --grace-period=0 --force` (the kubelet still allows its 2 s minimum)
STATE_SECRET = "tfstate-default-tfstate-crash"
HINTS = ("status.lock", "terraform import", "planned again")


@dataclass
class Trial:
    number: int
    profile: str
    grace: int
    backoff_limit: int
    delay: float  # seconds after the apply pod runs, or after its engine took the lock (after_lock)
    after_lock: bool
    namespace: str = ""
    moment: str = ""  # where the deletion found the apply: starting, applying (k saved), finished
    outcome: str = ""
    before_serial: int = 0  # the state's serial just before the deletion
    saved: int = 0  # resources in the saved state just before the deletion
    orphans: int = 0  # log groups in AWS that the state does not hold (only after a reported kill)
    problems: list[str] = field(default_factory=list)
    story: list[str] = field(default_factory=list)  # the deployment's Events, kept for a trial with problems


def planned_trials(count: int) -> list[Trial]:
    """The trials, drawn from one seeded generator: a fifth deleted while the runner starts, the rest once the
    engine holds the lock, at a moment anywhere in the apply (or just after it)."""
    rng = random.Random(SEED)
    trials = []
    for number in range(count):
        profile = rng.choice(sorted(PROFILES))
        between, in_flight, _ = PROFILES[profile]
        applying = len(GROUPS) * (float(between) + float(in_flight))
        starting = rng.random() < 0.2
        trials.append(Trial(number=number, profile=profile, grace=rng.choice(GRACES),
                            backoff_limit=rng.choice((0, 1)), after_lock=not starting,
                            delay=round(rng.uniform(0, 2.0 if starting else applying * 1.15), 2)))
    return trials


def lease_holder(api: ApiClient, namespace: str) -> str | None:
    try:
        lease = call_json(api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/"
                          "lock-tfstate-default-tfstate-crash")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return (lease.get("spec") or {}).get("holderIdentity") or None


def settled(api: ApiClient, namespace: str) -> dict[str, Any] | None:
    obj = get(api, namespace, "crash")
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return None
    if status.get("phase") == "Ready" or status.get("phase") in ("Failed", "Stalled"):
        return obj
    return None


def run_trial(trial: Trial, kube_url: str, kubelet: KubeletDouble, aws_url: str, tag: str) -> Trial:
    api = new_api_client(kube_url)
    trial.namespace = f"crash-{tag}-{trial.number}"
    between, in_flight, persist = PROFILES[trial.profile]
    kubelet.env_by_namespace[trial.namespace] = {"DEVOPS_STANDIN_OPERATION_DELAY": between,
                                                 "DEVOPS_STANDIN_OPERATION_SECONDS": in_flight,
                                                 "TF_STATE_PERSIST_INTERVAL": persist}
    try:
        project(api, trial.namespace, terraform={"backoffLimit": trial.backoff_limit})
        deployment(api, trial.namespace, "crash", files=MODULE, approval={"mode": "auto"},
                   variables={"name": trial.namespace})
        delete_the_apply_pod(api, kubelet, trial)
        check(api, aws_url, trial)
    except Exception as exc:  # a trial that breaks is a problem found, with what broke
        trial.problems.append(f"{type(exc).__name__}: {exc}"[:400])
    finally:
        delete_namespaced_objects(api, trial.namespace)
        api.close()
    return trial


def delete_the_apply_pod(api: ApiClient, kubelet: KubeletDouble, trial: Trial) -> None:
    def apply_pod() -> tuple[str, str] | None:
        jobs = (get(api, trial.namespace, "crash").get("status") or {}).get("jobs") or {}
        if jobs.get("step") != "apply" or not jobs.get("current"):
            return None
        pod = kubelet.pod_of(trial.namespace, jobs["current"])
        return (jobs["current"], pod) if pod else None

    job, pod = wait_until(apply_pod, timeout=120, interval=0.05, what="the apply pod running")
    if trial.after_lock:
        wait_until(lambda: lease_holder(api, trial.namespace) or not kubelet.running(trial.namespace, job),
                   timeout=120, interval=0.05, what="the apply's engine holding the lock")
    time.sleep(trial.delay)
    before = state_of(api, trial.namespace, STATE_SECRET) or {}
    trial.saved = len(before.get("resources") or [])
    trial.moment = ("finished" if not kubelet.running(trial.namespace, job)
                    else "applying" if lease_holder(api, trial.namespace) else "starting")
    trial.before_serial = int(before.get("serial") or 0)
    try:
        call_json(api, "DELETE", f"/api/v1/namespaces/{trial.namespace}/pods/{pod}",
                  body={"gracePeriodSeconds": trial.grace})
    except ApiException as exc:
        if exc.status != 404:  # already gone: the Job finished and its pod with it
            raise


def check(api: ApiClient, aws_url: str, trial: Trial) -> None:
    obj = wait_until(lambda: settled(api, trial.namespace), timeout=300, interval=0.5, what="the deployment settled")
    status = obj["status"]
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    # The way there: what the operator made of the deletion (none: the apply ended as if nothing happened).
    way = [str(e.get("reason")) for e in sorted(events(api, trial.namespace), key=lambda e: str(e.get("eventTime")))
           if e.get("reason") in ("ApplyInterrupted", "StalePlan", "ApplyFailed")]
    failed = ((status.get("jobs") or {}).get("lastFailed") or {}).get("reason")
    trial.outcome = (status["phase"] if status["phase"] == "Ready"
                     else f"{status['phase']} ({ready.get('reason')}, {failed or 'no failed Job'})"
                     ) + (f" after {', '.join(way)}" if way and status["phase"] == "Ready" else "")
    state = state_of(api, trial.namespace, STATE_SECRET)
    addresses = [f"{r['type']}.{r['name']}" for r in (state or {}).get("resources") or []]
    if len(addresses) != len(set(addresses)):
        trial.problems.append(f"an address twice in the state: {addresses}")
    if state is not None and int(state.get("serial") or 0) < trial.before_serial:
        trial.problems.append(f"the state went back from serial {trial.before_serial} to {state.get('serial')}")
    names_in_state = {i["attributes"]["name"] for r in (state or {}).get("resources") or [] for i in r["instances"]}
    logs = boto3.client("logs", endpoint_url=aws_url, region_name="us-east-1")
    in_aws = {g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"{trial.namespace}-")
              ["logGroups"]}
    everything = json.dumps(status) + json.dumps([e.get("message") for e in events(api, trial.namespace)])
    if "AlreadyExists" in everything:
        trial.problems.append("a resource was created twice (ResourceAlreadyExistsException)")
    message = str(status.get("message") or "")
    if status["phase"] == "Ready":
        wanted = {f"{trial.namespace}-{g}" for g in GROUPS}
        if names_in_state != wanted or in_aws != wanted:
            trial.problems.append(f"Ready, but the state holds {sorted(names_in_state)} and AWS {sorted(in_aws)}")
    else:
        if not any(hint in message for hint in HINTS):
            trial.problems.append(f"{trial.outcome} without saying what to do: {message[:300]}")
        trial.orphans = len(in_aws - names_in_state)
        if trial.orphans and "terraform import" not in message:
            trial.problems.append(f"{trial.orphans} resource(s) in AWS not in the state, and nothing says so")
    if names_in_state - in_aws:
        trial.problems.append(f"the state holds what AWS does not: {sorted(names_in_state - in_aws)}")
    holder = lease_holder(api, trial.namespace)
    lock = status.get("lock") or {}
    if holder and lock.get("id") != holder:
        trial.problems.append(f"the lock {holder} is held and status.lock does not report it")
    if holder and status["phase"] == "Ready":
        trial.problems.append(f"Ready with the lock {holder} still held")
    # One "applied and verified" Event per apply that ended Ready; two of one plan would be a plan applied twice.
    verified = [str(e.get("message")) for e in events(api, trial.namespace)
                if e.get("reason") == "Applied" and "applied and verified" in str(e.get("message"))]
    plans = collections.Counter(message.split()[1] for message in verified)
    if any(n > 1 for n in plans.values()):
        trial.problems.append(f"a plan applied twice: {dict(plans)}")
    if trial.problems:
        trial.story = [f"{e.get('lastTimestamp')} {e.get('reason')}: {str(e.get('message'))[:160]}"
                       for e in events(api, trial.namespace)]


def describe(trial: Trial) -> str:
    return (f"trial {trial.number} ({trial.profile}, grace {trial.grace}s, backoffLimit {trial.backoff_limit}, "
            f"deleted {trial.delay}s after {'the lock' if trial.after_lock else 'the start'}: {trial.moment}, "
            f"{trial.saved} saved)")


def events(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    return list(call_json(api, "GET", f"/api/v1/namespaces/{namespace}/events").get("items") or [])


def test_deleting_the_runner_pod_at_random_moments_of_an_apply_loses_nothing(
    operator: OperatorThread, kubelet: KubeletDouble, kube_url: str, aws_url: str, namespace: str
) -> None:
    trials = planned_trials(TRIALS)
    tag = namespace.rsplit("-", 1)[-1]
    saved_backoff = kubelet.backoff_seconds
    kubelet.backoff_seconds = 2.0  # the replacement pod's back-off, shortened (the test waits for it)
    try:
        with ThreadPoolExecutor(AT_ONCE) as pool:
            done = list(pool.map(lambda t: run_trial(t, kube_url, kubelet, aws_url, tag), trials))
    finally:
        kubelet.backoff_seconds = saved_backoff
    report = {
        "trials": len(done), "seed": SEED,
        "outcomes": dict(collections.Counter(t.outcome for t in done)),
        "moments": dict(collections.Counter(t.moment for t in done)),
        "saved_before_deletion": dict(collections.Counter(str(t.saved) for t in done if t.moment == "applying")),
        "by_grace": {str(g): dict(collections.Counter(t.outcome for t in done if t.grace == g)) for g in GRACES},
        "orphans_reported": sum(t.orphans for t in done),
        "problems": {describe(t): [*t.problems, *t.story] for t in done if t.problems},
    }
    if os.environ.get("CRASH_SAFETY_REPORT"):
        with open(os.environ["CRASH_SAFETY_REPORT"], "w") as out:
            json.dump(report, out, indent=2)
    print(json.dumps(report, indent=2))
    assert not report["problems"], json.dumps(report, indent=2)
    assert len(done) == TRIALS
