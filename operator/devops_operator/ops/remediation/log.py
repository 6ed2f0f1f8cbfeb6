"""The remediation log: one ConfigMap per project, every remediation appended once when it ends.

Built on the store's `AppendLog` (optimistic concurrency: concurrent writers lose nothing; bounded:
the oldest entries rotate out and are counted). Entries are keyed by the Remediation's uid, so an
operator that restarts after appending never appends the same remediation twice. The ConfigMap lives
in the project's namespace, owned by the DevOpsProject (deleted with it), with `log.json` and a
Markdown rendering `REMEDIATIONS.md`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient

from devops_operator.kube.redaction import redact
from devops_operator.kube.store import AppendLog

LOG_KEY = "log.json"
MARKDOWN_KEY = "REMEDIATIONS.md"
MAX_ENTRIES = 500
MARKDOWN_ROWS = 100
UNIQUE = "uid"


def log_name(project: str) -> str:
    return f"{project}-remediation-log"


def render(document: Mapping[str, Any]) -> dict[str, str]:
    entries = list(document.get("entries") or [])
    lines = ["# Remediation log", "",
             f"{len(entries)} remediation(s) here, {document.get('rotated', 0)} older rotated out; newest first.", "",
             "| completed | environment | remediation | action | target | outcome | approved by | reason |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in reversed(entries[-MARKDOWN_ROWS:]):
        cells = [entry.get("completedAt"), entry.get("environment"), f"{entry.get('namespace')}/{entry.get('name')}",
                 entry.get("action"), entry.get("target"), entry.get("outcome"), entry.get("approvedBy") or "",
                 entry.get("reason")]
        lines.append("| " + " | ".join(str(c or "").replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return {MARKDOWN_KEY: "\n".join(lines) + "\n"}


def remediation_log(api: ApiClient, namespace: str, project: str, owner: Mapping[str, Any] | None) -> AppendLog:
    return AppendLog(api, namespace, log_name(project), LOG_KEY, max_entries=MAX_ENTRIES, owner=owner,
                     labels={"devops.fractary.io/project": project, "devops.fractary.io/log": "remediation"},
                     render=render)


def append(log: AppendLog, entry: Mapping[str, Any]) -> None:
    clean = {key: redact(value) if isinstance(value, str) else value for key, value in entry.items()}
    log.append(clean, unique=UNIQUE)


def read_entries(api: ApiClient, namespace: str, project: str) -> list[dict[str, Any]]:
    """The log's entries, oldest first (empty when there is no log yet)."""
    return [e for e in remediation_log(api, namespace, project, None).entries() if isinstance(e, dict)]
