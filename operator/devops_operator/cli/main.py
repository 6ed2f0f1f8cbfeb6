"""devopsctl (also `kubectl devops`): the command line of devops-operator."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from devops_operator import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="devopsctl")
def cli() -> None:
    """Drive devops-operator: the DevOps lifecycle as Kubernetes resources.

    \b
    Examples:
      devopsctl sandbox            # emulated Kubernetes + AWS, the operator, and examples/
      devopsctl sandbox --once     # same, exit when the examples settle (CI, make demo)
      devopsctl operator           # run the operator against the current kubeconfig
    """


@cli.command()
@click.option("--once", is_flag=True, help="Exit when the examples settle: 0 if all Ready, 1 if any Stalled.")
@click.option("--examples", type=click.Path(exists=True, file_okay=True, path_type=Path), default=Path("examples"),
              show_default=True, help="File or directory of manifests to apply.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=Path(".sandbox"), show_default=True,
              help="Where the kubeconfig of the emulated API is written.")
@click.option("--port", type=int, default=0, help="Port of the emulated Kubernetes API (0 picks a free one).")
@click.option("--timeout", type=float, default=240.0, show_default=True, help="Seconds --once waits to settle.")
@click.option("--namespace", default="default", show_default=True, help="Namespace for manifests without one.")
def sandbox(once: bool, examples: Path, state_dir: Path, port: int, timeout: float, namespace: str) -> None:
    """Run the operator on an embedded sandbox (no cluster or AWS account needed).

    Starts an emulated Kubernetes API on localhost (kubeconfig in .sandbox/kubeconfig),
    an emulated AWS (moto) seeded with a demo estate, the operator, applies the examples,
    and prints each resource's phase and conditions as they change, and the operator's
    metrics and liveness URLs. Ctrl-C or SIGTERM stops it (exit code 0).

    \b
    Examples:
      devopsctl sandbox
      devopsctl sandbox --once --timeout 120
      kubectl --kubeconfig .sandbox/kubeconfig get devopsprojects   # from another terminal
    """
    try:
        from devops_operator.sandbox.runner import SandboxOptions, run_sandbox
    except ModuleNotFoundError as exc:  # kmock or moto: the sandbox extras are not installed
        raise click.ClickException(
            f"the sandbox needs {exc.name!r}: install the sandbox extras with "
            "pip install 'devops-operator[sandbox]' (make demo does it for you)"
        ) from exc

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # SIGTERM stops it exactly like Ctrl-C; a second signal must not cut the clean-up short.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, interrupt)
    options = SandboxOptions(examples=examples, state_dir=state_dir, namespace=namespace, port=port,
                             once=once, settle_timeout=timeout)
    sys.exit(run_sandbox(options))


@cli.command()
def operator() -> None:
    """Run the operator in the foreground against the current kubeconfig or in-cluster config.

    Settings come from the environment: WATCH_NAMESPACES, DEVOPS_OPERATOR_METRICS_PORT,
    DEVOPS_OPERATOR_EVENT_LEVEL, DEVOPS_OPERATOR_PEERING (see docs/operations.md).
    """
    from devops_operator.main import main as run_operator

    run_operator()


def main() -> None:
    cli()
