"""Run the operator in-process on a thread of its own (tests and the sandbox).

kopf runs in its own event loop, so synchronous callers (the sandbox CLI, tests using the
sync Kubernetes client) never block it, and it stops cleanly through kopf's stop flag.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

import kopf

from devops_operator import handlers  # noqa: F401  (registers the handlers and the start-up hook)
from devops_operator.config import OperatorConfig


class OperatorThread:
    def __init__(self, config: OperatorConfig, *, namespaces: list[str] | None = None) -> None:
        self.config = config
        self.namespaces = namespaces or []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name="devops-operator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the operator did not become ready within {timeout}s: {self.error!r}")

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=not self.namespaces,
                    namespaces=self.namespaces,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    liveness_endpoint=self.config.liveness_endpoint or None,
                    memo=kopf.Memo(config=self.config),
                )
            )
        except BaseException as exc:  # surfaced to the starter through start()'s message
            self.error = exc
            self._ready.set()
            raise

    def __enter__(self) -> OperatorThread:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
