"""What kube-apiserver fills in for built-in kinds on write (defaulters and create strategies).

A table by kind, so each kind's rules sit together: a Secret's ``stringData`` is merged into
``data`` (and never stored), a Job gets its completion defaults and its selector, a Namespace
starts Active with its name label.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from devops_operator.sandbox.apiserver.catalog import ServedResource

Defaulter = Callable[[dict[str, Any], Mapping[str, Any] | None], dict[str, Any]]


def _secret(obj: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, Mapping) and string_data:
        data = dict(obj.get("data") or {})
        data.update({key: base64.b64encode(str(value).encode()).decode() for key, value in string_data.items()})
        obj["data"] = data
    obj.setdefault("type", "Opaque")
    return obj


def _namespace(obj: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    if previous is None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    return obj


_JOB_SPEC_DEFAULTS = {"backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
                      "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False}


def _job(obj: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    for key, value in _JOB_SPEC_DEFAULTS.items():
        spec.setdefault(key, value)
    if previous is None and not spec.get("manualSelector"):
        # The job controller finds its pods by the job's uid: the create strategy labels and selects them.
        uid, name = obj["metadata"].get("uid", ""), obj["metadata"]["name"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    return obj


BUILTIN_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("batch", "Job"): _job,
}


def apply_builtin_defaults(
    served: ServedResource, obj: dict[str, Any], previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    if served.custom is not None:
        return obj
    defaulter = BUILTIN_DEFAULTERS.get((served.group, served.kind))
    return defaulter(obj, previous) if defaulter else obj
