"""The runner: one Terraform step (plan | apply | destroy | drift) inside a Job, reported through the API.

    python -m devops_operator.runner {plan|apply|destroy|drift}

It fetches the source, writes the backend override and the variables, runs the engine (terraform, tofu,
or where neither is installed and the node allows it, the project's stand-in test double), and writes its
result into a Secret owned by the InfraDeployment (never a ConfigMap: the log excerpt shows the plan's
values): plan summary, resources, output names, a redacted log excerpt and the error text. Plan files go
into Secrets (artifacts.py), outputs into their ConfigMap and Secret, the inputs (variables and the
fetched source) into a snapshot Secret at apply time: `destroy` makes a destroy plan from that snapshot,
which a later `apply` applies like any approved plan, so destroying still works once the variables'
ConfigMaps or Secrets, or the source ConfigMap, are gone.

SIGTERM (the Job deleted, its deadline, a node drain) is forwarded to the engine exactly once: Terraform
then finishes the resource in flight, saves its state and releases the lock, and a second signal would
risk losing state. An errored.tfstate left behind (the state could not be saved) goes into a Secret.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.kube import client as kube_client
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.owners import adopt
from devops_operator.kube.redaction import redact
from devops_operator.kube.secrets import read_secret
from devops_operator.runner.sources import SourceError, fetch
from devops_operator.terraform import artifacts
from devops_operator.terraform.backends import BACKEND_OVERRIDE_FILE
from devops_operator.terraform.identity import plan_id
from devops_operator.terraform.planjson import (
    PlanFormatError,
    state_outputs,
    state_resources,
    summarize_plan,
)
from devops_operator.terraform.request import (
    LOG_KEY,
    MAX_LOG_CHARS,
    MAX_LOG_LINES,
    MAX_RESULT_CHANGES,
    MAX_RESULT_RESOURCES,
    PLAN_KEY_ENV,
    REQUEST_ENV,
    RESULT_KEY,
    RunRequest,
    result_name,
)
from devops_operator.terraform.versions import satisfies

STEPS = ("plan", "apply", "destroy", "drift")
PLAN_FILE = "plan.tfplan"
SNAPSHOT_SOURCE_KEY = "source.tar.gz.b64"
# The snapshot Secret holds the variables too and must stay well under 1 MiB: larger sources are fetched again.
MAX_SNAPSHOT_SOURCE = 512 * 1024
# Set by a node with no usable engine (the sandbox's kubelet double, where no terraform or tofu with its AWS
# provider is installed): the runner uses the project's stand-in test double instead.
ALLOW_STANDIN_ENV = "DEVOPS_RUNNER_ALLOW_STANDIN"
ENGINE_TIMEOUT = 6 * 3600
ASSUME_ROLE_ENV = "DEVOPS_ASSUME_ROLE_ARN"
CREDENTIALS_SOURCE_ENV = "DEVOPS_CREDENTIALS_SOURCE"
EXPECTED_ACCOUNT_ENV = "DEVOPS_EXPECTED_ACCOUNT_ID"
STATIC_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
WEB_IDENTITY = ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME")
# AWS_* the engine may inherit: the operator's region, endpoint and the step's credentials, nothing else
# (no profile, config file or per-service endpoint from wherever the pod's environment came from).
AWS_SETTINGS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_STS_REGIONAL_ENDPOINTS")


def keeps_aws_name(name: str, source: str) -> bool:
    """Whether the engine inherits an AWS_* variable for a step whose credentials come from `source` (pure)."""
    if not name.startswith("AWS_") or name in AWS_SETTINGS:
        return True
    if name in STATIC_KEYS:
        return source != "irsa"
    if name in WEB_IDENTITY:
        return source != "secret"
    return False


def _keys(credentials: Mapping[str, Any]) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}
STALE_MARKERS = ("Saved plan is stale", "plan file can no longer be applied")


class StepFailed(Exception):
    """The step failed for a reason the result names (category and the field to fix, when known)."""

    def __init__(self, message: str, *, category: str = "unknown", field: str | None = None,
                 stale: bool = False) -> None:
        super().__init__(message)
        self.category = category
        self.field = field
        self.stale = stale


@dataclass
class Engine:
    """The Terraform-compatible executable and how it describes itself."""

    command: list[str]
    name: str
    standin: bool = False

    def describe(self) -> str:
        return "stand-in Terraform (a test double)" if self.standin else self.name


def choose_engine(wanted: str, env: Mapping[str, str]) -> Engine:
    """The chosen engine from PATH, or the stand-in where the node says it has no usable engine."""
    if env.get(ALLOW_STANDIN_ENV):
        return Engine([sys.executable, "-m", "devops_operator.terraform.standin"], "stand-in", standin=True)
    found = shutil.which(wanted)
    if found:
        return Engine([found], wanted)
    raise StepFailed(f"{wanted} is not installed in the runner image: use the project's runner image "
                     "(it pins terraform and tofu): the project owner sets it in the DevOpsProject's "
                     "spec.environments[].runner.image or spec.terraform.runnerImage", category="config")


@dataclass
class Log:
    """The runner's own log: redacted lines to stdout (the pod log) and a bounded tail for the result."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))

    def line(self, text: str) -> None:
        for raw in text.splitlines() or [""]:
            clean = redact(raw)
            self.tail.append(clean)
            print(clean, flush=True)

    def excerpt(self) -> str:
        text = "\n".join(self.tail)
        return text[-MAX_LOG_CHARS:]


