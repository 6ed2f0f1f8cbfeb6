"""Table columns of built-in kinds, as kube-apiserver 1.33 prints them for ``kubectl get``.

The server fills every column (``Wide``); kubectl hides those with a priority above 0 unless asked
for ``-o wide``. Ages are strings here (the server formats them), unlike CRD ``date`` columns.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devops_operator.sandbox.apiserver.metadata import parse_timestamp
from devops_operator.sandbox.apiserver.tables import human_age

Cells = Callable[[Mapping[str, Any], datetime.datetime], list[Any]]


@dataclasses.dataclass(frozen=True)
class Printer:
    columns: tuple[dict[str, Any], ...]
    cells: Cells


def _column(name: str, description: str, *, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


NAME = _column("Name", "Name must be unique within a namespace.", fmt="name")
AGE = _column("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.")


def _since(value: Any, now: datetime.datetime) -> str:
    """translateTimestampSince: a human duration, or <unknown> for no timestamp."""
    moment = parse_timestamp(value)
    return "<unknown>" if moment is None else human_age((now - moment).total_seconds())


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _age(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


# --- Event -----------------------------------------------------------------------------------


def _event_cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    first = _since(obj.get("firstTimestamp"), now)
    if parse_timestamp(obj.get("firstTimestamp")) is None:
        first = _since(obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if parse_timestamp(obj.get("lastTimestamp")) else first
    count = obj.get("count") or 1
    series = obj.get("series")
    if isinstance(series, Mapping):
        last, count = _since(series.get("lastObservedTime"), now), series.get("count") or count
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        str(obj.get("message") or "").strip(),
        first,
        int(count),
        _meta(obj).get("name", ""),
    ]


EVENT = Printer(
    (
        _column("Last Seen", "Time when the latest occurrence of the event was recorded."),
        _column("Type", "Type of this event (Normal, Warning)."),
        _column("Reason", "Short, machine understandable string that gives the reason for the transition."),
        _column("Object", "The object that this event is about."),
        _column("Subobject", "The part of the object the event is about (e.g. a container).", priority=1),
        _column("Source", "The component reporting this event.", priority=1),
        _column("Message", "A human-readable description of the status of this operation."),
        _column("First Seen", "The time at which the event was first recorded.", priority=1),
        _column("Count", "The number of times this event has occurred.", priority=1),
        _column("Name", "Name must be unique within a namespace.", priority=1, fmt="name"),
    ),
    _event_cells,
)

# --- Secret, ConfigMap, Namespace ------------------------------------------------------------

SECRET = Printer(
    (NAME, _column("Type", "Used to facilitate programmatic handling of secret data."),
     _column("Data", "The number of keys in the secret's data."), AGE),
    lambda obj, now: [_meta(obj).get("name"), obj.get("type", ""), len(obj.get("data") or {}), _age(obj, now)],
)
CONFIG_MAP = Printer(
    (NAME, _column("Data", "The number of keys in data and binaryData."), AGE),
    lambda obj, now: [
        _meta(obj).get("name"),
        len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
        _age(obj, now),
    ],
)
NAMESPACE = Printer(
    (NAME, _column("Status", "The current lifecycle phase of the namespace."), AGE),
    lambda obj, now: [_meta(obj).get("name"), (obj.get("status") or {}).get("phase", ""), _age(obj, now)],
)

# --- Job -------------------------------------------------------------------------------------


def _has_condition(conditions: Sequence[Any], kind: str) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == kind and c.get("status") == "True" for c in conditions)


_JOB_STATUS_BY_CONDITION = (("Complete", "Complete"), ("Failed", "Failed"))
_JOB_LATER_CONDITIONS = (("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"),
                         ("SuccessCriteriaMet", "SuccessCriteriaMet"))


def _job_status(obj: Mapping[str, Any]) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    for condition, shown in _JOB_STATUS_BY_CONDITION:
        if _has_condition(conditions, condition):
            return shown
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    for condition, shown in _JOB_LATER_CONDITIONS:
        if _has_condition(conditions, condition):
            return shown
    return "Running"


def _job_completions(obj: Mapping[str, Any]) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = int(spec.get("parallelism") or 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    status = obj.get("status") or {}
    started, completed = parse_timestamp(status.get("startTime")), parse_timestamp(status.get("completionTime"))
    if started is None:
        return ""
    return human_age(((completed or now) - started).total_seconds())


def _containers(template: Mapping[str, Any]) -> tuple[str, str]:
    containers = ((template.get("spec") or {}).get("containers")) or []
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, Mapping))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, Mapping))
    return names, images


def _selector(selector: Any) -> str:
    """metav1.FormatLabelSelector for matchLabels (expressions shown as key op values)."""
    if not isinstance(selector, Mapping):
        return "<none>"
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        values = ",".join(expression.get("values") or [])
        terms.append(f"{expression.get('key')} {str(expression.get('operator', '')).lower()} ({values})")
    return ",".join(terms) or "<none>"


def _job_cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    names, images = _containers(spec.get("template") or {})
    return [_meta(obj).get("name"), _job_status(obj), _job_completions(obj), _job_duration(obj, now),
            _age(obj, now), names, images, _selector(spec.get("selector"))]


JOB = Printer(
    (
        NAME,
        _column("Status", "Status of the job."),
        _column("Completions", "The number of pods which reached phase Succeeded."),
        _column("Duration", "Time required to complete the job."),
        AGE,
        _column("Containers", "Names of each container in the template.", priority=1),
        _column("Images", "Images referenced by each container in the template.", priority=1),
        _column("Selector", "A label query over pods that should match the pod count.", priority=1),
    ),
    _job_cells,
)

# --- Pod -------------------------------------------------------------------------------------


def _container_reason(status: Mapping[str, Any]) -> str | None:
    state = status.get("state") or {}
    waiting, terminated = state.get("waiting") or {}, state.get("terminated")
    if waiting.get("reason"):
        return str(waiting["reason"])
    if isinstance(terminated, Mapping):
        if terminated.get("reason"):
            return str(terminated["reason"])
        if terminated.get("signal"):
            return f"Signal:{terminated['signal']}"
        return f"ExitCode:{terminated.get('exitCode', 0)}"
    return None


def _init_reason(pod_status: Mapping[str, Any], init_count: int) -> str | None:
    for index, status in enumerate(pod_status.get("initContainerStatuses") or []):
        state = status.get("state") or {}
        terminated = state.get("terminated")
        if isinstance(terminated, Mapping) and terminated.get("exitCode") == 0:
            continue
        if isinstance(terminated, Mapping):
            return f"Init:{_container_reason(status)}"
        waiting = state.get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}"
        return f"Init:{index}/{init_count}"
    return None


def _pod_status(obj: Mapping[str, Any]) -> tuple[str, int, int, int, str | None]:
    """The STATUS column (printPod's main path), ready and total containers, restarts, last restart."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "")
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    last_restart: str | None = None
    init = _init_reason(status, len(spec.get("initContainers") or []))
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (last_restart is None or str(finished) > last_restart):
            last_restart = str(finished)
        container_reason = _container_reason(container) if init is None else None
        if container_reason:
            reason = container_reason
        elif (container.get("state") or {}).get("running") is not None and container.get("ready"):
            running = True
            ready += 1
    if init is not None:
        reason = init
    elif reason == "Completed" and running:
        conditions = status.get("conditions") or []
        reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"
    if _meta(obj).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    reason, ready, total, restarts, last_restart = _pod_status(obj)
    restarts_text = f"{restarts} ({_since(last_restart, now)} ago)" if last_restart else str(restarts)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or [] if isinstance(entry, Mapping)]
    gates = spec.get("readinessGates") or []
    gate_types = {gate.get("conditionType") for gate in gates if isinstance(gate, Mapping)}
    gates_ready = sum(
        1 for c in status.get("conditions") or [] if c.get("type") in gate_types and c.get("status") == "True"
    )
    return [
        _meta(obj).get("name"),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(obj, now),
        (ips[0] if ips else status.get("podIP")) or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{gates_ready}/{len(gates)}" if gates else "<none>",
    ]


POD = Printer(
    (
        NAME,
        _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _column("Status", "The aggregate status of the containers in this pod."),
        _column("Restarts", "The number of times the containers in this pod have been restarted and when the "
                "last container in this pod has restarted."),
        AGE,
        _column("IP", "IP address allocated to the pod.", priority=1),
        _column("Node", "Name of the Node this pod is assigned to.", priority=1),
        _column("Nominated Node", "Name of the node the scheduler nominated for this pod.", priority=1),
        _column("Readiness Gates", "Pod readiness gates that are True.", priority=1),
    ),
    _pod_cells,
)

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Event"): EVENT,
    ("", "Secret"): SECRET,
    ("", "ConfigMap"): CONFIG_MAP,
    ("", "Namespace"): NAMESPACE,
    ("batch", "Job"): JOB,
    ("", "Pod"): POD,
}
