"""Fetching a deployment's Terraform source inside the runner Job: inline, ConfigMap, git or a Flux artifact.

Each fetch returns the directory it wrote and the source revision (a git commit, or a digest of the
files), which is part of the plan id: the apply Job fetches again and refuses a revision other than the
one planned.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.digests import short_digest
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.secrets import read_secret

GIT_TIMEOUT = 300
LS_REMOTE_TIMEOUT = 30
DOWNLOAD_TIMEOUT = 120


class SourceError(Exception):
    """The source cannot be fetched as specified; `field` names the spec field to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _write_files(root: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def fetch_inline(root: Path, files: Mapping[str, str]) -> str:
    _write_files(root, files)
    return f"inline@{short_digest(dict(files), 16)}"


def fetch_config_map(api: ApiClient, namespace: str, name: str, root: Path) -> str:
    try:
        found = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}", timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise SourceError("spec.source.configMapRef.name",
                              f"ConfigMap {namespace}/{name} does not exist: create it or fix the name") from None
        raise
    data = dict(found.get("data") or {})
    files = {key.replace("__", "/"): value for key, value in data.items()}
    _write_files(root, files)
    return f"configmap@{short_digest(data, 16)}"


def _git(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float = GIT_TIMEOUT) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError("spec.source.git.url", f"git {args[0]} took longer than {timeout:.0f}s") from None
    if done.returncode != 0:
        raise SourceError("spec.source.git", f"git {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip()


def git_environment(api: ApiClient, namespace: str, git: Mapping[str, Any], home: Path) -> dict[str, str]:
    """The environment git runs with: no prompt, a private HOME, the credentials Secret as files there."""
    url = str(git["url"])
    env = {"GIT_TERMINAL_PROMPT": "0", "HOME": str(home)}
    credentials = git.get("credentialsSecretRef")
    if credentials:
        data = read_secret(api, namespace, credentials["name"]) or {}
        if data.get("username") and data.get("password") and url.startswith("http"):
            scheme, rest = url.split("://", 1)
            helper = home / "git-credentials"
            helper.write_text(f"{scheme}://{data['username']}:{data['password']}@{rest.split('/')[0]}\n")
            helper.chmod(0o600)
            env["GIT_CONFIG_COUNT"] = "1"
            env["GIT_CONFIG_KEY_0"] = "credential.helper"
            env["GIT_CONFIG_VALUE_0"] = f"store --file={helper}"
        elif data.get("identity"):
            key = home / "identity"
            key.write_text(data["identity"])
            key.chmod(0o600)
            hosts = home / "known_hosts"
            hosts.write_text(data.get("known_hosts", ""))
            env["GIT_SSH_COMMAND"] = f"ssh -i {key} -o UserKnownHostsFile={hosts} -o StrictHostKeyChecking=yes"
        else:
            raise SourceError("spec.source.git.credentialsSecretRef",
                              f"Secret {namespace}/{credentials['name']} has neither username and password nor "
                              "identity: add those keys")
    return env


def git_target(git: Mapping[str, Any]) -> str:
    ref = git.get("ref") or {}
    return str(ref.get("commit") or (f"refs/tags/{ref['tag']}" if ref.get("tag") else
                                      f"refs/heads/{ref['branch']}" if ref.get("branch") else "HEAD"))


def fetch_git(api: ApiClient, namespace: str, git: Mapping[str, Any], root: Path, home: Path) -> str:
    url = str(git["url"])
    env = git_environment(api, namespace, git, home)
    root.mkdir(parents=True, exist_ok=True)
    _git(["init", "-q"], root, env)
    _git(["remote", "add", "origin", url], root, env)
    _git(["fetch", "-q", "--depth", "1", "origin", git_target(git)], root, env)
    _git(["checkout", "-q", "FETCH_HEAD"], root, env)
    return _git(["rev-parse", "HEAD"], root, env)


def remote_revision(api: ApiClient, namespace: str, git: Mapping[str, Any]) -> str:
    """The commit a branch, tag or HEAD names now (`git ls-remote`), without fetching anything."""
    ref = git.get("ref") or {}
    if ref.get("commit"):
        return str(ref["commit"])
    target = git_target(git)
    with tempfile.TemporaryDirectory(prefix="git-ls-remote-") as home:
        env = git_environment(api, namespace, git, Path(home))
        # The operator asks this in a reconciliation: a remote that hangs must not hold it for long.
        listing = _git(["ls-remote", str(git["url"]), target, f"{target}^{{}}"], Path(home), env,
                       timeout=LS_REMOTE_TIMEOUT)
    found = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    # An annotated tag: the commit it points to, not the tag object.
    revision = found.get(f"{target}^{{}}") or found.get(target)
    if not revision:
        raise SourceError("spec.source.git.ref", f"{target} does not exist in {git['url']}")
    return revision


def fetch_artifact(artifact: Mapping[str, Any], root: Path) -> str:
    """A Flux source artifact: download status.artifact.url, verify its digest, unpack the tarball."""
    url = str(artifact.get("url"))
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            data = response.read()
    except OSError as exc:
        raise SourceError("spec.source.sourceRef", f"cannot download the Flux artifact {url}: {exc}") from None
    expected = str(artifact.get("digest") or "")
    algorithm, _, value = expected.partition(":")
    if algorithm != "sha256" or hashlib.sha256(data).hexdigest() != value:
        raise SourceError("spec.source.sourceRef",
                          f"the Flux artifact's digest does not match {expected!r}: refusing it")
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(root, filter="data")
    return str(artifact.get("revision") or expected)


def fetch(api: ApiClient, namespace: str, source: Mapping[str, Any], root: Path, home: Path) -> str:
    """Fetch whichever source the spec names into `root`; returns the source revision."""
    if source.get("inline"):
        return fetch_inline(root, source["inline"])
    if source.get("configMapRef"):
        return fetch_config_map(api, namespace, source["configMapRef"]["name"], root)
    if source.get("git"):
        return fetch_git(api, namespace, source["git"], root, home)
    if source.get("artifact"):
        return fetch_artifact(source["artifact"], root)
    raise SourceError("spec.source", "no source to fetch: set git, configMapRef, inline or sourceRef")


def module_path(source: Mapping[str, Any]) -> str:
    for kind in ("git", "configMapRef", "sourceRef"):
        if source.get(kind):
            return str(source[kind].get("path") or ".")
    return "."