class Forwarder:
    """Forwards the first SIGTERM/SIGINT to the running engine, and never a second one."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.forwarded = 0
        self.received = 0
        self.lock = threading.Lock()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        with self.lock:
            self.received += 1
            if self.forwarded:
                self.log.line(f"runner: signal {signum} received again; not forwarded (a second signal could make "
                              "Terraform exit without saving state)")
                return
            self.forwarded += 1
            process = self.process
        self.log.line(f"runner: signal {signum} received; forwarding it once to the engine so it saves state and "
                      "releases the lock")
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    @property
    def interrupted(self) -> bool:
        return self.received > 0


class Runner:
    def __init__(self, request: RunRequest, api: ApiClient, workdir: Path, env: Mapping[str, str]) -> None:
        self.request = request
        self.api = api
        self.workdir = workdir
        self.env = dict(env)
        self.log = Log()
        self.forwarder = Forwarder(self.log)
        self.engine: Engine | None = None
        self.result: dict[str, Any] = {"step": request.step, "ok": False}

    # -- engine -------------------------------------------------------------------------------------

    def run_engine(self, args: Sequence[str], *, capture: bool = False,
                   ok_codes: Sequence[int] = (0,), after_signal: bool = False) -> tuple[int, str]:
        """Run the engine; once a signal came, only reads that record what was already done (`after_signal`).

        Such a read is not sent the signal either: it holds no lock and saves nothing, and killing it would
        lose the report of an apply that finished (the pod's grace period leaves time for it to end)."""
        assert self.engine is not None
        with self.forwarder.lock:
            if self.forwarder.interrupted and not after_signal:
                raise StepFailed("interrupted before the engine started", category="state")
        process = subprocess.Popen([*self.engine.command, *args], cwd=self.module_dir, env=self.engine_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with self.forwarder.lock:
            self.forwarder.process = None if after_signal else process
        captured: list[str] = []
        errors: list[str] = []

        def pump(stream: Any, sink: list[str], show: bool) -> None:
            for line in stream:
                sink.append(line)
                if show:
                    self.log.line(line.rstrip("\n"))

        threads = [threading.Thread(target=pump, args=(process.stdout, captured, not capture), daemon=True),
                   threading.Thread(target=pump, args=(process.stderr, errors, True), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            code = process.wait(timeout=ENGINE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            code = process.wait()
        for thread in threads:
            thread.join()
        with self.forwarder.lock:
            self.forwarder.process = None
        output = "".join(captured)
        if code not in ok_codes:
            text = redact("".join(errors).strip() or output.strip())
            stale = any(marker in text for marker in STALE_MARKERS)
            raise StepFailed(_first_error(text) or f"{args[0]} exited with {code}",
                             category="state" if stale or self.forwarder.interrupted else _category(text),
                             stale=stale)
        return code, output

    def engine_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.env.items()
               if k not in (REQUEST_ENV, PLAN_KEY_ENV) and keeps_aws_name(k, self.source)}
        env.setdefault("TF_IN_AUTOMATION", "true")
        env["HOME"] = str(self.workdir / "home")
        assumed = self.assumed_role()
        if assumed:  # the engine acts as the assumed role alone, never falls back to the base identity
            for name in (*STATIC_KEYS, *WEB_IDENTITY):
                env.pop(name, None)
        env.update(assumed)
        return env

    @property
    def source(self) -> str:
        return self.env.get(CREDENTIALS_SOURCE_ENV) or "ambient"

    def _sts(self, keys: Mapping[str, str] | None, *, unsigned: bool = False) -> Any:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        config = Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=10, read_timeout=30,
                        **({"signature_version": UNSIGNED} if unsigned else {}))
        session = boto3.session.Session(
            aws_access_key_id=(keys or {}).get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=(keys or {}).get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=(keys or {}).get("AWS_SESSION_TOKEN"))
        return session.client("sts", config=config,
                              region_name=self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION")
                              or "us-east-1", endpoint_url=self.env.get("AWS_ENDPOINT_URL") or None)

    def base_keys(self) -> dict[str, str] | None:
        """The step's base credentials as keys: the Secret's (source secret), the pod's web identity exchanged
        with sts:AssumeRoleWithWebIdentity (source irsa), or None for the default chain (ambient)."""
        if self.source == "irsa":
            role, token_file = self.env.get("AWS_ROLE_ARN"), self.env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
            if not role or not token_file:
                raise StepFailed("credentials.source is irsa but the pod has no web identity (AWS_ROLE_ARN and "
                                 "AWS_WEB_IDENTITY_TOKEN_FILE): the runner's ServiceAccount needs the "
                                 "eks.amazonaws.com/role-arn annotation", category="credentials")
            token = Path(token_file).read_text().strip()
            found = self._sts(None, unsigned=True).assume_role_with_web_identity(
                RoleArn=role, RoleSessionName=self.env.get("DEVOPS_ASSUME_ROLE_SESSION") or "devops-runner",
                WebIdentityToken=token)["Credentials"]
            return _keys(found)
        if self.env.get("AWS_ACCESS_KEY_ID") and self.env.get("AWS_SECRET_ACCESS_KEY"):
            return {k: self.env[k] for k in STATIC_KEYS if self.env.get(k)}
        return None

    def assumed_role(self) -> dict[str, str]:
        """Temporary keys of the environment's role (credentials.roleArn), assumed once per step from the base
        identity, for every source (irsa too: web identity, then sts:AssumeRole)."""
        role = self.env.get(ASSUME_ROLE_ENV)
        if not role:
            return {}
        if not hasattr(self, "_assumed"):
            kwargs = {"RoleArn": role, "RoleSessionName": self.env.get("DEVOPS_ASSUME_ROLE_SESSION") or "devops-runner"}
            if self.env.get("DEVOPS_ASSUME_ROLE_EXTERNAL_ID"):
                kwargs["ExternalId"] = self.env["DEVOPS_ASSUME_ROLE_EXTERNAL_ID"]
            self._assumed = _keys(self._sts(self.base_keys()).assume_role(**kwargs)["Credentials"])
        return self._assumed

    def check_account(self) -> None:
        """Before the engine starts: the identity the engine will act as is in the environment's accountId."""
        expected = self.env.get(EXPECTED_ACCOUNT_ENV)
        if not expected:
            return
        keys = self.assumed_role() or self.base_keys()
        try:
            found = self._sts(keys).get_caller_identity()
        except Exception as exc:  # botocore's errors: the identity cannot even be checked
            raise StepFailed(f"the step's AWS identity could not be checked with sts:GetCallerIdentity: "
                             f"{redact(str(exc))}", category="credentials") from None
        if found.get("Account") != expected:
            raise StepFailed(f"the step's AWS identity {found.get('Arn')} is in account {found.get('Account')}, not "
                             f"the environment's accountId {expected}: nothing was planned or applied; the project "
                             "owner fixes the environment's credentials, roleArn or accountId", category="credentials")
        self.log.line(f"runner: acting as {found.get('Arn')} in account {expected}")

    @property
    def plan_key(self) -> bytes | None:
        """The deployment's plan-digest key, or None from a Job of an operator before it (sensitive values masked)."""
        raw = self.env.get(PLAN_KEY_ENV)
        if not raw:
            return None
        try:
            return bytes.fromhex(raw)
        except ValueError:
            raise StepFailed(f"{PLAN_KEY_ENV} is not the hex key the operator writes: the plan-digest key Secret "
                             "was changed by hand; delete it and re-plan", category="config") from None

    # -- steps --------------------------------------------------------------------------------------

    @property
    def module_dir(self) -> Path:
        return self.workdir / "source" / self.request.module_path

    def prepare(self) -> str:
        self.check_account()
        self.engine = choose_engine(self.request.engine, self.env)
        self.result["engine"] = self.engine.describe()
        self.log.line(f"runner: {self.request.step} of {self.request.namespace}/{self.request.deployment} with "
                      f"{self.engine.describe()}")
        (self.workdir / "home").mkdir(parents=True, exist_ok=True)
        if self.request.from_snapshot:
            return self.prepare_from_snapshot()
        revision = fetch(self.api, self.request.namespace, self.request.source, self.workdir / "source",
                         self.workdir / "home")
        self.result["sourceRevision"] = revision
        if not self.module_dir.is_dir():
            raise StepFailed(f"the module directory {self.request.module_path!r} is not in the source: fix its path",
                             category="config", field="spec.source.path")
        if self.request.source_revision and revision != self.request.source_revision:
            raise StepFailed(f"the source is at {revision}, not the planned {self.request.source_revision}: it "
                             "changed since the plan, so the plan is re-made", category="state", stale=True)
        (self.module_dir / BACKEND_OVERRIDE_FILE).write_text(json.dumps(self.request.backend_override, indent=2))
        self.var_file_args = self.write_variables()
        return revision

    def prepare_from_snapshot(self) -> str:
        """Source and variables as they were applied (the snapshot Secret), not as they are now."""
        name = self.request.inputs_snapshot_secret
        snapshot = read_secret(self.api, self.request.namespace, name) if name else None
        if not snapshot or "variables.tfvars.json" not in snapshot:
            raise StepFailed(f"the inputs snapshot Secret {name} is missing: nothing records what was applied, so "
                             "the destroy cannot be planned; abandon the resources (annotation "
                             "devops.fractary.io/abandon=true) and remove them by hand", category="state")
        source = self.workdir / "source"
        if snapshot.get(SNAPSHOT_SOURCE_KEY):
            with tarfile.open(fileobj=io.BytesIO(base64.b64decode(snapshot[SNAPSHOT_SOURCE_KEY])), mode="r:gz") as tar:
                tar.extractall(source, filter="data")
            revision = snapshot.get("sourceRevision") or "snapshot"
        else:  # a source too large to snapshot: fetched again, at the revision that was applied
            revision = fetch(self.api, self.request.namespace, self.request.source, source, self.workdir / "home")
        self.result["sourceRevision"] = revision
        if not self.module_dir.is_dir():
            raise StepFailed(f"the module directory {self.request.module_path!r} is not in the snapshot",
                             category="state")
        (self.module_dir / BACKEND_OVERRIDE_FILE).write_text(json.dumps(self.request.backend_override, indent=2))
        target = self.workdir / "vars" / "zz-devops-snapshot.tfvars.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(snapshot["variables.tfvars.json"])
        target.chmod(0o600)
        self.var_file_args = [f"-var-file={target}"]
        self.snapshot_values = json.loads(snapshot["variables.tfvars.json"])
        self.log.line(f"runner: inputs from snapshot Secret {name} (source revision {revision})")
        return revision

    def write_variables(self) -> list[str]:
        """-var-file arguments in precedence order: environment, varFiles, varsFrom, spec.variables."""
        args = []
        files: list[tuple[str, dict[str, Any]]] = [("zz-devops-0-environment.tfvars.json",
                                                    self.request.environment_variables)]
        for index, path in enumerate(self.request.var_files):
            if not (self.module_dir / path).is_file():
                raise StepFailed(f"the variables file {path!r} does not exist in the source (relative to the module "
                                 "directory): fix the path or add the file", category="config",
                                 field=f"spec.varFiles[{index}]")
        from_objects = self.vars_from()
        files.append(("zz-devops-2-vars-from.tfvars.json", from_objects))
        files.append(("zz-devops-3-spec.tfvars.json", self.request.variables))
        written: dict[str, Path] = {}
        for name, values in files:
            target = self.workdir / "vars" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
            target.chmod(0o600)
            written[name] = target
        args.append(f"-var-file={written[files[0][0]]}")
        args += [f"-var-file={path}" for path in self.request.var_files]
        args += [f"-var-file={written[name]}" for name, _ in files[1:]]
        self.snapshot_values = {**self.request.environment_variables, **from_objects, **self.request.variables}
        return args

    def vars_from(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for index, item in enumerate(self.request.vars_from):
            where = f"spec.varsFrom[{index}]"
            data = self.read_object(item["kind"], item["name"])
            if data is None:
                if item.get("optional"):
                    continue
                raise StepFailed(f"{item['kind']} {self.request.namespace}/{item['name']} does not exist: create it or "
                                 "mark it optional", category="config", field=where)
            keys = item.get("keys") or sorted(data)
            for key in keys:
                if key not in data:
                    if item.get("optional"):
                        continue
                    raise StepFailed(f"{item['kind']} {item['name']} has no key {key!r}", category="config",
                                     field=where)
                if key.endswith(".tfvars.json"):
                    values.update(json.loads(data[key]))
                elif key.endswith(".tfvars"):
                    values.update(_tfvars(data[key]))
                else:
                    try:
                        values[key] = json.loads(data[key])
                    except ValueError:
                        values[key] = data[key]
        return values

    def read_object(self, kind: str, name: str) -> dict[str, str] | None:
        if kind == "Secret":
            return read_secret(self.api, self.request.namespace, name)
        try:
            found = call_json(self.api, "GET", f"/api/v1/namespaces/{self.request.namespace}/configmaps/{name}",
                              timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found.get("data") or {})

    def init(self) -> None:
        self.check_version()
        self.run_engine(["init", "-input=false", "-no-color"])

    def check_version(self) -> None:
        """spec.terraformVersion: refuse to run an engine that does not satisfy it."""
        constraint = self.request.version_constraint
        if not constraint:
            return
        _, shown = self.run_engine(["version", "-json"], capture=True)
        version = str(json.loads(shown).get("terraform_version") or "0")
        self.result["engineVersion"] = version
        if not satisfies(version, constraint):
            raise StepFailed(f"the runner's {self.request.engine} is {version}, which does not satisfy {constraint!r}: "
                             "change the constraint or use a runner image that pins a matching version",
                             category="config", field="spec.terraformVersion")

    def plan(self, *, destroy: bool = False, keep: bool = True) -> None:
        revision = self.prepare()
        self.init()
        self.run_engine(["validate", "-no-color"])
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={PLAN_FILE}", *self.var_file_args]
        if destroy:
            args.append("-destroy")
        code, _ = self.run_engine(args, ok_codes=(0, 2))
        _, shown = self.run_engine(["show", "-json", "-no-color", PLAN_FILE], capture=True)
        plan_json = json.loads(shown)
        summary = summarize_plan(plan_json, sensitive_key=self.plan_key)
        identifier = plan_id(plan_digest=summary.digest, source_revision=revision, inputs=self.request.inputs_digest,
                             replan=self.request.replan)
        self.result.update({
            "planId": identifier, "planDigest": summary.digest, "add": summary.add, "change": summary.change,
            "destroy": summary.destroy, "replace": summary.replace, "changesPresent": code == 2,
            "changes": [{"address": c.address, "action": c.action, "type": c.type,
                         **({"attributes": list(c.attributes)} if c.attributes else {})}
                        for c in summary.changes[:MAX_RESULT_CHANGES]],
            "changesTotal": len(summary.changes), "outputChanges": list(summary.output_changes),
            "terraformVersion": summary.terraform_version,
        })
        if keep and self.request.artifact_secret:
            name = f"{self.request.artifact_secret}-{identifier}"
            files = {PLAN_FILE: (self.module_dir / PLAN_FILE).read_bytes(), "plan.json": shown.encode()}
            sha, chunks = artifacts.write(self.api, self.request.namespace, name, files, owner=self.request.owner)
            self.result.update({"artifactSecret": name, "artifactSha256": sha, "artifactChunks": chunks})
        self.log.line(f"runner: plan {identifier}: {summary.describe()}")

    def apply(self) -> None:
        request = self.request
        if not (request.plan_id and request.plan_sha256 and request.artifact_secret):
            raise StepFailed("no approved plan to apply", category="config")
        self.prepare()
        files = artifacts.read(self.api, request.namespace, request.artifact_secret, request.plan_sha256)
        (self.module_dir / PLAN_FILE).write_bytes(files[PLAN_FILE])
        self.init()
        _, shown = self.run_engine(["show", "-json", "-no-color", PLAN_FILE], capture=True)
        summary = summarize_plan(json.loads(shown), sensitive_key=self.plan_key)
        identifier = plan_id(plan_digest=summary.digest, source_revision=self.result["sourceRevision"],
                             inputs=request.inputs_digest, replan=request.replan)
        if identifier != request.plan_id:
            raise StepFailed(f"the saved plan is {identifier}, not the approved {request.plan_id}: refusing to "
                             "apply it", category="state", stale=True)
        self.result["planId"] = identifier
        if not request.from_snapshot:  # applying a destroy plan keeps the snapshot it was made from
            self.write_snapshot()
        self.run_engine(["apply", "-input=false", "-no-color", "-auto-approve", PLAN_FILE])
        self.collect_state()

    def destroy(self) -> None:
        """A destroy plan from the snapshot, kept for approval like any plan; `apply` applies it."""
        self.plan(destroy=True)

    def collect_state(self) -> None:
        """What the finished apply left (read even after a SIGTERM: the apply is done and must be reported)."""
        _, shown = self.run_engine(["show", "-json", "-no-color"], capture=True, after_signal=True)
        state = json.loads(shown) if shown.strip() else {"format_version": "1.0", "values": {}}
        resources = state_resources(state, default_region=self.request.region)
        self.result["resources"] = [r.__dict__ for r in resources[:MAX_RESULT_RESOURCES]]
        self.result["resourceCount"] = len(resources)
        _, raw_outputs = self.run_engine(["output", "-json", "-no-color"], capture=True, after_signal=True)
        outputs = state_outputs(json.loads(raw_outputs or "{}"))
        wanted = set(self.request.output_names)
        plain = {k: v for k, v in outputs.values.items() if not wanted or k in wanted}
        sensitive = {k: v for k, v in outputs.sensitive_values.items() if not wanted or k in wanted}
        self.publish_outputs(plain, sensitive)
        self.result["outputNames"] = sorted(plain)
        self.result["sensitiveOutputNames"] = sorted(sensitive)
        self.result["sensitiveOutputsExported"] = bool(self.request.outputs_secret)

    def publish_outputs(self, plain: Mapping[str, Any], sensitive: Mapping[str, Any]) -> None:
        def text(value: Any) -> str:
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

        if self.request.outputs_config_map:
            self.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": self.request.outputs_config_map},
                                    "data": {k: text(v) for k, v in plain.items()}})
        if self.request.outputs_secret and sensitive:
            self.put("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                 "metadata": {"name": self.request.outputs_secret},
                                 "stringData": {k: text(v) for k, v in sensitive.items()}})

    def write_snapshot(self) -> None:
        """The inputs as applied, for a destroy after the variables' ConfigMaps or Secrets are gone."""
        if not self.request.inputs_snapshot_secret:
            return
        data = {"variables.tfvars.json": json.dumps(self.snapshot_values),
                "sourceRevision": str(self.result.get("sourceRevision"))}
        packed = _pack_source(self.workdir / "source")
        if packed is not None:
            data[SNAPSHOT_SOURCE_KEY] = packed
        else:
            self.log.line(f"runner: the source is larger than {MAX_SNAPSHOT_SOURCE} bytes compressed: the snapshot "
                          "keeps the variables only, and a destroy fetches the source again")
        self.put("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                             "metadata": {"name": self.request.inputs_snapshot_secret}, "stringData": data})
        self.result["inputsSnapshotSecret"] = self.request.inputs_snapshot_secret
        self.result["sourceSnapshotted"] = packed is not None

    def put(self, plural: str, body: dict[str, Any]) -> None:
        """Create or replace an object owned by the deployment."""
        body = adopt({**body, "metadata": {**body["metadata"], "namespace": self.request.namespace}},
                     self.request.owner)
        path = f"/api/v1/namespaces/{self.request.namespace}/{plural}"
        try:
            call_json(self.api, "POST", path, body=body, timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
            call_json(self.api, "PUT", f"{path}/{body['metadata']['name']}", body=body, timeout=REQUEST_TIMEOUT)

    def save_errored_state(self) -> None:
        errored = self.module_dir / "errored.tfstate"
        if not errored.exists():
            return
        name = f"{self.request.deployment}-errored-tfstate"[:253]
        self.put("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name},
                             "stringData": {"errored.tfstate": errored.read_text()}})
        self.result["erroredStateSecret"] = name
        self.log.line(f"runner: Terraform could not save its state; errored.tfstate is kept in Secret {name}: push it "
                      "with `terraform state push errored.tfstate` once the backend is reachable")

    def report(self, job_name: str) -> None:
        self.result["log"] = self.log.excerpt()
        self.result["interrupted"] = self.forwarder.interrupted
        self.result["signalsForwarded"] = self.forwarder.forwarded
        name = result_name(job_name)
        data = {RESULT_KEY: json.dumps(self.result, sort_keys=True), LOG_KEY: self.result["log"]}
        # A Secret: the log shows the plan's values and the error may echo them (terraform/request.py).
        self.put("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name,
                             "labels": {"devops.fractary.io/infradeployment": self.request.deployment}},
                             "stringData": data})

    def execute(self) -> int:
        steps: dict[str, Callable[[], None]] = {
            "plan": self.plan, "drift": lambda: self.plan(keep=False), "apply": self.apply, "destroy": self.destroy,
        }
        try:
            steps[self.request.step]()
            self.result["ok"] = True
        except StepFailed as failed:
            self.fail(str(failed), failed.category, failed.field, failed.stale)
        except SourceError as failed:
            self.fail(str(failed), "config", failed.field, False)
        except (PlanFormatError, artifacts.ArtifactError, json.JSONDecodeError) as failed:
            self.fail(str(failed), "state", None, False)
        except ApiException as failed:
            self.fail(f"the Kubernetes API refused a request: {failed.status} {failed.reason}",
                      "permission" if failed.status in (401, 403) else "network", None, False)
        finally:
            self.save_errored_state()
        return 0 if self.result["ok"] else 1

    def fail(self, message: str, category: str, field: str | None, stale: bool) -> None:
        text = redact(message)
        self.result.update({"error": text, "category": category, "field": field, "stale": stale})
        self.log.line(f"runner: {self.request.step} failed: {text}")


