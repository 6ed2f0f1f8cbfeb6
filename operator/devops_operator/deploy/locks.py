"""Terraform state locks: who holds one, whether it is stale, and whether it may be released (pure).

The Kubernetes backend's Lease is the lock of record: its holderIdentity is the lock id and its lock-info
annotation says who took it (`runner@<pod>`: a pod's hostname is its name). A lock is stale when its
holder pod no longer exists; it is never released while that pod exists, whatever asks for it, because
a pod that still exists may still be writing state (an Exited pod is reported, and released once gone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from devops_operator.api.infradeployment import JobStep
from devops_operator.terraform.jobs import job_name


class HolderState(StrEnum):
    RUNNING = "Running"
    EXITED = "Exited"  # its containers terminated; the pod object remains
    GONE = "Gone"  # no pod: nothing can release the lock but us
    # Not one of this deployment's runner pods (a person's `terraform apply`, another tool): never stale,
    # never released here; `terraform force-unlock` is for whoever knows it is dead.
    FOREIGN = "Foreign"


def is_runner_pod(pod: str | None, deployment: str) -> bool:
    """Whether `pod` is named as a pod of one of `deployment`'s runner Jobs (`<job>-<5 characters>`)."""
    if not pod:
        return False
    for step in (str(s) for s in JobStep):
        prefix = job_name(deployment, step, "0" * 12)[:-12]
        rest = pod[len(prefix):] if pod.startswith(prefix) else ""
        if re.fullmatch(r"[0-9a-f]{12}-[0-9a-z]{5}", rest):
            return True
    return False


def holder_pod(who: str | None) -> str | None:
    """The pod named in Terraform's lock info `Who` (user@host)."""
    if not who or "@" not in who:
        return None
    return who.rsplit("@", 1)[1] or None


def holder_state(pod: Mapping[str, Any] | None, *, ours: bool = True) -> HolderState:
    """What holds the lock: `ours` when its `Who` names one of the deployment's runner pods."""
    if not ours:
        return HolderState.FOREIGN
    if pod is None:
        return HolderState.GONE
    phase = (pod.get("status") or {}).get("phase")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if phase in ("Succeeded", "Failed") or (statuses and all("terminated" in (s.get("state") or {})
                                                              for s in statuses)):
        return HolderState.EXITED
    return HolderState.RUNNING


@dataclass(frozen=True)
class ReleaseDecision:
    release: bool
    how: str | None  # "auto" or "annotation"
    refused: str | None  # why a request was refused (status.lock.releaseRefused, an Event)


def decide_release(*, lock_id: str, state: HolderState, pod: str | None, auto_release: bool,
                   requested: str | None) -> ReleaseDecision:
    """Release only a lock whose holder pod is gone: by policy, or on a request naming exactly this lock."""
    if requested is not None and requested != lock_id:
        return ReleaseDecision(False, None, f"the release-lock annotation names lock {requested!r}, but the lock "
                               f"held is {lock_id!r}: nothing was released; set it to the id in status.lock.id")
    if state == HolderState.FOREIGN:
        if requested is not None:
            return ReleaseDecision(False, None, f"lock {lock_id} is held by {pod or 'someone'} outside this "
                                   "deployment's runner Jobs: the operator cannot tell whether it is alive, so it "
                                   "never releases it; if you know it is dead, `terraform force-unlock` it")
        return ReleaseDecision(False, None, None)
    if state != HolderState.GONE:
        if requested is not None:
            return ReleaseDecision(False, None, f"lock {lock_id} is held by pod {pod}, which exists ({state}): it is "
                                   "never released while its holder pod exists; the request stays pending and the "
                                   "lock is released once the pod is gone (delete it once you know it is not "
                                   "writing state)")
        return ReleaseDecision(False, None, None)
    if requested is not None:
        return ReleaseDecision(True, "annotation", None)
    if auto_release:
        return ReleaseDecision(True, "auto", None)
    return ReleaseDecision(False, None, None)
