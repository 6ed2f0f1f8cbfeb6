"""`devopsctl sandbox` / `make demo`: the operator's main job on an emulated Kubernetes and AWS.

It starts the emulated Kubernetes API (kmock plus our fidelity layer) and writes a kubeconfig,
starts moto with a seeded demo estate, runs the operator against both (with its metrics and
liveness endpoints on free local ports), applies `examples/`, and prints every resource's phase
and conditions as they change. Ctrl-C and SIGTERM stop it the same way, with exit code 0.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kubernetes.client import ApiClient, CustomObjectsApi

from devops_operator import metrics
from devops_operator.api import ALL_KINDS
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.crdgen import render_all
from devops_operator.config import OperatorConfig
from devops_operator.kube import apply as kube_apply
from devops_operator.kube import client as kube_client
from devops_operator.kube.conditions import get_condition
from devops_operator.ops.remediation.assessment import approve_command
from devops_operator.sandbox import tenancy as sandbox_tenancy
from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.aws import SimulatedTraffic, emulated_aws, seed_estate
from devops_operator.sandbox.kubelet import KubeletDouble, usable_engine
from devops_operator.sandbox.operator_thread import OperatorThread

# Exit code when stopped by Ctrl-C or SIGTERM: stopping the demo on purpose is not a failure.
STOPPED = 0
LOCALHOST = "127.0.0.1"


@dataclass
class SandboxOptions:
    examples: Path = Path("examples")
    state_dir: Path = Path(".sandbox")
    namespace: str = "default"
    port: int = 0
    once: bool = False
    # A verified remediation needs one whole minute of metrics after it acts: settling takes about two.
    settle_timeout: float = 240.0
    poll_interval: float = 0.5


@dataclass(frozen=True)
class Seen:
    """What the printer last showed of one object; a change prints a new line."""

    phase: str
    conditions: tuple[tuple[str, str, str], ...]


def project_details(status: dict[str, Any]) -> list[str]:
    return [
        f"env {env.get('name')}{' (production)' if env.get('production') else ''}: names like "
        f"{env.get('exampleResourceName')}, region {env.get('region')}, identity {env.get('identity', 'unverified')}"
        for env in status.get("environments") or []
    ]


def healthcheck_details(status: dict[str, Any]) -> list[str]:
    """Each resource's verdict with the metric that decided it, the SLOs, and what the check cost."""
    lines = [
        f"{r.get('name') or r.get('id')} ({r.get('type')}): {r.get('verdict')}"
        + (f" - {r['reasons'][0]}" if r.get("reasons") else "")
        for r in status.get("resources") or []
    ]
    for item in status.get("slos") or []:
        sli = item.get("sli")
        burn = item.get("burnRate")
        lines.append(f"SLO {item.get('name')}: SLI {'-' if sli is None else f'{sli:.2f} %'} of objective "
                     f"{item.get('objective')} %, burn rate (1h) {'-' if burn is None else f'{burn:.1f}x'}, "
                     f"alert {item.get('alert') or 'none'}")
    calls = status.get("apiCalls") or {}
    if calls:
        lines.append(f"AWS: {calls.get('total', 0)} requests ({calls.get('getMetricData', 0)} GetMetricData, "
                     f"{calls.get('metricsRequested', 0)} metrics) = ${calls.get('estimatedCostUsd', 0.0):.6f}; "
                     f"report: ConfigMap {status.get('report')}")
    return lines


def deployment_details(status: dict[str, Any]) -> list[str]:
    plan = status.get("plan") or {}
    lines = []
    if plan:
        changes = ", ".join(f"{c.get('action')} {c.get('address')}" for c in (plan.get("summary") or [])[:5])
        lines.append(f"plan {plan.get('id')} (engine: {plan.get('engine')}): {plan.get('add', 0)} to add, "
                     f"{plan.get('change', 0)} to change, {plan.get('destroy', 0)} to destroy: {changes}")
    if status.get("lastAppliedPlanId"):
        registry = (status.get("registry") or {}).get("configMapName")
        lines.append(f"applied plan {status['lastAppliedPlanId']}: {status.get('resourceCount', 0)} resource(s); "
                     rf"DEPLOYED.md: kubectl get configmap {registry} -o jsonpath='{{.data.DEPLOYED\.md}}'")
    return lines


def investigation_details(status: dict[str, Any]) -> list[str]:
    """The top patterns, the probable cause with its confidence, the first recommendation, the report."""
    lines = [f"pattern x{p.get('count')}: {p.get('signature')}" for p in (status.get("patterns") or [])[:3]]
    cause = status.get("probableCause") or {}
    if cause:
        lines.append(f"probable cause ({cause.get('confidence')} confidence): {cause.get('summary')}")
    lines += [f"recommendation: {r}" for r in (status.get("recommendations") or [])[:1]]
    if status.get("reportConfigMap"):
        calls = status.get("apiCalls") or {}
        lines.append(f"report: ConfigMap {status['reportConfigMap']} (report.json, report.md); AWS: "
                     f"{calls.get('total', 0)} requests, ${calls.get('estimatedCostUsd', 0.0):.6f}")
    return lines


