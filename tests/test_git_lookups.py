"""The operator's own calls to git hosts a tenant names: only hosts the policy allows, never on a reconcile,
at most once per interval (which has a floor), and nothing the remote says reaches a condition."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient
from pydantic import ValidationError

from devops_operator.api.infradeployment import MIN_INTERVAL, InfraDeploymentSpec
from devops_operator.deploy.revisions import LookupFailure, RevisionCache
from devops_operator.runner.sources import LOOKUP_MESSAGES, SourceError, lookup_category, remote_revision
from devops_operator.sandbox.kubelet import KubeletDouble
from devops_operator.sandbox.operator_thread import OperatorThread
from devops_operator.tenancy import TenancyRule, git_host_allowed, git_location

from deployments import deployment, get, project
from support import condition, wait_until

# --- pure: the policy's gitHosts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "location"), [
    ("https://github.com/acme/infra.git", "github.com"),
    ("https://user:token@GitHub.com:443/acme/infra.git", "github.com:443"),
    ("ssh://git@git.corp.example:2222/infra.git", "git.corp.example:2222"),
    ("git@github.com:acme/infra.git", "github.com"),
    ("file:///srv/repos/infra.git", "file://"),
    ("/srv/repos/infra.git", "file://"),
    ("ext::sh -c touch% /tmp/pwned", None),
    ("http://127.0.0.1:8080\\@github.com/x.git", None),
    ("fd::17", None),
])
def test_the_host_a_git_url_names(url: str, location: str | None) -> None:
    assert git_location(url) == location


def test_only_hosts_on_the_rule_are_asked() -> None:
    rule = TenancyRule(name="team", git_hosts=["github.com", "*.corp.example:443"])
    assert git_host_allowed(rule, "https://github.com/acme/infra.git")
    assert git_host_allowed(rule, "https://github.com:443/acme/infra.git")  # host alone matches any port
    assert git_host_allowed(rule, "https://git.corp.example:443/infra.git")
    assert not git_host_allowed(rule, "https://git.corp.example:8443/infra.git")
    assert not git_host_allowed(rule, "https://metadata.google.internal/x.git")
    assert not git_host_allowed(rule, "file:///var/run/secrets/repo")  # local paths only where file:// is listed
    assert not git_host_allowed(TenancyRule(name="default"), "https://github.com/acme/infra.git")
    assert git_host_allowed(TenancyRule(name="local", git_hosts=["file://"]), "file:///srv/infra.git")


def test_interval_has_a_floor_in_the_model() -> None:
    base = {"projectRef": {"name": "shop"}, "environment": "test", "source": {"inline": {"main.tf": ""}}}
    with pytest.raises(ValidationError, match=f"interval must be at least {MIN_INTERVAL}"):
        InfraDeploymentSpec.model_validate({**base, "interval": "1s"})
    assert InfraDeploymentSpec.model_validate({**base, "interval": "30s"}).interval == "30s"
    assert InfraDeploymentSpec.model_validate({**base, "interval": "1d"}).interval == "1d"


# --- pure: the cache never waits for the remote ----------------------------------------------------------------


def test_a_lookup_runs_in_the_background_and_its_answer_wakes_the_deployment() -> None:
    now = [100.0]
    cache = RevisionCache(clock=lambda: now[0])
    release, woken, calls = threading.Event(), threading.Event(), []

    def slow() -> str:
        calls.append(1)
        release.wait(30)
        return "abc123"

    key = ("ns", "https://git.example/x.git", "refs/heads/main", "")
    first = cache.revision(key, 60, slow, last_known=None, on_done=woken.set)
    assert (first.revision, first.pending, first.error) == (None, True, None)  # answered without waiting
    again = cache.revision(key, 60, slow, on_done=woken.set)
    assert again.pending and len(calls) <= 1  # one lookup in flight per key, however often it is asked
    release.set()
    assert woken.wait(10)
    answer = cache.revision(key, 60, slow)
    assert (answer.revision, answer.fresh, answer.pending) == ("abc123", True, False)
    assert calls == [1]
    now[0] += 30  # within the interval: the answer stands, nothing asked
    assert cache.revision(key, 60, slow).revision == "abc123" and calls == [1]
    cache.close()


def test_a_failed_lookup_keeps_the_last_commit_and_says_only_its_category() -> None:
    now = [0.0]
    cache = RevisionCache(clock=lambda: now[0])
    done = threading.Event()

    def refused() -> str:
        raise LookupFailure("AuthenticationFailed", LOOKUP_MESSAGES["AuthenticationFailed"])

    key = ("ns", "u", "t", "")
    cache.revision(key, 60, refused, last_known="old", on_done=done.set)
    assert done.wait(10)
    seen = cache.revision(key, 60, refused, last_known="old")
    assert (seen.revision, seen.category, seen.error) == ("old", "AuthenticationFailed",
                                                           LOOKUP_MESSAGES["AuthenticationFailed"])

    def crashes() -> str:
        raise RuntimeError("internal detail: 10.0.0.7 said 500 secret=hunter2")

    other = ("ns", "u2", "t", "")
    done.clear()
    cache.revision(other, 60, crashes, on_done=done.set)
    assert done.wait(10)
    crashed = cache.revision(other, 60, crashes)
    assert crashed.error is not None and "hunter2" not in crashed.error and "10.0.0.7" not in crashed.error
    cache.close()


@pytest.mark.parametrize(("stderr", "category"), [
    ("fatal: Authentication failed for 'https://git.example/x.git/'", "AuthenticationFailed"),
    ("fatal: could not read Username for 'https://git.example': terminal prompts disabled", "AuthenticationFailed"),
    ("remote: Repository not found.\nfatal: repository 'https://git.example/x.git/' not found", "RepositoryNotFound"),
    ("fatal: unable to access 'http://10.0.0.7/x.git/': The requested URL returned error: 500", "RemoteUnreachable"),
    ("fatal: unable to access 'https://git.example/': Could not resolve host: git.example", "RemoteUnreachable"),
])
def test_git_errors_become_categories(stderr: str, category: str) -> None:
    assert lookup_category(SourceError("spec.source.git", "git ls-remote failed", detail=stderr)) == category
    assert lookup_category(SourceError("spec.source.git.url", "took too long", timed_out=True)) == "Timeout"


# --- against a remote: what it answers is not echoed ----------------------------------------------------------


class Failing(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        Failing.seen.append(self.path)
        body = b"internal error: db-7.internal.corp password=hunter2"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def failing_remote() -> Iterator[int]:
    Failing.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_remote_revision_raises_a_fixed_message(failing_remote: int) -> None:
    git = {"url": f"http://127.0.0.1:{failing_remote}/infra.git", "ref": {"branch": "main"}}
    with pytest.raises(LookupFailure) as failed:
        remote_revision(None, "ns", git)  # type: ignore[arg-type]  # no credentials Secret: no API call
    assert failed.value.category == "RemoteUnreachable"
    assert str(failed.value) == LOOKUP_MESSAGES["RemoteUnreachable"]
    assert Failing.seen  # it was asked (127.0.0.1 is the test's git host)


# --- end to end ---------------------------------------------------------------------------------------------


class Listener:
    """A TCP port that counts connections and closes them (a git host the operator must not call)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_operator_never_calls_a_git_host_the_policy_does_not_list(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str,
) -> None:
    """`localhost` is not on the test policy's gitHosts: the operator does not connect to it (the plan Job,
    held here, is what fetches the source), and the condition says how a new commit gets planned."""
    listener = Listener()
    kubelet.hold_jobs.add("elsewhere-plan-")
    try:
        project(kube_api, namespace)
        deployment(kube_api, namespace, "elsewhere", approval={"mode": "auto"}, interval="30s",
                   source={"git": {"url": f"http://localhost:{listener.port}/infra.git", "ref": {"branch": "main"}}})
        planning = wait_until(lambda: (o := get(kube_api, namespace, "elsewhere")).get("status", {}).get(
            "phase") == "Planning" and o, timeout=60, what="the plan Job started")
        checked = condition(planning, "SourceChecked")
        assert checked is not None and checked["reason"] == "NotLookedUp" and checked["status"] == "Unknown"
        assert "gitHosts" in checked["message"] and "replan-requested-at" in checked["message"]
        assert listener.connections == 0
    finally:
        kubelet.release("elsewhere-plan-")
        listener.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_failing_git_host_shows_a_category_not_what_it_answered(
    operator: OperatorThread, kubelet: KubeletDouble, kube_api: ApiClient, namespace: str, failing_remote: int,
) -> None:
    kubelet.hold_jobs.add("failing-plan-")
    try:
        project(kube_api, namespace)
        deployment(kube_api, namespace, "failing", approval={"mode": "auto"}, interval="30s",
                   source={"git": {"url": f"http://127.0.0.1:{failing_remote}/infra.git", "ref": {"branch": "main"}}})
        obj = wait_until(lambda: (o := get(kube_api, namespace, "failing")) and (c := condition(o, "SourceChecked"))
                         and c["status"] == "False" and o, timeout=60, what="the lookup's failure in a condition")
        checked = condition(obj, "SourceChecked")
        assert checked is not None and checked["reason"] == "RemoteUnreachable"
        assert LOOKUP_MESSAGES["RemoteUnreachable"] in checked["message"]
        for leaked in ("hunter2", "db-7.internal", "returned error", "internal error"):
            assert leaked not in checked["message"] and leaked not in (obj["status"].get("message") or "")
    finally:
        kubelet.release("failing-plan-")
