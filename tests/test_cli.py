"""devopsctl as a user meets it: help, version, and `kubectl devops` as a kubectl plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from devops_operator import __version__
from devops_operator.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = ROOT / ".tools/bin/kubectl"


def test_help_lists_the_commands_with_examples() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "sandbox" in result.output and "operator" in result.output and "Examples:" in result.output


def test_sandbox_help_says_how_to_reach_it_with_kubectl() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "--once" in result.output and "kubectl --kubeconfig .sandbox/kubeconfig" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_missing_examples_directory_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--once", "--examples", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl: run `make tools` (make test does)")
def test_kubectl_finds_the_plugin() -> None:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(KUBECTL), "devops", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Drive devops-operator" in result.stdout
