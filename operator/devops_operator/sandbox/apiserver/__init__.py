"""A Kubernetes API server emulator with real API-server semantics, built on kmock.

* :class:`ApiServerEmulator` — the in-process server (a ``kmock.KubernetesEmulator``).
* :class:`EmulatedKubernetes` — runs it on a TCP port in a background thread.
"""

from devops_operator.sandbox.apiserver.errors import ApiError, FieldError
from devops_operator.sandbox.apiserver.runner import EmulatedKubernetes
from devops_operator.sandbox.apiserver.server import ApiServerEmulator

__all__ = ["ApiError", "ApiServerEmulator", "EmulatedKubernetes", "FieldError"]
