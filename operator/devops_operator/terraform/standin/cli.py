"""`devops-terraform-standin`: the part of Terraform's CLI the runner calls, as a test double (like moto).

    init -input=false | validate | plan [-out=FILE] [-detailed-exitcode] [-destroy] [-var-file=F] [-var k=v]
    show -json [FILE] | apply [-auto-approve] FILE | output -json | destroy -auto-approve | version

Exit codes are Terraform's: 0 success, 1 error, and with -detailed-exitcode 2 for a plan with changes.
Every run says on stderr that it is the stand-in, so nobody mistakes its output for a real engine's.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from devops_operator.terraform.planjson import mask_sensitive, summarize_plan
from devops_operator.terraform.standin.errors import ModuleError
from devops_operator.terraform.standin.expressions import EvaluationError, Unsupported, evaluate
from devops_operator.terraform.standin.state import LockError, StateStore, StateWriteError

# Each command imports only what it needs (boto3, the Kubernetes client, the HCL parser are imported where
# used): a runner step calls the CLI four or five times, and start-up time adds up on small nodes.
ENGINE_VERSION = "1.9.8"

BANNER = "stand-in Terraform (devops-operator's test double, not HashiCorp Terraform or OpenTofu)"
PLAN_FORMAT = "devops-standin-plan/1"
BACKEND_RECORD = Path(".terraform") / "terraform.tfstate"
# Test hook: make the state write fail, as an API server refusing it would (errored.tfstate is written).
FAIL_STATE_WRITE_ENV = "DEVOPS_STANDIN_FAIL_STATE_WRITE"
# Test hook: `show -json` of the state writes `<path>.waiting`, then waits until `<path>` exists (a moment a
# test chooses while the runner reads the state back after an apply).
SHOW_STATE_GATE_ENV = "DEVOPS_STANDIN_SHOW_STATE_GATE"


class Stop:
    """Terraform's interrupt handling: the first signal stops gracefully, a second one exits at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            print("Two interrupts received. Exiting immediately. Note that data loss may have occurred.",
                  file=sys.stderr, flush=True)
            os._exit(1)
        self.requested = True
        print("Interrupt received.\nPlease wait for Terraform to exit or data loss may occur.\n"
              "Gracefully shutting down...", file=sys.stderr, flush=True)


