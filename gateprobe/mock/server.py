"""Running the mock: in a background thread (tests, tools) or in the foreground (the CLI)."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

from gateprobe.mock.app import MockGateway
from gateprobe.mock.config import MockConfig

__all__ = ["MockServer", "serve"]


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


def serve(config: MockConfig, host: str, port: int, *, ready: Any = None) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, then return normally (exit code 0).

    uvicorn shuts down gracefully on either signal and then re-raises it, which would end the
    process with -SIGTERM or KeyboardInterrupt; the handlers installed here absorb that
    re-raise (and stop the server if a signal arrives before uvicorn installs its own).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections made as soon as ``ready`` reports wait, not get refused
    bound = sock.getsockname()[1]
    app = MockGateway(config)
    server = uvicorn.Server(_uvicorn_config(app, host, bound))

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if ready is not None:
            ready(f"http://{host}:{bound}")
        logging.getLogger("gateprobe.mock").info(
            "mock gateway (%s mode) on http://%s:%d", config.mode, host, bound
        )
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
