"""``gateprobe mock --workers N``: the upstream mock served by N processes on one socket.

The parent binds and listens (on Linux one SO_REUSEPORT socket per worker on the same port,
spread over by the kernel; elsewhere one shared socket: ``server.worker_sockets``), then
forks N workers that each run their own uvicorn server and event loop on their socket. Only
upstream mode is served this way: it keeps no state between requests (any key, no quota),
while gateway mode's keys, quota and rate limits would be split N ways.

The parent only supervises: it reports ready once every worker accepts connections, and on
Ctrl-C or SIGTERM it stops every worker (SIGTERM: uvicorn's graceful shutdown, at most 2 s),
killing what is left after ``STOP_GRACE_S``. A worker that ends on its own ends the whole
mock (a partly dead upstream would skew a load run without saying so). On Linux each
worker gets SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from gateprobe.mock.config import MockConfig

__all__ = ["STOP_GRACE_S", "WorkerFailed", "serve_workers"]

STOP_GRACE_S = 6.0  # uvicorn's graceful shutdown takes up to 2 s; then SIGKILL
START_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


class WorkerFailed(RuntimeError):
    """A worker did not start, or ended while the mock was serving (not the user's input:
    the command's internal error, exit 4)."""


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above: nobody to serve
        os._exit(0)


def _worker(
    config: MockConfig,
    host: str,
    sockets: list[socket.socket],
    index: int,
    parent: int,
    started: Connection,
) -> None:
    # its own socket only: one inherited and kept open here would hold the connections the
    # kernel hashes to it if that socket's worker ended
    sock = sockets[index % len(sockets)]
    for other in sockets:
        if other is not sock:
            other.close()
    for signum in (signal.SIGINT, signal.SIGTERM):  # not the parent's handlers, inherited
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent(parent)
    from gateprobe.mock.server import serve_socket

    def on_started() -> None:
        started.send(os.getpid())
        started.close()

    serve_socket(config, host, sock, on_started=on_started)


def serve_workers(
    config: MockConfig,
    host: str,
    sockets: list[socket.socket],
    workers: int,
    *,
    on_ready: Callable[[], Any] | None = None,
) -> None:
    """Serve from ``workers`` forked processes (on ``sockets``: one per worker, or one
    shared) until Ctrl-C or SIGTERM (then return), or
    until a worker ends on its own (``WorkerFailed``)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if main:
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    # fork where there is one: the workers inherit the socket and the configuration as they
    # are; "spawn" elsewhere pickles both (a socket is picklable for a child process)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    processes: list[Any] = []
    try:
        readiness = []
        for index in range(workers):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker,
                args=(config, host, sockets, index, os.getpid(), send),
                name=f"gateprobe-mock-worker-{index}",
            )
            process.start()
            send.close()
            processes.append(process)
            readiness.append(receive)
        for sock in sockets:  # the workers hold them; the parent serves nothing
            sock.close()
        _wait_started(processes, readiness, stop)
        if stop.is_set():
            return
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.2):
            ended = [p for p in processes if p.exitcode is not None]
            if ended:
                raise WorkerFailed(
                    f"mock worker pid {ended[0].pid} ended with status {ended[0].exitcode}; "
                    "stopping the others"
                )
    finally:
        _stop_all(processes)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_started(processes: list[Any], readiness: list[Connection], stop: threading.Event) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    for process, receive in zip(processes, readiness, strict=True):
        while not stop.is_set():
            if receive.poll(0.05):
                try:
                    receive.recv()
                except EOFError:  # it closed its end without a word: it ended
                    raise WorkerFailed(f"mock worker pid {process.pid} did not start") from None
                break
            if process.exitcode is not None or time.monotonic() > deadline:
                raise WorkerFailed(f"mock worker pid {process.pid} did not start")
        receive.close()


def _stop_all(processes: list[Any]) -> None:
    for process in processes:
        if process.exitcode is None:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.exitcode is None:
            with contextlib.suppress(OSError):
                process.kill()
            process.join()