def _options(args: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    flags: dict[str, list[str]] = {}
    positional = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            name, eq, value = arg.lstrip("-").partition("=")
            if not eq and name in ("var", "var-file", "out", "target") and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            flags.setdefault(name, []).append(value if eq or value else "true")
        else:
            positional.append(arg)
        i += 1
    return flags, positional


def _inputs(flags: dict[str, list[str]], directory: Path) -> dict[str, Any]:
    """Variables from terraform.tfvars, *.auto.tfvars(.json), -var-file and -var, in Terraform's order."""
    files = [directory / "terraform.tfvars", directory / "terraform.tfvars.json"]
    files += sorted(directory.glob("*.auto.tfvars")) + sorted(directory.glob("*.auto.tfvars.json"))
    files += [Path(f) if Path(f).is_absolute() else directory / f for f in flags.get("var-file", [])]
    values: dict[str, Any] = {}
    for path in files:
        if not path.exists():
            if str(path.name) in {Path(f).name for f in flags.get("var-file", [])}:
                raise ModuleError(f'Error: Failed to read variables file "{path.name}": no such file in the module')
            continue
        if path.name.endswith(".json"):
            values.update(json.loads(path.read_text()))
        else:
            import hcl2

            parsed = hcl2.loads(path.read_text())
            values.update({k: _tfvars_value(v) for k, v in parsed.items()})
    for assignment in flags.get("var", []):
        key, _, value = assignment.partition("=")
        values[key] = value
    return values


def _load_module(directory: Path) -> Any:
    from devops_operator.terraform.standin.module import load_module

    return load_module(directory)


def _engine(module: Any, inputs: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    from devops_operator.terraform.standin.engine import Engine

    return Engine(module, inputs, env=env)


def _tfvars_value(value: Any) -> Any:
    def no_refs(parts: Any) -> Any:
        raise EvaluationError("variables files may not contain references")

    return evaluate(value, no_refs, "tfvars")


def _store(directory: Path) -> StateStore:
    record = directory / BACKEND_RECORD
    if not record.exists():
        raise ModuleError('Error: Backend initialization required, please run "terraform init"')
    backend = json.loads(record.read_text()).get("backend") or {}
    if backend.get("type") == "kubernetes":
        from devops_operator.kube import client as kube_client
        from devops_operator.terraform.standin.state import KubernetesState

        config = backend.get("config") or {}
        path = os.environ.get("KUBE_CONFIG_PATH")
        if path:
            os.environ.setdefault("KUBECONFIG", path)
        kube_client.configure()
        namespace = config.get("namespace") or os.environ.get("KUBE_NAMESPACE") or "default"
        return KubernetesState(kube_client.api_client(), namespace, str(config.get("secret_suffix")))
    from devops_operator.terraform.standin.state import LocalState

    return LocalState(directory)


def _write_state(store: StateStore, state: dict[str, Any], directory: Path) -> None:
    try:
        if os.environ.get(FAIL_STATE_WRITE_ENV):
            raise StateWriteError("the state backend refused the write (DEVOPS_STANDIN_FAIL_STATE_WRITE)")
        store.write(state)
    except StateWriteError as exc:
        (directory / "errored.tfstate").write_text(json.dumps(state, indent=2))
        raise ModuleError(f"Error: Failed to save state: {exc}\n\nTerraform encountered an error attempting to "
                          "save the state; it was written to errored.tfstate in the working directory.") from exc


def _persist_intermediate(store: StateStore, state: dict[str, Any]) -> None:
    """A snapshot of the state during the apply; one that cannot be saved is a warning (the final save decides)."""
    try:
        if os.environ.get(FAIL_STATE_WRITE_ENV):
            raise StateWriteError("the state backend refused the write (DEVOPS_STANDIN_FAIL_STATE_WRITE)")
        store.write(state)
    except StateWriteError as exc:
        print(f"Warning: Failed to persist an intermediate state snapshot: {exc}", file=sys.stderr, flush=True)


def _backend_config(module: Any) -> dict[str, Any]:
    if module.backend is None:
        return {"type": "local", "config": {}}
    backend_type, raw = module.backend

    def no_refs(parts: Any) -> Any:
        raise EvaluationError("a backend block may not refer to variables or resources")

    return {"type": backend_type, "config": {k: evaluate(v, no_refs, "backend") for k, v in raw.items()}}


def _init(directory: Path) -> int:
    module = _load_module(directory)
    record = directory / BACKEND_RECORD
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps({"version": 3, "backend": _backend_config(module)}))
    print(f"Initializing the backend...\nInitializing provider plugins...\n- Using the stand-in's table of "
          f"{len(module.resources)} resource(s) over boto3\n\nTerraform has been successfully initialized!")
    return 0


def _validate(directory: Path) -> int:
    _load_module(directory)
    print("Success! The configuration is valid.")
    return 0


def _plan(directory: Path, flags: dict[str, list[str]]) -> int:
    module = _load_module(directory)
    store = _store(directory)
    engine = _engine(module, _inputs(flags, directory))
    lock_id = store.lock("OperationTypePlan")
    try:
        state = store.read()
        plan = engine.plan(state, destroy="destroy" in flags)
    finally:
        store.unlock(lock_id)
    summary = summarize_plan(plan)
    attributes = {item.get("address"): item.get("change") or {} for item in plan.get("resource_changes") or []}
    for change in summary.changes:
        print(f"  # {change.address} will be {_verb(change.action)}")
        for line in _shown_values(attributes.get(change.address) or {}):
            print(line)
    if summary.empty:
        print("No changes. Your infrastructure matches the configuration.")
    else:
        print(f"Plan: {summary.add + summary.replace} to add, {summary.change} to change, "
              f"{summary.destroy + summary.replace} to destroy.")
    if flags.get("out"):
        saved = {"format": PLAN_FORMAT, "plan": plan, "destroy": "destroy" in flags,
                 "inputs": engine.variables,
                 "prior": {"lineage": (state or {}).get("lineage"), "serial": (state or {}).get("serial")}}
        Path(flags["out"][-1]).write_bytes(gzip.compress(json.dumps(saved).encode()))
        print(f"\nSaved the plan to: {flags['out'][-1]}")
    return 2 if "detailed-exitcode" in flags and not summary.empty else 0


def _shown_values(change: dict[str, Any]) -> list[str]:
    """The planned values as Terraform's human-readable plan shows them: every known value in clear, only
    those marked sensitive hidden (which is why a plan's log is no place for many to read)."""
    after = change.get("after")
    if not isinstance(after, dict):
        return []
    marks = change.get("after_sensitive")
    hidden: dict[str, Any] = marks if isinstance(marks, dict) else {}
    lines = []
    for name, value in sorted(after.items()):
        if value is None or value == [] or value == {}:
            continue
        marked = hidden.get(name, False)
        shown = "(sensitive value)" if marked is True else json.dumps(mask_sensitive(value, marked), sort_keys=True)
        lines.append(f"      + {name} = {shown}")
    return lines


def _verb(action: str) -> str:
    return {"create": "created", "update": "updated in-place", "delete": "destroyed",
            "replace": "replaced", "read": "read"}.get(action, action)


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ModuleError(f"Error: Failed to load {path.name} as a plan file: {exc}") from exc
    if saved.get("format") != PLAN_FORMAT:
        raise ModuleError(f"Error: {path.name} is not a plan file of the stand-in")
    return saved


def _show(directory: Path, flags: dict[str, list[str]], positional: list[str]) -> int:
    if "json" not in flags:
        raise ModuleError("Error: the stand-in only shows -json")
    if positional:
        print(json.dumps(_read_plan(Path(positional[0]))["plan"]))
        return 0
    from devops_operator.terraform.standin.engine import show_state

    gate = os.environ.get(SHOW_STATE_GATE_ENV)
    if gate:
        Path(f"{gate}.waiting").touch()
        while not Path(gate).exists():
            time.sleep(0.05)
    print(json.dumps(show_state(_store(directory).read())))
    return 0


def _apply(directory: Path, positional: list[str], stop: Stop) -> int:
    if not positional:
        raise ModuleError("Error: the stand-in applies saved plans only: run plan -out=FILE, then apply FILE")
    saved = _read_plan(Path(positional[0]))
    module = _load_module(directory)
    store = _store(directory)
    engine = _engine(module, saved.get("inputs") or {})
    lock_id = store.lock("OperationTypeApply")
    try:
        state = store.read()
        prior = saved.get("prior") or {}
        if ((state or {}).get("lineage"), (state or {}).get("serial")) != (prior.get("lineage"), prior.get("serial")):
            print("Error: Saved plan is stale\n\nThe given plan file can no longer be applied because the state "
                  "was changed by another operation after the plan was created.", file=sys.stderr)
            return 1
        from devops_operator.terraform.standin.engine import ApplyFailed, Interrupted

        try:
            new_state = engine.apply(saved["plan"], state, should_stop=lambda: stop.requested,
                                     progress=lambda line: print(line, flush=True), destroy=bool(saved.get("destroy")),
                                     persist=lambda snapshot: _persist_intermediate(store, snapshot))
        except ApplyFailed as failed:
            _write_state(store, failed.state, directory)
            print(str(failed), file=sys.stderr)
            return 1
        except Interrupted as interrupted:
            _write_state(store, interrupted.state, directory)
            print("Error: execution halted: the operation was interrupted; the state holds what was done so far",
                  file=sys.stderr)
            return 1
        _write_state(store, new_state, directory)
    finally:
        store.unlock(lock_id)
    counts = summarize_plan(saved["plan"])
    print(f"\nApply complete! Resources: {counts.add + counts.replace} added, {counts.change} changed, "
          f"{counts.destroy + counts.replace} destroyed.")
    return 0


def _output(directory: Path, flags: dict[str, list[str]]) -> int:
    from devops_operator.terraform.standin.engine import output_json

    print(json.dumps(output_json(_store(directory).read())))
    return 0


def _destroy(directory: Path, flags: dict[str, list[str]], stop: Stop) -> int:
    plan_file = directory / ".terraform" / "destroy.tfplan"
    flags = {**flags, "destroy": ["true"], "out": [str(plan_file)]}
    code = _plan(directory, flags)
    if code not in (0, 2):
        return code
    return _apply(directory, [str(plan_file)], stop)


def run(argv: Sequence[str], directory: Path | None = None) -> int:
    directory = directory or Path.cwd()
    args = [a for a in argv if not a.startswith("-chdir=")]
    for a in argv:
        if a.startswith("-chdir="):
            directory = Path(a.split("=", 1)[1])
    if not args or args[0] in ("version", "-version", "--version"):
        if "-json" in args:
            print(json.dumps({"terraform_version": ENGINE_VERSION, "platform": "stand-in", "provider_selections": {},
                              "terraform_outdated": False}))
        else:
            print(f"Terraform v{ENGINE_VERSION}\n{BANNER}")
        return 0
    print(f"[{BANNER}]", file=sys.stderr, flush=True)
    command, rest = args[0], args[1:]
    flags, positional = _options(rest)
    stop = Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if command == "init":
            return _init(directory)
        if command == "validate":
            return _validate(directory)
        if command == "plan":
            return _plan(directory, flags)
        if command == "show":
            return _show(directory, flags, positional)
        if command == "apply":
            return _apply(directory, positional, stop)
        if command == "output":
            return _output(directory, flags)
        if command == "destroy":
            return _destroy(directory, flags, stop)
        print(f"Error: the stand-in does not implement `terraform {command}`: install terraform or tofu",
              file=sys.stderr)
        return 1
    except Unsupported as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except LockError as exc:
        print(f"Error: Error acquiring the state lock\n\nLock Info:\n{exc}", file=sys.stderr)
        return 1
    except (ModuleError, EvaluationError) as exc:
        text = str(exc)
        print(text if text.startswith("Error") else f"Error: {text}", file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(run(sys.argv[1:]))
