"""Fetching a deployment's Terraform source inside the runner Job: inline, ConfigMap, git or a Flux artifact.

Each fetch returns the directory it wrote and the source revision (a git commit, or a digest of the
files), which is part of the plan id: the apply Job fetches again and refuses a revision other than the
one planned.
"""

from __future__ import annotations

import hashlib
import io
import logging
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

from devops_operator.deploy.revisions import LookupFailure
from devops_operator.digests import short_digest
from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.redaction import redact
from devops_operator.kube.secrets import read_secret

logger = logging.getLogger(__name__)

GIT_TIMEOUT = 300
# The operator's own lookup of a branch's head (deploy/revisions.py runs it off the reconcile): short.
LS_REMOTE_TIMEOUT = 10
DOWNLOAD_TIMEOUT = 120


class SourceError(Exception):
    """The source cannot be fetched as specified; `field` names the spec field to fix."""

    def __init__(self, field: str, message: str, detail: str = "", timed_out: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.detail = detail  # git's own stderr: for the runner's log, never for the operator's conditions
        self.timed_out = timed_out


# A ConfigMap key holds no '/', so `__` stands for one; what a key decodes to must stay a relative path
# inside the workspace (issue 14, 13c): `..` segments, an absolute path (a leading `__`) or an empty or
# `.` segment would otherwise let a key write anywhere the runner can.
CONFIG_MAP_SEPARATOR = "__"


def config_map_key_refusal(key: str) -> str | None:
    """The rule a ConfigMap source key breaks as a module file path, or None when it is safe (pure)."""
    if "/" in key or "\\" in key:
        return "holds a path separator ('/' or '\\'): write directories as `__`"
    if key.startswith(CONFIG_MAP_SEPARATOR):
        return "starts with `__`, which would decode to an absolute path"
    segments = key.split(CONFIG_MAP_SEPARATOR)
    if any(segment == "" for segment in segments):
        return "has an empty path segment (`____` or a trailing `__`)"
    if any(segment in (".", "..") for segment in segments):
        return "has a '.' or '..' path segment, which would climb out of the module's directory"
    return None


def config_map_files(namespace: str, name: str, data: Mapping[str, str]) -> dict[str, str]:
    """The module files a ConfigMap source holds, by relative path; refuses the first unsafe key, naming it."""
    for key in sorted(data):
        rule = config_map_key_refusal(key)
        if rule is not None:
            raise SourceError("spec.source.configMapRef.name",
                              f"ConfigMap {namespace}/{name} key {key!r} {rule}: rename the key")
    return {key.replace(CONFIG_MAP_SEPARATOR, "/"): value for key, value in data.items()}


def _write_files(root: Path, files: Mapping[str, str]) -> None:
    base = root.resolve()
    for name, content in files.items():
        target = root / name
        # The last line of defence whatever the source: nothing is written outside the workspace.
        if not target.resolve().is_relative_to(base):
            raise SourceError("spec.source", f"the file {name!r} would be written outside the source directory: "
                              "refusing the source")
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
    _write_files(root, config_map_files(namespace, name, data))
    return f"configmap@{short_digest(data, 16)}"


def _git(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float = GIT_TIMEOUT) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError("spec.source.git.url", f"git {args[0]} took longer than {timeout:.0f}s",
                          timed_out=True) from None
    if done.returncode != 0:
        raise SourceError("spec.source.git", f"git {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}",
                          detail=done.stderr)
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


# What a failed lookup tells the tenant: a category and a fixed message, never the remote's own words
# (an internal server's status line or error page would otherwise reach the deployment's conditions).
LOOKUP_MESSAGES = {
    "Timeout": f"the remote did not answer within {LS_REMOTE_TIMEOUT}s",
    "AuthenticationFailed": "the remote refused the credentials, or asks for some: check "
                            "spec.source.git.credentialsSecretRef",
    "RepositoryNotFound": "the remote has no such repository (or hides it from these credentials)",
    "RefNotFound": "the branch or tag does not exist in the repository: check spec.source.git.ref",
    "CredentialsUnreadable": "the credentials Secret has neither username and password nor identity",
    "RemoteUnreachable": "the remote could not be reached, or answered with an error",
}
_AUTH_SIGNS = ("authentication failed", "could not read username", "could not read password", "permission denied",
               "error: 401", "error: 403", "access denied", "host key verification failed")
_MISSING_SIGNS = ("repository not found", "not found", "does not appear to be a git repository", "error: 404",
                  "does not exist")


def lookup_category(error: SourceError) -> str:
    """The category of a failed `git ls-remote` (pure: from git's stderr, which is then dropped)."""
    if error.timed_out:
        return "Timeout"
    text = error.detail.lower()
    if any(sign in text for sign in _AUTH_SIGNS):
        return "AuthenticationFailed"
    if any(sign in text for sign in _MISSING_SIGNS):
        return "RepositoryNotFound"
    return "RemoteUnreachable"


def _failure(category: str) -> LookupFailure:
    return LookupFailure(category, LOOKUP_MESSAGES[category])


def remote_revision(api: ApiClient, namespace: str, git: Mapping[str, Any]) -> str:
    """The commit a branch, tag or HEAD names now (`git ls-remote`), without fetching anything.

    Failures raise `LookupFailure` (a category and a fixed message); git's own words go to the log only.
    """
    ref = git.get("ref") or {}
    if ref.get("commit"):
        return str(ref["commit"])
    target = git_target(git)
    with tempfile.TemporaryDirectory(prefix="git-ls-remote-") as home:
        try:
            env = git_environment(api, namespace, git, Path(home))
        except SourceError:
            raise _failure("CredentialsUnreadable") from None
        try:
            listing = _git(["ls-remote", "--", str(git["url"]), target, f"{target}^{{}}"], Path(home), env,
                           timeout=LS_REMOTE_TIMEOUT)
        except SourceError as exc:
            category = lookup_category(exc)
            logger.info("git ls-remote of %s in %s: %s (%s)", git.get("url"), namespace, category,
                        redact(exc.detail.strip()[-500:]))
            raise _failure(category) from None
    found = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    # An annotated tag: the commit it points to, not the tag object.
    revision = found.get(f"{target}^{{}}") or found.get(target)
    if not revision:
        raise _failure("RefNotFound")
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