def _pack_source(root: Path) -> str | None:
    """The fetched source as base64 tar.gz (without .terraform and plan files), or None when too large."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if (".terraform" in relative.parts or ".git" in relative.parts or path.name in (PLAN_FILE,
                                                                                               BACKEND_OVERRIDE_FILE)
                    or path.name.startswith("terraform.tfstate")):
                continue
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(relative), recursive=False)
            if buffer.tell() > MAX_SNAPSHOT_SOURCE:
                return None
    if buffer.tell() > MAX_SNAPSHOT_SOURCE:
        return None
    return base64.b64encode(buffer.getvalue()).decode()


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[stand-in")]
    for index, line in enumerate(lines):
        if line.startswith("Error:") or line.startswith("│ Error:"):
            detail = " ".join(lines[index:index + 3])
            return detail[:2000]
    return " ".join(lines[-3:])[:2000]


_CATEGORIES = (
    (("AccessDenied", "UnauthorizedOperation", "not authorized"), "permission"),
    (("InvalidClientTokenId", "ExpiredToken", "no valid credential", "NoCredentialProviders"), "credentials"),
    (("Throttling", "Rate exceeded", "TooManyRequests"), "throttling"),
    (("LimitExceeded", "QuotaExceeded"), "quota"),
    (("state lock", "Saved plan is stale", "Failed to save state"), "state"),
    (("connection refused", "timeout", "no such host", "dial tcp"), "network"),
    (("does not support", "Unsupported", "Invalid value", "No value for required variable", "Reference to undeclared",
      "Missing required argument", "cannot parse", "No configuration files"), "config"),
    (("AlreadyExists", "BucketAlreadyOwnedByYou", "EntityAlreadyExists", "NotFound"), "resource"),
)


def _category(text: str) -> str:
    for markers, category in _CATEGORIES:
        if any(marker.lower() in text.lower() for marker in markers):
            return category
    return "unknown"


def _tfvars(text: str) -> dict[str, Any]:
    import hcl2

    from devops_operator.terraform.standin.expressions import evaluate

    def no_refs(parts: Any) -> Any:
        raise ValueError("variables files may not contain references")

    return {k: evaluate(v, no_refs, "tfvars") for k, v in hcl2.loads(text).items()}


def main(argv: Sequence[str] | None = None, early_signals: Sequence[int] = ()) -> int:
    """Run one step; `early_signals` came before the runner's handler was installed (see __main__)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in STEPS:
        print(f"usage: python -m devops_operator.runner {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    raw = os.environ.get(REQUEST_ENV)
    if not raw:
        print(f"runner: {REQUEST_ENV} is not set: the runner only runs inside a Job the operator created",
              file=sys.stderr)
        return 2
    request = RunRequest.from_env(raw)
    if request.step != args[0]:
        print(f"runner: the request is for {request.step}, not {args[0]}", file=sys.stderr)
        return 2
    kube_client.configure()
    api = kube_client.api_client()
    workdir = Path(os.environ.get("DEVOPS_RUNNER_WORKDIR") or tempfile.mkdtemp(prefix="runner-"))
    runner = Runner(request, api, workdir, os.environ)
    signal.signal(signal.SIGTERM, runner.forwarder)
    signal.signal(signal.SIGINT, runner.forwarder)
    for signum in list(early_signals):  # stopped while starting: the step reports "interrupted" at once
        runner.forwarder(signum, None)
    started = time.monotonic()
    code = runner.execute()
    runner.result["durationSeconds"] = round(time.monotonic() - started, 3)
    job = os.environ.get("DEVOPS_JOB_NAME") or os.environ.get("HOSTNAME", "runner").rsplit("-", 1)[0]
    runner.report(job)
    return code
