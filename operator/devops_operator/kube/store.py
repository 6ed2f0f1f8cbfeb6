"""JSON documents kept in ConfigMaps, updated with optimistic concurrency.

The registry, the issue log, the remediation log and the IAM audit trail are all documents
that several workers (and several operator replicas) update concurrently. Each update is
read → mutate → replace-with-the-read-resourceVersion; a 409 Conflict means someone else
wrote in between, so the update is re-read and the mutation re-applied: nothing is lost and
nothing is overwritten blindly. A document that would not fit is rotated by the caller's
policy or refused before anything is written: a truncated document is never stored.
"""

from __future__ import annotations

import collections
import copy
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.owners import MANAGED_BY, MANAGED_BY_LABEL, adopt

# ConfigMaps are limited to 1 MiB of data; keep room for metadata, escaping and other keys.
DEFAULT_MAX_BYTES = 900_000
DEFAULT_MAX_ATTEMPTS = 16
# 429 and 503 are refusals before anything is written (API priority and fairness, an API server
# restarting); 500/504 may come after the write happened, and retrying those could append twice.
RETRIED_STATUSES = frozenset({409, 429, 503})
# A read refused the same way is retried too; anything else it answers is the caller's to see.
RETRIED_READ_STATUSES = frozenset({429, 503})
# Full-jitter exponential backoff between conflicting attempts (seconds).
BACKOFF_BASE = 0.01
BACKOFF_CAP = 0.5

Mutate = Callable[[Any], Any]
Rotate = Callable[[Any, int], Any]
Render = Callable[[Any], Mapping[str, str]]


class StoreError(Exception):
    """A document could not be read or written."""


class DocumentTooLarge(StoreError):
    """The document (after any rotation) does not fit; nothing was written."""

    def __init__(self, namespace: str, name: str, size: int, limit: int) -> None:
        super().__init__(
            f"ConfigMap {namespace}/{name} would be {size} bytes, over the {limit}-byte limit "
            f"(even after rotation); nothing was written"
        )
        self.namespace = namespace
        self.name = name
        self.size = size
        self.limit = limit


class DocumentConflict(StoreError):
    """Every attempt lost the race against concurrent writers (or was refused: 429/503)."""


class TooManyEntries(StoreError):
    """One append would exceed the log's bound on its own; nothing was written."""


