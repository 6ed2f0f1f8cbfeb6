"""A kubelet double for the emulated API server: it runs Jobs' runner containers as local subprocesses.

The emulator has no nodes, so this plays the kubelet (and the Job controller) for the sandbox and the
tests, and is named a double wherever it runs: it sees new Jobs through the API, creates their Pod,
runs the container's command with the Job's environment (values, Secret and ConfigMap keys and field
references resolved as a kubelet would), keeps the container's log, and writes the Pod's and the Job's
status (Complete, or Failed with its reason and exit code; activeDeadlineSeconds enforced with SIGTERM
then SIGKILL after the grace period). The operator knows nothing of it: it only sees Jobs and Pods.

What a node would provide is given the same way: HOSTNAME is the pod name; cluster access, which a pod
gets from its ServiceAccount token mount, comes from a kubeconfig (KUBECONFIG/KUBE_CONFIG_PATH); the
node's ambient AWS credentials are the double's own; and where no terraform or tofu is installed the
node allows the project's stand-in (DEVOPS_RUNNER_ALLOW_STANDIN). Tests inject failures through hooks:
an image that cannot be pulled, an OOM kill, a SIGTERM to a running container, extra environment.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import call_json

PASSED_THROUGH = ("PATH", "LANG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")
POLL_SECONDS = 0.1
MINIMUM_GRACE_SECONDS = 2.0  # the kubelet's floor, also for a pod force-deleted from the API


def usable_engine() -> str | None:
    """terraform or tofu on PATH with the AWS provider available offline (a plugin cache or mirror)."""
    roots = [Path(os.environ[v]) for v in ("TF_PLUGIN_CACHE_DIR",) if os.environ.get(v)]
    roots += [Path.home() / ".terraform.d" / "plugins", Path("/usr/share/terraform/plugins")]
    has_provider = any((root / "registry.terraform.io" / "hashicorp" / "aws").is_dir() or
                       (root / "registry.opentofu.org" / "hashicorp" / "aws").is_dir() for root in roots)
    for engine in ("terraform", "tofu"):
        if shutil.which(engine) and has_provider:
            return engine
    return None


def _node_client(kube_url: str) -> ApiClient:
    """The double's own client: a plain one, not the operator's counting client. It plays the node, so
    its polling (ten lists a second) is not the operator's, and is not counted in the operator's request
    metric (devops_operator_kube_requests_total) of the process it shares with the operator. Every call
    goes through call_json, which bounds it with the same timeouts."""
    return ApiClient(Configuration(host=kube_url.rstrip("/")))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    """One pod's runner container, as the double runs it."""

    namespace: str
    job: str
    pod: str
    process: subprocess.Popen[bytes] | None
    log_path: Path
    started: float
    grace: float  # the pod's terminationGracePeriodSeconds
    oom: bool = False
    image: str = ""
    uid: str = ""
    terminating_since: float | None = None  # SIGTERM sent (the pod deleted, the Job's deadline)
    kill_at: float | None = None  # SIGKILL to every process of the container then
    counted: bool = False  # the Job controller counted this pod (failed when deleted, else at its end)
    deadline_hit: bool = False


@dataclass
class JobRun:
    """What the Job controller keeps of one Job: its spec and counts (the double plays the controller too)."""

    namespace: str
    name: str
    job: dict[str, Any]
    failed: int = 0
    pods: list[str] = field(default_factory=list)
    next_start: float | None = None  # a replacement pod is due then (Kubernetes' exponential back-off)
    failure: tuple[str, str] | None = None  # FailureTarget: (reason, message); Failed once no pod terminates
    deadline: float | None = None
    done: bool = False

    @property
    def backoff_limit(self) -> int:
        return int(self.job["spec"].get("backoffLimit", 6))


