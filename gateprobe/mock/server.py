"""Running the mock: in a background thread (tests, tools) or in the foreground (the CLI)."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from types import TracebackType
from typing import Any

import uvicorn

from gateprobe.mock.app import MockGateway
from gateprobe.mock.config import MockConfig

__all__ = ["MockServer", "listening_socket", "serve", "serve_socket", "worker_sockets"]


def _uvicorn_config(
    app: Any, sock_host: str, port: int, *, access_log: bool = False
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=sock_host,
        port=port,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=access_log,
        log_config=None,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


class MockServer:
    """The mock on 127.0.0.1 and an OS-chosen port, served from a background thread.

    with MockServer() as mock:
        httpx.get(mock.url + "/api/status")
    """

    def __init__(
        self, config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = MockGateway(config)
        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, host, self.port))
        self._thread = threading.Thread(target=self._run, name="gateprobe-mock", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> Any:
        return self.app.state

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 10.0) -> MockServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            deadline.wait(0.01)
        raise RuntimeError("the mock gateway did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket: connections made as soon as the URL is printed wait in its
    backlog instead of being refused; with ``--workers`` every worker accepts from it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def worker_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening socket per worker on the same port (SO_REUSEPORT, Linux): the kernel
    spreads new connections over them by their addresses' hash. A single shared socket
    would let whichever worker wakes first accept a whole burst of connections (asyncio
    accepts up to its backlog at once), so a load run's users, all connected at its start,
    would often land on one worker. Elsewhere: one socket shared by every worker."""
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        return [listening_socket(host, port)]
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the port the first got
            sock.listen(2048)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Server(uvicorn.Server):
    """uvicorn's server, telling ``on_started`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Any = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()


def serve_socket(
    config: MockConfig, host: str, sock: socket.socket, *, on_started: Any = None
) -> None:
    """Serve one mock on an already listening socket until Ctrl-C or SIGTERM, then return.

    uvicorn shuts down gracefully on either signal and then re-raises it, which would end the
    process with -SIGTERM or KeyboardInterrupt; the handlers installed here absorb that
    re-raise (and stop the server if a signal arrives before uvicorn installs its own).
    """
    bound = sock.getsockname()[1]
    app = MockGateway(config)
    server = _Server(_uvicorn_config(app, host, bound), on_started)

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(config: MockConfig, host: str, port: int, *, ready: Any = None, workers: int = 1) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, then return normally (exit code 0).

    ``workers`` > 1 (upstream mode only: the caller checks) serves from that many worker
    processes sharing the listening socket (``gateprobe.mock.workers``); ``ready`` is told
    the URL once, when every worker accepts connections.
    """
    sockets = worker_sockets(host, port, workers) if workers > 1 else [listening_socket(host, port)]
    port = sockets[0].getsockname()[1]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    log = logging.getLogger("gateprobe.mock")
    if workers > 1:
        from gateprobe.mock.workers import serve_workers

        log.info("mock gateway (%s mode) on %s, %d workers", config.mode, url, workers)
        serve_workers(config, host, sockets, workers, on_ready=lambda: ready and ready(url))
        return
    if ready is not None:
        ready(url)
    log.info("mock gateway (%s mode) on %s", config.mode, url)
    serve_socket(config, host, sockets[0])