def _dumps(value: Any) -> str:
    """Compact, deterministic JSON with UTF-8 kept as is (ensure_ascii would inflate the size)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def _size(obj: Mapping[str, Any]) -> int:
    # The whole serialised object, metadata included: above what the API server counts against the
    # 1 MiB limit (data keys and values), so a document that passes here is never refused there.
    return len(_dumps(obj).encode("utf-8"))


class ConfigMapDocument:
    """One JSON document under `key` in one ConfigMap, plus optional rendered keys."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        name: str,
        key: str = "document.json",
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        render: Render | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.key = key
        self.owner = owner
        self.labels = dict(labels or {})
        self.max_bytes = max_bytes
        self.max_attempts = max_attempts
        self.render = render
        self._stats_lock = threading.Lock()
        self._retried: collections.Counter[int] = collections.Counter()

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"

    @property
    def conflicts(self) -> int:
        """How many writes were retried because another writer got there first (409s)."""
        with self._stats_lock:
            return self._retried[409]

    @property
    def retried(self) -> dict[int, int]:
        """Attempts retried so far, by the HTTP status that made them retry (409, 429, 503, 404)."""
        with self._stats_lock:
            return dict(self._retried)

    def read(self) -> Any | None:
        """The stored document, or None if the ConfigMap or its key does not exist."""
        return self._decode(self._get())

    def update(self, mutate: Mutate, *, rotate: Rotate | None = None) -> Any:
        """Apply `mutate` to (a copy of) the current document and store the result atomically.

        `mutate` may run several times (once per attempt), so it must be a pure function of
        the document it is given. Returns the document as stored.
        """
        for attempt in range(self.max_attempts):
            try:
                current = self._get()
            except ApiException as exc:
                if exc.status not in RETRIED_READ_STATUSES:
                    raise
                self._retry(exc.status, attempt)
                continue
            # Decoding yields a fresh object on every attempt: `mutate` always gets its own copy.
            document = mutate(self._decode(current))
            if document is None:
                # Almost always a mutate that edited in place and forgot to return: never wipe.
                raise StoreError(f"ConfigMap {self.namespace}/{self.name}: mutate returned None")
            body, document = self._fit(current, document, rotate)
            if current is not None and body == current:
                return document  # nothing changed: no write, no new resourceVersion
            try:
                self._write(current, body)
            except ApiException as exc:
                if not self._lost_race(exc, current):
                    raise
                self._retry(exc.status, attempt)
                continue
            return document
        raise DocumentConflict(
            f"ConfigMap {self.namespace}/{self.name}: gave up after {self.max_attempts} attempts "
            f"(retried: {self._describe_retries()}); nothing was written"
        )

    def _get(self) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = call_json(self.api, "GET", self.path, timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def _decode(self, configmap: Mapping[str, Any] | None) -> Any | None:
        text = ((configmap or {}).get("data") or {}).get(self.key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # Refuse to mutate (and so overwrite) a document we cannot read.
            raise StoreError(
                f"ConfigMap {self.namespace}/{self.name} key {self.key!r} is not valid JSON: {exc}"
            ) from exc

    def _fit(
        self, current: Mapping[str, Any] | None, document: Any, rotate: Rotate | None
    ) -> tuple[dict[str, Any], Any]:
        """The ConfigMap to write, rotating the document until it fits (or refusing)."""
        body = self._body(current, document)
        size = _size(body)
        while size > self.max_bytes and rotate is not None:
            document = rotate(document, size - self.max_bytes)
            smaller = self._body(current, document)
            smaller_size = _size(smaller)
            if smaller_size >= size:
                break  # the rotation made no progress: stop instead of looping forever
            body, size = smaller, smaller_size
        if size > self.max_bytes:
            raise DocumentTooLarge(self.namespace, self.name, size, self.max_bytes)
        return body, document

    def _body(self, current: Mapping[str, Any] | None, document: Any) -> dict[str, Any]:
        """The full ConfigMap: the read object (keeping its resourceVersion) with our keys set."""
        if current is None:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace},
            }
        else:
            body = copy.deepcopy(dict(current))
        data = dict(body.get("data") or {})
        data[self.key] = _dumps(document)
        if self.render is not None:
            data.update(self.render(document))
        body["data"] = data
        metadata = body.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **self.labels, MANAGED_BY_LABEL: MANAGED_BY}
        return adopt(body, self.owner) if self.owner is not None else body

    def _write(self, current: Mapping[str, Any] | None, body: dict[str, Any]) -> None:
        if current is None:
            collection = f"/api/v1/namespaces/{self.namespace}/configmaps"
            call_json(self.api, "POST", collection, body=body, timeout=REQUEST_TIMEOUT)
        else:
            call_json(self.api, "PUT", self.path, body=body, timeout=REQUEST_TIMEOUT)

    @staticmethod
    def _lost_race(exc: ApiException, current: Mapping[str, Any] | None) -> bool:
        """Worth another read-modify-write: 409 (stale resourceVersion on PUT, or created first by
        someone else on POST), 404 on PUT (deleted meanwhile: re-reading creates it again), and
        429/503 (the API server refused to serve it now)."""
        return exc.status in RETRIED_STATUSES or (exc.status == 404 and current is not None)

    def _retry(self, status: int | None, attempt: int) -> None:
        with self._stats_lock:
            self._retried[status or 0] += 1
        if attempt + 1 < self.max_attempts:  # no pause after the last attempt: there is no next one
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))

    def _describe_retries(self) -> str:
        with self._stats_lock:
            return ", ".join(f"{count}x {status}" for status, count in sorted(self._retried.items()))


