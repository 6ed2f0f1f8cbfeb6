"""Kinds whose API is installed but whose controller has not landed: their status says so.

An object of such a kind is kept as written and nothing is done with it (no AWS call, no Job). Rather than
leave it silent, which `kubectl get`, kstatus and Argo CD would read as "not looked at yet" forever, the
operator marks it Stalled with reason `NotReconciledYet` and a message that says exactly that. A kind
leaves `UNRECONCILED_KINDS` when its controller lands; `tests/test_docs.py` holds the README's kind table
to this list and to the registered controllers.
"""

from __future__ import annotations

from typing import Any

import kopf

from devops_operator.api import costaudit, permissionrequest
from devops_operator.api.common import API_GROUP, API_VERSION, KindInfo
from devops_operator.controllers.status import Outcome, write_outcome

NOT_RECONCILED = "NotReconciledYet"
UNRECONCILED_KINDS: tuple[KindInfo, ...] = (costaudit.KIND, permissionrequest.KIND)


def outcome(kind: str) -> Outcome:
    """What an object of a kind without a controller is told (pure)."""
    return Outcome.stalled(
        NOT_RECONCILED,
        f"{kind} objects are not reconciled by this version of devops-operator yet: the object is kept as "
        "written and nothing is done with it (no AWS call, no Job); see the README's kind table for what is "
        "reconciled",
    )


def _register(info: KindInfo) -> None:
    @kopf.on.resume(API_GROUP, API_VERSION, info.plural)
    @kopf.on.create(API_GROUP, API_VERSION, info.plural)
    @kopf.on.update(API_GROUP, API_VERSION, info.plural, field="spec")
    def say_not_reconciled(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        status = body.get("status") or {}
        generation = (body.get("metadata") or {}).get("generation")
        if status.get("observedGeneration") == generation and status.get("phase") == "Stalled":
            return  # already said for this generation: nothing to write
        write_outcome(info.kind, body, patch, outcome(info.kind))


for _info in UNRECONCILED_KINDS:
    _register(_info)