def remediation_details(status: dict[str, Any]) -> list[str]:
    """The impact assessment and its digest, then what was done and what verification saw."""
    impact = status.get("impact") or {}
    lines = [f"impact: {impact.get('summary')} [digest {impact.get('digest')}]"] if impact else []
    result = status.get("actionResult") or {}
    if result.get("completedAt"):
        lines.append(f"action: {result.get('message')}")
    check = status.get("verification") or {}
    if check.get("checks"):
        lines.append(f"verification: {check.get('verdict')} after {check.get('checks')} check(s) "
                     f"({check.get('source')})")
    if status.get("logConfigMap"):
        lines.append(f"remediation log: ConfigMap {status['logConfigMap']}")
    return lines


# What the demo shows beyond phase and conditions, per kind (each capability adds its own).
DETAILS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "DevOpsProject": project_details,
    "HealthCheck": healthcheck_details,
    "InfraDeployment": deployment_details,
    "Investigation": investigation_details,
    "Remediation": remediation_details,
}
SANDBOX_APPROVER = "sandbox-user"  # the emulated API authenticates nobody: any name is accepted


class ProgressPrinter:
    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.seen: dict[tuple[str, str, str], Seen] = {}

    def show(self, kind: str, obj: dict[str, Any]) -> None:
        meta, status = obj.get("metadata", {}), obj.get("status") or {}
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        conds = tuple((c.get("type", ""), c.get("status", ""), c.get("reason", ""))
                      for c in status.get("conditions") or [])
        now = Seen(phase=status.get("phase") or "Pending", conditions=conds)
        if self.seen.get(key) == now:
            return
        self.seen[key] = now
        elapsed = time.monotonic() - self.started
        summary = " ".join(f"{t}={s}" + (f"({r})" if r else "") for t, s, r in conds) or "no conditions yet"
        self.out.write(f"[{elapsed:6.1f}s] {kind}/{key[2]} ({key[1]}): {now.phase}  {summary}\n")
        if status.get("message"):
            self.out.write(f"          {status['message']}\n")
        for line in DETAILS.get(kind, lambda _: [])(status):
            self.out.write(f"          {line}\n")
        self.out.flush()