class AppendLog:
    """A bounded log of entries in a ConfigMap: newest kept, oldest rotated out and counted.

    The document is `{"entries": [...oldest..newest], "rotated": <entries dropped so far>}`.
    Entries are dropped, oldest first, when there are more than `max_entries` or when the
    ConfigMap would exceed its byte limit. The entries of the append being made are never
    dropped: if they cannot fit, the append is refused (TooManyEntries, DocumentTooLarge) and
    nothing is written.
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        name: str,
        key: str = "log.json",
        *,
        max_entries: int = 1000,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        render: Render | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.document = ConfigMapDocument(
            api,
            namespace,
            name,
            key,
            owner=owner,
            labels=labels,
            max_bytes=max_bytes,
            max_attempts=max_attempts,
            render=render,
        )

    def read(self) -> dict[str, Any]:
        return _normalised(self.document.read())

    def entries(self) -> list[Any]:
        return list(self.read()["entries"])

    def append(self, entry: Any, *, unique: str | None = None) -> dict[str, Any]:
        """Append one entry (concurrent appends from any number of writers are all kept)."""
        return self.extend([entry], unique=unique)

    def extend(self, entries: list[Any], *, unique: str | None = None) -> dict[str, Any]:
        """Append several entries in one write; older entries rotate out to make room for them.

        With `unique` (a key of the entries), an entry whose value under it is already in the log is not
        appended again: a writer that retries after a crash cannot log the same thing twice.
        """
        if len(entries) > self.max_entries:
            raise TooManyEntries(
                f"ConfigMap {self.document.namespace}/{self.document.name}: {len(entries)} entries in one "
                f"append exceed the log's bound of {self.max_entries} (max_entries); append them in smaller "
                f"batches or raise the bound; nothing was written"
            )
        if not entries:
            return self.read()
        keep = len(entries)

        def mutate(document: Any) -> dict[str, Any]:
            log = _normalised(document)
            new = entries
            if unique is not None:
                present = {e.get(unique) for e in log["entries"] if isinstance(e, dict)}
                new = [e for e in entries if not (isinstance(e, dict) and e.get(unique) in present)]
            log["entries"].extend(copy.deepcopy(new))
            return _drop_oldest(log, len(log["entries"]) - self.max_entries, len(new))

        def rotate(document: Any, overflow: int) -> dict[str, Any]:
            return _rotate_for_bytes(document, overflow, keep)

        result: dict[str, Any] = self.document.update(mutate, rotate=rotate)
        return result


def _normalised(document: Any) -> dict[str, Any]:
    if document is None:
        return {"entries": [], "rotated": 0}
    if not isinstance(document, dict) or not isinstance(document.get("entries", []), list):
        # Someone else's data under our key: refuse rather than replace it with an empty log.
        raise StoreError(f"not an append log (expected {{'entries': [...]}}, found {type(document).__name__})")
    return {**document, "entries": list(document.get("entries") or []), "rotated": document.get("rotated", 0)}


def _drop_oldest(log: dict[str, Any], count: int, keep: int) -> dict[str, Any]:
    # Never the newest `keep` (what is being appended): dropping those would lose them silently.
    count = min(count, len(log["entries"]) - keep)
    if count > 0:
        log["entries"] = log["entries"][count:]
        log["rotated"] = int(log.get("rotated") or 0) + count
    return log


def _rotate_for_bytes(document: Any, overflow: int, keep: int) -> dict[str, Any]:
    """Drop the oldest entries whose serialised size covers the overflow, never the newest `keep`."""
    log = _normalised(document)
    freed, count = 0, 0
    for entry in log["entries"][: len(log["entries"]) - keep]:
        if freed >= overflow and count:
            break
        freed += len(_dumps(entry).encode("utf-8")) + 1  # + the separating comma
        count += 1
    return _drop_oldest(log, count, keep)