@dataclass
class KubeletDouble:
    """Runs the Jobs it finds through the API; start() / stop(), or use it as a context manager."""

    kube_url: str
    kubeconfig: Path
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubelet-double-")))
    extra_env: dict[str, str] = field(default_factory=dict)
    env_by_namespace: dict[str, dict[str, str]] = field(default_factory=dict)  # test hooks per namespace
    unpullable_images: set[str] = field(default_factory=set)
    oom_jobs: set[str] = field(default_factory=set)  # job-name prefixes whose container is OOM-killed
    hold_jobs: set[str] = field(default_factory=set)  # job-name prefixes not started until released
    # Test hooks for a runner that lies (the tenant's code runs in it): job-name prefix -> a rewrite of the
    # result the runner wrote, applied before the Job is marked finished (so before the operator reads it).
    tamper_results: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    namespaces: set[str] | None = None  # None: every namespace
    job_label: str | None = None  # only Jobs carrying this label key (None: every Job, as a node would)
    api: ApiClient | None = None
    # None: the stand-in unless a real engine with a local AWS provider is installed; tests pass True.
    use_standin: bool | None = None
    # The Job controller's back-off before a replacement pod: 10 s, doubled per failure, at most 6 min.
    backoff_seconds: float = 10.0
    _handled: set[tuple[str, str]] = field(default_factory=set)
    _jobs: dict[tuple[str, str], JobRun] = field(default_factory=dict)
    _running: dict[tuple[str, str], Container] = field(default_factory=dict)  # (namespace, pod)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    started_jobs: list[str] = field(default_factory=list)  # each Job once, at its first pod
    started_pods: list[str] = field(default_factory=list)  # every pod, replacements included

    def __post_init__(self) -> None:
        self.api = self.api or _node_client(self.kube_url)
        self.allow_standin = self.use_standin if self.use_standin is not None else usable_engine() is None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> KubeletDouble:
        self._thread = threading.Thread(target=self._loop, name="kubelet-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self.lock:
            running = list(self._running.values())
        for container in running:
            if container.process and container.process.poll() is None:
                _kill_all(container.process)

    def __enter__(self) -> KubeletDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- hooks for tests ----------------------------------------------------------------------------

    def _live(self, namespace: str, job: str) -> Container | None:
        """The Job's newest container still running."""
        with self.lock:
            found = [c for c in self._running.values() if (c.namespace, c.job) == (namespace, job)
                     and c.process is not None and c.process.poll() is None]
        return max(found, key=lambda c: c.started) if found else None

    def signal_job(self, namespace: str, job: str, signum: int = signal.SIGTERM) -> bool:
        """Send a signal to a running container's main process (a test's own; deleting the pod is the way a
        node does it): True if one was running."""
        container = self._live(namespace, job)
        if container is None or container.process is None:
            return False
        container.process.send_signal(signum)
        return True

    def kill_job(self, namespace: str, job: str) -> bool:
        """SIGKILL every process of a running container (a node lost, a kernel OOM kill): nothing can clean up,
        so a Terraform lock it held stays held. True if one was running."""
        container = self._live(namespace, job)
        if container is None or container.process is None:
            return False
        _kill_all(container.process)
        return True

    def running(self, namespace: str, job: str) -> bool:
        return self._live(namespace, job) is not None

    def pod_of(self, namespace: str, job: str) -> str | None:
        """The pod of the Job's newest running container."""
        container = self._live(namespace, job)
        return container.pod if container else None

    def release(self, prefix: str) -> None:
        with self.lock:
            self.hold_jobs.discard(prefix)

    def log(self, namespace: str, job: str) -> str:
        """The container logs of every pod the Job had, oldest first."""
        with self.lock:
            run = self._jobs.get((namespace, job))
            pods = list(run.pods) if run else []
        parts = [(self.log_dir / f"{namespace}_{pod}.log") for pod in pods]
        return "".join(path.read_text(errors="replace") for path in parts if path.exists())

    def pod_log(self, namespace: str, pod: str) -> str:
        path = self.log_dir / f"{namespace}_{pod}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the loop -----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._scan()
                self._watch_pods()
                self._reap()
                self._replace()
            except Exception as exc:  # a double must keep running through an API hiccup
                print(f"kubelet double: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._stop.wait(POLL_SECONDS)

    def _scan(self) -> None:
        assert self.api is not None
        listing = call_json(self.api, "GET", "/apis/batch/v1/jobs") or {}
        for job in listing.get("items") or []:
            meta = job["metadata"]
            key = (meta["namespace"], meta["name"])
            if key in self._handled or (self.namespaces is not None and key[0] not in self.namespaces):
                continue
            if self.job_label is not None and self.job_label not in (meta.get("labels") or {}):
                continue
            if (job.get("status") or {}).get("conditions"):
                self._handled.add(key)  # finished before we saw it (a previous double's work)
                continue
            with self.lock:
                held = any(meta["name"].startswith(p) for p in self.hold_jobs)
            if held:
                continue
            self._handled.add(key)
            deadline = job["spec"].get("activeDeadlineSeconds")
            run = JobRun(key[0], key[1], job, deadline=time.monotonic() + float(deadline) if deadline else None)
            with self.lock:
                self._jobs[key] = run
            self.started_jobs.append(meta["name"])
            self._patch_job(run, {"startTime": _now()})
            self._start(run)

    def _start(self, run: JobRun) -> None:
        assert self.api is not None
        job = run.job
        meta, spec = job["metadata"], job["spec"]
        namespace, name = meta["namespace"], meta["name"]
        template = spec["template"]
        container = template["spec"]["containers"][0]
        pod_name = f"{name}-{secrets.token_hex(3)[:5]}"
        labels = {**(template.get("metadata") or {}).get("labels", {}), "job-name": name,
                  "batch.kubernetes.io/job-name": name}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                 "uid": meta.get("uid", ""), "controller": True}]},
               "spec": {**template["spec"], "nodeName": "kubelet-double"}}
        created = call_json(self.api, "POST", f"/api/v1/namespaces/{namespace}/pods", body=pod) or {}
        with self.lock:
            run.pods.append(pod_name)
        self.started_pods.append(pod_name)
        self._job_counts(run)
        if container.get("image") in self.unpullable_images:
            self._pod_status(namespace, pod_name, {"phase": "Pending", "containerStatuses": [{
                "name": container["name"], "ready": False, "restartCount": 0, "image": container["image"],
                "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff",
                                      "message": f"Back-off pulling image \"{container['image']}\""}}}]})
            return
        env = self._environment(namespace, pod_name, container.get("env") or [])
        command = [sys.executable if c == "python" else c for c in container.get("command") or []]
        log_path = self.log_dir / f"{namespace}_{pod_name}.log"
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.log_dir.resolve()))
        env["DEVOPS_RUNNER_WORKDIR"] = str(workdir)
        with log_path.open("wb") as log:
            # A session of its own, as a container's processes are: kill_job ends all of them at once.
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                       start_new_session=True)
        with self.lock:
            oom = any(name.startswith(p) for p in self.oom_jobs)
        running = Container(namespace, name, pod_name, process, log_path, time.monotonic(),
                            float(template["spec"].get("terminationGracePeriodSeconds") or 30), oom=oom,
                            image=str(container.get("image") or ""),
                            uid=str((created.get("metadata") or {}).get("uid") or ""))
        with self.lock:
            self._running[(namespace, pod_name)] = running
        self._pod_status(namespace, pod_name, {"phase": "Running", "startTime": _now(), "containerStatuses": [{
            "name": container["name"], "ready": True, "restartCount": 0, "image": container.get("image"),
            "imageID": f"kubelet-double://{container.get('image')}",
            "state": {"running": {"startedAt": _now()}}}]})

    def _environment(self, namespace: str, pod: str, entries: list[Mapping[str, Any]]) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        # Absolute: the container runs in a working directory of its own.
        kubeconfig = str(self.kubeconfig.resolve())
        env.update({"HOSTNAME": pod, "KUBECONFIG": kubeconfig, "KUBE_CONFIG_PATH": kubeconfig,
                    "PYTHONUNBUFFERED": "1"})
        if self.allow_standin:
            env["DEVOPS_RUNNER_ALLOW_STANDIN"] = "1"
        for entry in entries:
            value = self._env_value(namespace, pod, entry)
            if value is not None:
                env[entry["name"]] = value
        env.update(self.extra_env)
        env.update(self.env_by_namespace.get(namespace, {}))
        return env

    def _env_value(self, namespace: str, pod: str, entry: Mapping[str, Any]) -> str | None:
        assert self.api is not None
        if "value" in entry:
            return str(entry["value"])
        source = entry.get("valueFrom") or {}
        if "secretKeyRef" in source or "configMapKeyRef" in source:
            ref = source.get("secretKeyRef") or source["configMapKeyRef"]
            plural = "secrets" if "secretKeyRef" in source else "configmaps"
            try:
                obj = call_json(self.api, "GET", f"/api/v1/namespaces/{namespace}/{plural}/{ref['name']}")
            except ApiException:
                return None
            data = (obj or {}).get("data") or {}
            if ref["key"] not in data:
                return None
            raw = data[ref["key"]]
            return base64.b64decode(raw).decode() if plural == "secrets" else str(raw)
        if "fieldRef" in source and source["fieldRef"].get("fieldPath") == "metadata.name":
            return pod
        if "fieldRef" in source and source["fieldRef"].get("fieldPath") == "metadata.namespace":
            return namespace
        return None

    # -- pod deletion, as a kubelet honours it -------------------------------------------------------

    def _watch_pods(self) -> None:
        """Pods of ours being deleted: SIGTERM to the container's main process, SIGKILL to all of its processes
        once the grace period (deletionGracePeriodSeconds) is over. A pod removed outright (a forced delete)
        still gets the kubelet's minimum grace of 2 s. The Job's deadline deletes its pods the same way."""
        assert self.api is not None
        with self.lock:
            running = list(self._running.values())
        if not running:
            return
        listing = call_json(self.api, "GET", "/api/v1/pods", query={"fieldSelector": "spec.nodeName=kubelet-double"})
        pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in (listing or {}).get("items") or []}
        now = time.monotonic()
        for container in running:
            run = self._jobs.get((container.namespace, container.job))
            if run and run.deadline and now > run.deadline and not run.done and run.failure is None:
                run.failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
                self._patch_job(run, {"conditions": [_condition("FailureTarget", *run.failure)]})
                for name in list(run.pods):
                    self._delete_pod(container.namespace, name, grace=None)
                container.deadline_hit = True
            pod = pods.get((container.namespace, container.pod))
            if pod is None:
                grace = MINIMUM_GRACE_SECONDS
            elif pod["metadata"].get("deletionTimestamp"):
                grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
            else:
                continue
            self._terminate(container, grace, now)
            if run is not None and not container.counted:
                self._count_failed(run, container)  # a terminating pod counts as failed (no podFailurePolicy)

    def _terminate(self, container: Container, grace: float, now: float) -> None:
        process = container.process
        if process is None or process.poll() is not None:
            return
        grace = max(grace, MINIMUM_GRACE_SECONDS)
        if container.terminating_since is None:
            container.terminating_since = now
            process.send_signal(signal.SIGTERM)  # to PID 1 only, as a container runtime does
        kill_at = container.terminating_since + grace
        container.kill_at = kill_at if container.kill_at is None else min(container.kill_at, kill_at)

    def _delete_pod(self, namespace: str, pod: str, grace: int | None) -> None:
        assert self.api is not None
        try:
            call_json(self.api, "DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod}",
                      body={} if grace is None else {"gracePeriodSeconds": grace})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _reap(self) -> None:
        with self.lock:
            running = list(self._running.items())
        for key, container in running:
            process = container.process
            assert process is not None
            now = time.monotonic()
            if container.oom and process.poll() is None and now - container.started > 0.5:
                _kill_all(process)
            if container.kill_at is not None and now >= container.kill_at and process.poll() is None:
                _kill_all(process)
            code = process.poll()
            if code is None:
                continue
            _kill_all(process)  # PID 1 gone: whatever else ran in the container goes with it
            with self.lock:
                self._running.pop(key, None)
            self._finish(container, code)

    def _tamper(self, namespace: str, job: str) -> None:
        rewrite = next((f for prefix, f in self.tamper_results.items() if job.startswith(prefix)), None)
        if rewrite is None:
            return
        assert self.api is not None
        path = f"/api/v1/namespaces/{namespace}/secrets/{job}-result"
        secret = call_json(self.api, "GET", path)
        result = json.loads(base64.b64decode(secret["data"]["result.json"]))
        secret["data"]["result.json"] = base64.b64encode(json.dumps(rewrite(result)).encode()).decode()
        call_json(self.api, "PUT", path, body=secret)

    def _finish(self, container: Container, code: int) -> None:
        self._tamper(container.namespace, container.job)
        if container.oom:
            reason, exit_code = "OOMKilled", 137
        else:
            exit_code = 128 - code if code < 0 else code
            reason = "Completed" if exit_code == 0 else "Error"
        self._pod_status(container.namespace, container.pod, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"name": "runner", "ready": False, "restartCount": 0, "image": container.image,
                                   "imageID": f"kubelet-double://{container.image}",
                                   "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                                                            "finishedAt": _now()}}}]})
        if container.terminating_since is not None:  # the kubelet confirms: the pod object goes now
            self._delete_pod(container.namespace, container.pod, grace=0)
        run = self._jobs.get((container.namespace, container.job))
        if run is None:
            return
        if not container.counted:
            container.counted = True
            if exit_code == 0:
                run.done = True
                self._job_counts(run, succeeded=1, conditions=[_condition("Complete")], completionTime=_now())
                return
            self._count_failed(run, container, counted_already=True)
        self._settle(run)

    # -- the Job controller -------------------------------------------------------------------------

    def _count_failed(self, run: JobRun, container: Container, *, counted_already: bool = False) -> None:
        """One more failed pod: a replacement after the back-off while backoffLimit allows, else FailureTarget
        now and Failed once none of the Job's pods is still terminating (Kubernetes 1.31+)."""
        container.counted = True
        run.failed += 1
        if run.done or run.failure is not None:
            self._job_counts(run)
            return
        if run.failed > run.backoff_limit:
            run.failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            self._job_counts(run, conditions=[_condition("FailureTarget", *run.failure)])
            self._settle(run)
            return
        delay = min(self.backoff_seconds * 2 ** (run.failed - 1), 360.0)
        run.next_start = time.monotonic() + delay
        self._job_counts(run)

    def _settle(self, run: JobRun) -> None:
        """The Failed condition once the Job has a failure and none of its pods runs any more."""
        if run.failure is None or run.done:
            return
        with self.lock:
            alive = any((c.namespace, c.job) == (run.namespace, run.name) for c in self._running.values())
        if alive:
            self._job_counts(run)
            return
        run.done = True
        self._job_counts(run, conditions=[_condition("FailureTarget", *run.failure),
                                          _condition("Failed", *run.failure)])

    def _replace(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [r for r in self._jobs.values() if r.next_start is not None and now >= r.next_start]
        for run in due:
            run.next_start = None
            if run.done or run.failure is not None:
                continue
            assert self.api is not None
            try:
                call_json(self.api, "GET", f"/apis/batch/v1/namespaces/{run.namespace}/jobs/{run.name}")
            except ApiException as exc:
                if exc.status == 404:  # the Job was deleted meanwhile: nothing to replace
                    run.done = True
                    continue
                raise
            self._start(run)

    def _job_counts(self, run: JobRun, **status: Any) -> None:
        """Job status: active (running, not terminating), terminating, failed, and what else is given."""
        with self.lock:
            containers = [c for c in self._running.values() if (c.namespace, c.job) == (run.namespace, run.name)]
        terminating = sum(1 for c in containers if c.terminating_since is not None)
        self._patch_job(run, {"active": len(containers) - terminating, "terminating": terminating,
                              "failed": run.failed, **status})

    def _patch_job(self, run: JobRun, status: dict[str, Any]) -> None:
        assert self.api is not None
        try:
            call_json(self.api, "PATCH", f"/apis/batch/v1/namespaces/{run.namespace}/jobs/{run.name}/status",
                      body={"status": status}, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:  # the Job was deleted (its pods are being deleted with it)
                raise

    def _pod_status(self, namespace: str, pod: str, status: dict[str, Any]) -> None:
        assert self.api is not None
        try:
            call_json(self.api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/{pod}/status",
                      body={"status": status}, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:  # the pod was removed meanwhile (a forced delete)
                raise


def _condition(ctype: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    return {"type": ctype, "status": "True", "lastTransitionTime": _now(),
            **({"reason": reason} if reason else {}), **({"message": message} if message else {})}


def _kill_all(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the container (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
