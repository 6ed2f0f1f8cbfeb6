"""Remediation controller: hands every change (and every wake-up) to `ops/remediation/service.advance`.

Thin on purpose: the service reads the object fresh, decides the next step from its status, records
its intent before any AWS call and writes status itself (so what it is about to do is stored before it
does it). This module only schedules when to look again (`Wakeups`: the verification delay, the next
check, an approval's expiry, a project that is not Ready yet) and lets kopf retry what failed unexpectedly.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from devops_operator import metrics
from devops_operator.api.common import API_GROUP, API_VERSION
from devops_operator.api.remediation import KIND
from devops_operator.controllers.status import retry_delay
from devops_operator.controllers.wakeups import Wakeups
from devops_operator.kube.redaction import redact
from devops_operator.ops.remediation import service
from devops_operator.runtime import Runtime

logger = logging.getLogger(__name__)


def step(runtime: Runtime, wakeups: Wakeups | None, namespace: str, name: str) -> None:
    with metrics.reconcile_timer(KIND.kind):
        wake = service.advance(runtime, namespace, name)
    if wakeups is None:
        return
    if wake is None:
        wakeups.cancel(KIND.kind, namespace, name)
    else:
        wakeups.schedule(KIND.kind, namespace, name, wake)


@kopf.on.resume(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.create(API_GROUP, API_VERSION, KIND.plural)
@kopf.on.update(API_GROUP, API_VERSION, KIND.plural)
def reconcile_remediation(name: str, namespace: str | None, memo: kopf.Memo, retry: int, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    try:
        step(runtime, memo.get("wakeups"), namespace or "", name)
    except Exception as exc:  # the API server refused a read or write, or a bug: kopf backs off and retries
        config = runtime.config
        message = redact(f"{type(exc).__name__}: {exc}")
        raise kopf.TemporaryError(message, delay=retry_delay(retry, base=config.retry_base_seconds,
                                                             cap=config.retry_cap_seconds)) from None


@kopf.on.event(API_GROUP, API_VERSION, KIND.plural, when=lambda type, **_: type == "DELETED")
def forget_remediation(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups | None = memo.get("wakeups")
    if wakeups is not None:
        wakeups.cancel(KIND.kind, namespace or "", name)
    service.forget(namespace or "", name)
    metrics.forget_resource(KIND.kind, namespace or "", name)