def settled(obj: dict[str, Any]) -> bool | None:
    """True when Ready, False when Stalled, None while still reconciling."""
    conds = (obj.get("status") or {}).get("conditions") or []
    generation = obj.get("metadata", {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and observed != generation:
        return None
    ready, stalled = get_condition(conds, "Ready"), get_condition(conds, "Stalled")
    if ready and ready.get("status") == "True":
        return True
    if stalled and stalled.get("status") == "True":
        return False
    return None


def waiting_for_approval(obj: dict[str, Any]) -> bool:
    """Settled by design: the object's current generation waits for a person to approve it."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
        return False
    approved = get_condition(status.get("conditions") or [], "Approved") or {}
    return approved.get("status") == "False" and approved.get("reason") == "AwaitingApproval"


def approval_hint(kind: str, obj: dict[str, Any], kubeconfig: Path) -> str | None:
    """The exact kubectl line that approves what the object waits for (Remediations: the assessment)."""
    approval = (obj.get("status") or {}).get("approval") or {}
    if kind != "Remediation" or not approval.get("digest"):
        return None
    meta = obj.get("metadata") or {}
    return approve_command(meta.get("namespace", "default"), meta.get("name", ""), approval["digest"],
                           SANDBOX_APPROVER, kubectl=f"kubectl --kubeconfig {kubeconfig}")


def list_ours(api: ApiClient) -> list[tuple[str, dict[str, Any]]]:
    custom = CustomObjectsApi(api)
    found: list[tuple[str, dict[str, Any]]] = []
    for kind in ALL_KINDS:
        listing = custom.list_cluster_custom_object(API_GROUP, API_VERSION, kind.plural)
        assert isinstance(listing, dict)
        found.extend((kind.kind, item) for item in listing.get("items", []))
    return found


def quiet_logging() -> None:
    """The sandbox prints its own progress: keep the emulators' request logs and kopf's chatter out."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "aiohttp.access", "kopf", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def free_port() -> int:
    """A local port nothing listens on now (kopf's liveness server needs a port number up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def run_sandbox(options: SandboxOptions, out: TextIO = sys.stdout,
                should_stop: Callable[[], bool] = lambda: False) -> int:
    """Run until interrupted, or with `once` until the examples settle. Returns the exit code."""
    try:
        return _run_sandbox(options, out, should_stop)
    except KeyboardInterrupt:  # during start-up: everything started so far has been stopped on the way out
        out.write("stopping the sandbox\n")
        return STOPPED


def _run_sandbox(options: SandboxOptions, out: TextIO, should_stop: Callable[[], bool]) -> int:
    quiet_logging()
    started = time.monotonic()
    options.state_dir.mkdir(parents=True, exist_ok=True)
    with EmulatedKubernetes(port=options.port) as k8s, emulated_aws() as aws_url:
        for crd in render_all().values():
            k8s.register_crd(crd)
        kubeconfig = options.state_dir / "kubeconfig"
        k8s.write_kubeconfig(kubeconfig, namespace=options.namespace)
        out.write(f"emulated Kubernetes API: {k8s.url}  (kubeconfig: {kubeconfig})\n")
        out.write(f"   try: kubectl --kubeconfig {kubeconfig} get devopsprojects\n")
        estate = seed_estate(aws_url)
        out.write(f"emulated AWS (moto): {aws_url}\n")
        for item in estate.created:
            out.write(f"   seeded {item}\n")

        policy = sandbox_tenancy.sandbox_policy(options.namespace, aws_url)
        out.write(sandbox_tenancy.describe(policy) + "\n")
        # The operator's own metrics (the default registry) on a free port; kopf's liveness on another.
        metrics_server = metrics.serve_metrics(0, addr=LOCALHOST)
        liveness_url = f"http://{LOCALHOST}:{free_port()}/healthz"
        config = dataclasses.replace(
            OperatorConfig.from_env({}), kube_api_url=k8s.url, metrics_port=0, liveness_endpoint=liveness_url,
            aws_endpoint_url=aws_url, stalled_recheck_seconds=5.0, tenancy_policy=policy,
        )
        kube_client.configure(host=k8s.url)
        api = kube_client.api_client()
        engine = usable_engine()
        kubelet = KubeletDouble(kube_url=k8s.url, kubeconfig=kubeconfig, log_dir=options.state_dir / "kubelet")
        options.state_dir.joinpath("kubelet").mkdir(exist_ok=True)
        out.write("kubelet double: runs runner Jobs as local processes (a test double; the emulator has no nodes); "
                  + (f"engine: {engine}\n" if engine else
                     "engine: stand-in Terraform (a test double; no terraform or tofu with its AWS provider here)\n"))
        try:
            with OperatorThread(config), kubelet, SimulatedTraffic(aws_url, estate):
                out.write("operator running\n")
                out.write(f"   metrics: http://{LOCALHOST}:{metrics_server.server_port}/metrics\n")
                out.write(f"   liveness: {liveness_url}\n")
                out.write(f"   simulated traffic: {', '.join(estate.function_names)} get 100 invocations every 5 s; "
                          "12 fail with database timeouts until a Remediation restarts the function\n")
                out.flush()
                applied = apply_examples(api, options, out)
                return watch(api, options, out, started, applied, should_stop, kubeconfig)
        finally:
            metrics_server.shutdown()
            metrics_server.server_close()


def apply_examples(api: ApiClient, options: SandboxOptions, out: TextIO) -> set[tuple[str, str]]:
    """Apply every manifest under examples/; returns the (kind, name) of our kinds applied."""
    discovery = kube_apply.Discovery(api)
    ours = {kind.kind for kind in ALL_KINDS}
    applied: set[tuple[str, str]] = set()
    for manifest in kube_apply.load_manifests([options.examples]):
        kube_apply.apply(api, manifest, namespace=options.namespace, discovery=discovery)
        out.write(f"applied {manifest['kind']}/{manifest['metadata']['name']}\n")
        if manifest["kind"] in ours:
            applied.add((manifest["kind"], manifest["metadata"]["name"]))
    return applied


def watch(api: ApiClient, options: SandboxOptions, out: TextIO, started: float,
          applied: set[tuple[str, str]], should_stop: Callable[[], bool],
          kubeconfig: Path = Path(".sandbox/kubeconfig")) -> int:
    printer = ProgressPrinter(out, started)
    deadline = time.monotonic() + options.settle_timeout
    hinted: set[tuple[str, str, str]] = set()
    try:
        while not should_stop():
            objects = list_ours(api)
            waiting: list[str] = []
            for kind, obj in objects:
                printer.show(kind, obj)
                if waiting_for_approval(obj):
                    waiting.append(f"{kind}/{obj['metadata']['name']}")
                    hint = approval_hint(kind, obj, kubeconfig)
                    key = (kind, obj["metadata"]["name"], str(hint))
                    if hint and key not in hinted:
                        hinted.add(key)
                        out.write(f"          waits for approval; to approve exactly this assessment:\n"
                                  f"            {hint}\n")
                        out.flush()
            if options.once:
                verdicts = {(kind, obj["metadata"]["name"]): settled(obj) for kind, obj in objects}
                pending = [key for key in applied
                           if verdicts.get(key) is None and f"{key[0]}/{key[1]}" not in waiting]
                if not pending:
                    failed = sorted(f"{k}/{n}" for k, n in applied if verdicts.get((k, n)) is False)
                    out.write("all examples settled: " + ("FAILED " + ", ".join(failed) if failed else "all Ready")
                              + "".join(f"; {name} waits for a human approval by design" for name in sorted(waiting)
                                        if tuple(name.split("/", 1)) in applied)
                              + "\n")
                    return 1 if failed else 0
                if time.monotonic() > deadline:
                    out.write("timed out waiting for: " + ", ".join(f"{k}/{n}" for k, n in sorted(pending)) + "\n")
                    return 2
            time.sleep(options.poll_interval)
    except KeyboardInterrupt:
        out.write("stopping the sandbox\n")
    return STOPPED
