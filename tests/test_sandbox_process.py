"""`devopsctl sandbox` as a user runs it: a process of its own, its metrics and liveness URLs, and SIGTERM.

One sandbox process serves the module; the last test stops it with SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = ROOT / ".tools/bin/promtool"
READY_LINE = re.compile(r"DevOpsProject/shop \(default\): Ready")
URL_LINES = {
    "kubernetes": re.compile(r"^emulated Kubernetes API: (\S+)"),
    "aws": re.compile(r"^emulated AWS \(moto\): (\S+)"),
    "metrics": re.compile(r"^\s*metrics: (\S+)"),
    "liveness": re.compile(r"^\s*liveness: (\S+)"),
}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    urls: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # the output reached its end

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            for name, pattern in URL_LINES.items():
                if match := pattern.match(line):
                    self.urls[name] = match.group(1)
            if READY_LINE.search(line):
                self.ready.set()
        self.ready.set()  # the process ended: stop waiting either way
        self.finished.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state_dir = tmp_path_factory.mktemp("sandbox")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "devopsctl"), "sandbox", "--state-dir", str(state_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    running = Sandbox(process)
    reader = threading.Thread(target=running.read_output, daemon=True)
    reader.start()
    try:
        assert running.ready.wait(START_TIMEOUT), running.output
        assert process.poll() is None, running.output
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)
        reader.join(STOP_TIMEOUT)


def test_the_sandbox_prints_its_metrics_and_liveness_urls(sandbox: Sandbox) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", sandbox.urls["metrics"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/healthz", sandbox.urls["liveness"])


def test_the_metrics_url_serves_the_operators_metrics(sandbox: Sandbox) -> None:
    scraped = requests.get(sandbox.urls["metrics"], timeout=5)
    assert scraped.status_code == 200
    assert 'devops_operator_resource_ready{kind="DevOpsProject",name="shop",namespace="default"} 1.0' in scraped.text
    assert "# TYPE devops_operator_reconcile_total counter" in scraped.text


def test_the_metrics_pass_promtool_check(sandbox: Sandbox) -> None:
    promtool = str(PROMTOOL) if PROMTOOL.exists() else shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool: `make tools` installs it from Debian's prometheus package where apt can fetch it")
    scraped = requests.get(sandbox.urls["metrics"], timeout=5).text
    checked = subprocess.run([promtool, "check", "metrics"], input=scraped, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_liveness_url_answers_with_the_probes(sandbox: Sandbox) -> None:
    answer = requests.get(sandbox.urls["liveness"], timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"kubernetes": True})


def _listening(url: str) -> bool:
    address = urlparse(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address.hostname or "", address.port or 0)) == 0


def test_sigterm_stops_it_like_ctrl_c(sandbox: Sandbox) -> None:
    assert all(_listening(url) for url in sandbox.urls.values()), sandbox.urls
    sandbox.process.send_signal(signal.SIGTERM)
    assert sandbox.process.wait(STOP_TIMEOUT) == 0  # the documented exit code of a requested stop
    assert sandbox.finished.wait(STOP_TIMEOUT)
    assert sandbox.output.rstrip().endswith("stopping the sandbox"), sandbox.output
    assert "Traceback" not in sandbox.output
    assert [name for name, url in sandbox.urls.items() if _listening(url)] == []
