"""Plan artefacts in Secrets: gzip-compressed, chunked past 1 MiB, with the digest they must match (pure + I/O).

A saved plan file is what gets applied, so it travels through the Kubernetes API (never through pod logs
or a shared volume): the plan Job writes it, the apply Job reads it back and refuses it unless its sha256
is the one recorded when it was planned.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devops_operator.kube.client import REQUEST_TIMEOUT, call_json
from devops_operator.kube.owners import adopt

CHUNK_BYTES = 1024 * 1024  # Secrets hold at most 1 MiB of data
PAYLOAD_KEY = "payload.json.gz"
DIGEST_ANNOTATION = "devops.fractary.io/payload-sha256"
CHUNKS_ANNOTATION = "devops.fractary.io/chunks"


class ArtifactError(Exception):
    """An artefact is missing, incomplete or does not match its digest."""


def encode(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """The compressed payload of several files and its sha256 (of the compressed bytes)."""
    payload = json.dumps({name: base64.b64encode(data).decode() for name, data in sorted(files.items())}).encode()
    compressed = gzip.compress(payload, mtime=0)
    return compressed, hashlib.sha256(compressed).hexdigest()


def decode(compressed: bytes, expected_sha256: str) -> dict[str, bytes]:
    actual = hashlib.sha256(compressed).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(f"the artefact's sha256 is {actual}, not the recorded {expected_sha256}: refusing it")
    files = json.loads(gzip.decompress(compressed))
    return {name: base64.b64decode(data) for name, data in files.items()}


def chunk_names(name: str, count: int) -> list[str]:
    return [name] + [f"{name}-{i}" for i in range(1, count)]


def write(api: ApiClient, namespace: str, name: str, files: Mapping[str, bytes], *,
          owner: Mapping[str, Any] | None, labels: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Store the files as one or more Secrets; returns (sha256, number of Secrets)."""
    compressed, sha = encode(files)
    chunks = [compressed[i:i + CHUNK_BYTES] for i in range(0, len(compressed), CHUNK_BYTES)] or [b""]
    for index, (secret_name, chunk) in enumerate(zip(chunk_names(name, len(chunks)), chunks, strict=True)):
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name, "namespace": namespace, "labels": dict(labels or {}),
                         "annotations": {DIGEST_ANNOTATION: sha, CHUNKS_ANNOTATION: f"{index + 1}/{len(chunks)}"}},
            "data": {PAYLOAD_KEY: base64.b64encode(chunk).decode()},
        }
        if owner is not None:
            body = adopt(body, owner)
        path = f"/api/v1/namespaces/{namespace}/secrets"
        try:
            call_json(api, "POST", path, body=body, timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
            try:
                call_json(api, "PUT", f"{path}/{secret_name}", body=body, timeout=REQUEST_TIMEOUT)
            except ApiException as refused:
                if refused.status != 403:
                    raise
                # A plan Job's Role may create artefacts but name none (their names hold the plan id): a
                # retried pod of the same plan finds its predecessor's and may not replace it.
                raise ArtifactError(f"the plan artefact Secret {namespace}/{secret_name} exists already and this "
                                    "Job may not replace it (its Role names no artefact): re-plan") from None
    return sha, len(chunks)


def read(api: ApiClient, namespace: str, name: str, expected_sha256: str) -> dict[str, bytes]:
    """The files stored under `name`, verified against the sha256 the plan recorded."""
    parts: list[bytes] = []
    total = 1
    index = 0
    while index < total:
        secret_name = chunk_names(name, total)[index] if index else name
        try:
            secret = call_json(api, "GET", f"/api/v1/namespaces/{namespace}/secrets/{secret_name}",
                               timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                raise ArtifactError(f"the plan artefact Secret {namespace}/{secret_name} is missing: re-plan") from None
            raise
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        total = int(str(annotations.get(CHUNKS_ANNOTATION, "1/1")).split("/")[1])
        parts.append(base64.b64decode((secret.get("data") or {}).get(PAYLOAD_KEY) or ""))
        index += 1
    return decode(b"".join(parts), expected_sha256)
