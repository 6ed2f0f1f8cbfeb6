"""Run the emulated API server on a real TCP port in a background thread, for synchronous callers.

The sandbox CLI, tests that use the synchronous ``kubernetes`` client, kubectl, and kopf running
in its own thread all talk to it over HTTP. It uses a plain aiohttp server rather than kmock's
``Server``: that one also patches aiohttp's DNS resolution process-wide, which other threads'
clients (kopf's) must not be subjected to.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import kubernetes.client
import yaml

from devops_operator.kube.client import new_api_client
from devops_operator.sandbox.apiserver.limits import MAX_REQUEST_BODY_BYTES
from devops_operator.sandbox.apiserver.server import ApiServerEmulator

_T = TypeVar("_T")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_SHUTDOWN_GRACE = 1.0  # seconds open watch streams get before the server cuts them at stop()
_INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class EmulatedKubernetes:
    """An :class:`ApiServerEmulator` served on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._emulator: ApiServerEmulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("The emulated Kubernetes API is already started.")
        self._thread = threading.Thread(target=self._run_loop, name="emulated-kubernetes", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise RuntimeError("The emulated Kubernetes API did not start in time.")
        if self._startup_error is not None:
            raise RuntimeError("The emulated Kubernetes API failed to start.") from self._startup_error

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._thread.is_alive() and self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(_STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run_loop(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start() rather than lost in the thread
            self._startup_error = error
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        emulator = ApiServerEmulator()
        emulator.resources.load_bundled()  # kopf and kubectl need core & CRD resources in discovery
        for namespace in _INITIAL_NAMESPACES:
            emulator.apply_object("v1/namespaces", {"metadata": {"name": namespace}, "status": {"phase": "Active"}})
        async with emulator:
            # handler_cancellation: a watch whose client went away must not wait forever.
            server = aiohttp.web.Server(emulator, handler_cancellation=True, access_log=None)

            def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
                # aiohttp refuses bodies over 1 MiB; kube-apiserver's limit (3 MiB) is the one to enforce.
                return aiohttp.web.BaseRequest(message, payload, protocol, writer, task, asyncio.get_running_loop(),
                                               client_max_size=MAX_REQUEST_BODY_BYTES)

            server.request_factory = make_request
            runner = aiohttp.web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_GRACE)
            await runner.setup()
            try:
                site = aiohttp.web.TCPSite(runner, self._host, self._requested_port)
                await site.start()
                self._port = runner.addresses[0][1]
                self._emulator = emulator
                self._started.set()
                await self._stopping.wait()
            finally:
                await runner.cleanup()

    # --- access ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("The emulated Kubernetes API is not started.")
        return f"http://{self._host}:{self._port}"

    @property
    def emulator(self) -> ApiServerEmulator:
        """The emulator itself; mutate it via :meth:`call` (its event loop runs in another thread)."""
        if self._emulator is None:
            raise RuntimeError("The emulated Kubernetes API is not started.")
        return self._emulator

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the emulator's event loop and return its result (or raise its error)."""
        if self._loop is None:
            raise RuntimeError("The emulated Kubernetes API is not started.")
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(_STOP_TIMEOUT)

    def register_crd(self, crd: Mapping[str, Any]) -> dict[str, Any]:
        """Register a CRD (thread-safe); its resources are served as soon as this returns."""
        return self.call(lambda: self.emulator.register_crd(crd))

    def api_client(self) -> kubernetes.client.ApiClient:
        """A synchronous ``kubernetes`` client of its own for this server (plain HTTP, no auth)."""
        return new_api_client(self.url)

    def kubeconfig(self, context: str = "devops-sandbox", namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(
        self, path: str | pathlib.Path, context: str = "devops-sandbox", namespace: str = "default"
    ) -> pathlib.Path:
        """Write a kubeconfig that kubectl and the ``kubernetes`` client can use as is."""
        target = pathlib.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(context, namespace), sort_keys=False))
        return target
