#!/usr/bin/env python
"""How much the mock gateway costs over the bare server stack it runs on.

Side by side in one run, with the uvicorn settings the mock uses (httptools, uvloop, no
access log, logging off; ``gateprobe.mock.server._uvicorn_config``):

    mock   the MockGateway app with zero delays (keys, quota, usage log, generation, ...)
    bare   a raw-ASGI app that answers with the exact bytes the mock answered: the same
           status, headers and body for a non-stream chat completion, and the same chunk
           writes for a 32-token stream (``gpt-4o-mini--chunks-32``), captured from the mock
           at the start of the run

Each server runs in its own subprocess pinned to CPU 0 (when ``os.sched_setaffinity``
works); the load generator runs here, pinned to CPU 1: a minimal asyncio raw-socket HTTP/1.1
keep-alive client with N concurrent connections, each sending one pre-built request and
reading the whole response (content-length, or chunked up to the terminating 0-chunk)
before sending the next. Rounds alternate mock and bare, and their order, so drift on a
shared machine hits both. The figure of merit is mock/bare requests per second (goal >= 0.8).

    .venv/bin/python benchmarks/mock_throughput.py                  # 5 rounds x 5 s
    .venv/bin/python benchmarks/mock_throughput.py --rounds 1 --seconds 1

The server CPU column is the server process's CPU time over the wall time of the round: near
100% means the server was the bottleneck; much lower means the client (or the machine) was.

This file is also imported by ``mock_memory.py`` for its load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ADMIN_TOKEN = "gp-admin-token"
CHAT_PATH = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "Summarise the gateway benchmark in one paragraph"}]
STRIPPED = {b"date", b"server", b"transfer-encoding"}  # added by uvicorn, not the app

# -- requests and responses on the wire -------------------------------------------------------


def valid_secret() -> str:
    from gateprobe.mock.config import MockConfig

    return next(k.secret for k in MockConfig.default().keys if k.name == "valid")


def build_request(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    """One complete HTTP/1.1 keep-alive request, ready to write."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append("Content-Type: application/json")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def chat_request(secret: str, *, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": PROMPT}
    if stream:
        body = {"model": "gpt-4o-mini--chunks-32", "messages": PROMPT, "stream": True}
    return build_request("POST", CHAT_PATH, body, {"Authorization": f"Bearer {secret}"})


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]  # the body as the chunks it arrived in (one item for content-length)
    chunked: bool

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class ResponseReader:
    """Incremental HTTP/1.1 response parser for one keep-alive connection (no pipelining).

    ``feed`` returns the status of a response once it is complete, else None. With
    ``keep`` the headers and body chunks of the last response are kept in ``last``.
    """

    __slots__ = ("_chunked", "_keep", "_pos", "_remaining", "_state", "_status", "buf", "last")

    def __init__(self, keep: bool = False) -> None:
        self.buf = bytearray()
        self._keep = keep
        self.last: Response | None = None
        self._state = 0  # 0: head, 1: content-length body, 2: chunked body
        self._status = 0
        self._remaining = 0
        self._pos = 0
        self._chunked = False

    def feed(self, data: bytes) -> int | None:
        buf = self.buf
        buf += data
        if self._state == 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return None
            head = bytes(buf[:end])
            del buf[: end + 4]
            self._status = int(head[9:12])
            lower = head.lower()
            if b"\r\ntransfer-encoding: chunked" in lower:
                self._state = 2
                self._pos = 0
            else:
                at = lower.find(b"\r\ncontent-length:")
                self._remaining = (
                    int(lower[at + 17 : lower.find(b"\r\n", at + 2)]) if at >= 0 else 0
                )
                self._state = 1
            if self._keep:
                headers = []
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers.append((name.strip().lower(), value.strip()))
                self.last = Response(self._status, headers, [], self._state == 2)
        if self._state == 1:
            size = self._remaining
            if len(buf) < size:
                return None
            if self.last is not None and self._keep:
                self.last.chunks.append(bytes(buf[:size]))
            del buf[:size]
            self._state = 0
            return self._status
        pos = self._pos
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
            end = line_end + 2 + size + 2
            if len(buf) < end:
                break
            if size == 0:
                del buf[:end]
                self._state = 0
                return self._status
            if self._keep and self.last is not None:
                self.last.chunks.append(bytes(buf[line_end + 2 : line_end + 2 + size]))
            pos = end
        self._pos = pos
        return None


# -- the load generator ------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class _Load:
    """Shared by the connections of one run: what to send next, and when to stop."""

    def __init__(
        self,
        requests: Sequence[bytes] | Callable[[int], bytes],
        *,
        deadline: float | None,
        total: int | None,
    ) -> None:
        self.requests = requests
        self.deadline = deadline
        self.total = total
        self.issued = 0
        self.result = LoadResult()

    def next_request(self, now: float) -> bytes | None:
        if self.deadline is not None and now >= self.deadline:
            return None
        if self.total is not None and self.issued >= self.total:
            return None
        requests = self.requests
        if callable(requests):
            request = requests(self.issued)
        else:
            request = requests[self.issued % len(requests)]
        self.issued += 1
        return request

    def record(self, status: int, latency: float) -> None:
        result = self.result
        result.requests += 1
        result.latencies.append(latency)
        if status != 200:
            result.errors += 1
            result.statuses[status] += 1


class _Connection(asyncio.Protocol):
    def __init__(self, load: _Load, done: asyncio.Future[None]) -> None:
        self.load = load
        self.done = done
        self.reader = ResponseReader()
        self.transport: Any = None  # uvloop's transports do not subclass asyncio.Transport
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send(time.perf_counter())

    def _send(self, now: float) -> None:
        request = self.load.next_request(now)
        if request is None:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        status = self.reader.feed(data)
        if status is None:
            return
        now = time.perf_counter()
        self.load.record(status, now - self.started)
        self._send(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


async def run_load(
    port: int,
    requests: Sequence[bytes] | Callable[[int], bytes],
    *,
    connections: int,
    seconds: float | None = None,
    total: int | None = None,
) -> LoadResult:
    """Keep ``connections`` requests in flight until ``seconds`` pass or ``total`` are sent.

    ``requests`` are sent in turn, or ``requests(n)`` builds the n-th request.
    """
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    load = _Load(requests, deadline=None if seconds is None else started + seconds, total=total)
    futures: list[asyncio.Future[None]] = []
    transports: list[asyncio.BaseTransport] = []
    try:
        for _ in range(connections):
            done: asyncio.Future[None] = loop.create_future()
            futures.append(done)
            transport, _ = await loop.create_connection(
                functools.partial(_Connection, load, done), HOST, port
            )
            transports.append(transport)
        limit = (seconds or 0.0) + 60.0 if total is None else max(60.0, total / 100)
        await asyncio.wait_for(asyncio.gather(*futures), limit)
    finally:
        for opened in transports:
            opened.close()
    load.result.seconds = time.perf_counter() - started
    return load.result


async def fetch(port: int, request: bytes, timeout: float = 10.0) -> Response:
    """One request on a fresh connection; the whole response, chunk boundaries kept."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(request)
        parser = ResponseReader(keep=True)
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                raise ConnectionError("the server closed the connection mid-response")
            if parser.feed(data) is not None:
                assert parser.last is not None
                return parser.last
    finally:
        writer.close()


def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def pin(cpu: int) -> str:
    """Pin this process to ``cpu`` if the OS allows; a short note of what happened."""
    setter: Callable[[int, set[int]], None] | None = getattr(os, "sched_setaffinity", None)
    if setter is None:
        return "not pinned (no sched_setaffinity)"
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed or len(allowed) < 2:
        return f"not pinned (CPUs allowed: {sorted(allowed)})"
    try:
        setter(0, {cpu})
    except OSError as exc:
        return f"not pinned ({exc.strerror})"
    return f"CPU {cpu}"


# -- servers in subprocesses ---------------------------------------------------------------


class BareApp:
    """Answers every request with the captured bytes: the floor the mock is measured against."""

    def __init__(self, capture: dict[str, Any]) -> None:
        def headers(items: list[list[str]]) -> list[tuple[bytes, bytes]]:
            return [(base64.b64decode(n), base64.b64decode(v)) for n, v in items]

        chat, stream = capture["chat"], capture["stream"]
        self.chat_start = {
            "type": "http.response.start",
            "status": chat["status"],
            "headers": headers(chat["headers"]),
        }
        self.chat_body = {
            "type": "http.response.body",
            "body": b"".join(base64.b64decode(c) for c in chat["chunks"]),
        }
        self.stream_start = {
            "type": "http.response.start",
            "status": stream["status"],
            "headers": headers(stream["headers"]),
        }
        self.stream_chunks = [
            {"type": "http.response.body", "body": base64.b64decode(c), "more_body": True}
            for c in stream["chunks"]
        ]
        self.stream_end = {"type": "http.response.body", "body": b"", "more_body": False}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if b'"stream":true' in body:
            await send(self.stream_start)
            for chunk in self.stream_chunks:
                await send(chunk)
            await send(self.stream_end)
        else:
            await send(self.chat_start)
            await send(self.chat_body)


def serve_main(kind: str, cpu: int, capture_path: str | None) -> None:
    """The server subprocess: print ``port N`` once listening, serve until SIGTERM."""
    pin(cpu)
    import uvicorn

    from gateprobe.mock.app import MockGateway
    from gateprobe.mock.config import MockConfig
    from gateprobe.mock.server import _uvicorn_config

    logging.getLogger("gateprobe.mock").setLevel(logging.WARNING)  # no per-request log lines
    app: Any
    if kind == "mock":
        app = MockGateway(MockConfig.default().replace(ttft_ms=0.0, itl_ms=0.0))
    else:
        assert capture_path is not None
        app = BareApp(json.loads(Path(capture_path).read_text()))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, HOST, port))
    print(f"port {port}", flush=True)
    server.run(sockets=[sock])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this script dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerProcess:
    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        # stderr goes to a file: a pipe nobody reads could fill up and stall the server
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.port = 0

    def wait_ready(self, pattern: bytes, timeout: float = 30.0) -> int:
        """The port from the first stdout line ``<pattern><port>`` (or ``...:<port>``)."""
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(pattern):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {line!r}\n{self.stderr_text()}")
        self.port = int(line.strip().rpartition(b":" if b":" in line else b" ")[2])
        return self.port

    def stderr_text(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()


def start_server(kind: str, cpu: int, capture_path: str | None = None) -> ServerProcess:
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--cpu", str(cpu)]
    if capture_path is not None:
        argv += ["--capture", capture_path]
    server = ServerProcess(argv, kind)
    server.wait_ready(b"port ")
    return server


# -- the benchmark ---------------------------------------------------------------------------


def _encode(response: Response) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "status": response.status,
        "headers": [[b64(n), b64(v)] for n, v in response.headers if n not in STRIPPED],
        "chunks": [b64(c) for c in response.chunks],
    }


@dataclass
class Cell:
    """One server under one workload, over all rounds."""

    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, result: LoadResult, cpu_seconds: float) -> None:
        self.rates.append(result.rate)
        self.cpu.append(cpu_seconds / result.seconds if result.seconds else 0.0)
        self.latencies.extend(result.latencies)
        self.errors += result.errors


async def _benchmark(args: argparse.Namespace) -> int:
    client_pin = pin(1) if not args.no_pin else "not pinned (--no-pin)"
    server_cpu = -1 if args.no_pin else 0
    secret = valid_secret()
    workloads = {
        "chat": chat_request(secret, stream=False),
        "stream": chat_request(secret, stream=True),
    }
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="gateprobe-bench-") as tmp:
        try:
            servers["mock"] = start_server("mock", server_cpu)
            mock_port = servers["mock"].port
            chat = await fetch(mock_port, workloads["chat"])
            stream = await fetch(mock_port, workloads["stream"])
            if chat.status != 200 or stream.status != 200 or not stream.chunked:
                print(f"unexpected capture: chat {chat.status}, stream {stream.status}")
                return 1
            capture = Path(tmp) / "capture.json"
            capture.write_text(json.dumps({"chat": _encode(chat), "stream": _encode(stream)}))
            servers["bare"] = start_server("bare", server_cpu, str(capture))
            for name in ("chat", "stream"):  # the bare server answers byte for byte the same
                again = await fetch(servers["bare"].port, workloads[name])
                expected = chat if name == "chat" else stream
                if again.chunks != expected.chunks or again.status != expected.status:
                    print(f"bare server does not replay the {name} response")
                    return 1
            print(
                f"mock_throughput: {args.rounds} rounds x {args.seconds:g} s per cell, "
                f"{args.connections} connections; servers "
                f"{'not pinned' if args.no_pin else f'on CPU {server_cpu}'}, client {client_pin}"
            )
            print(
                f"captured from the mock: chat {len(chat.body)} body bytes, "
                f"{len(chat.headers)} headers; stream {len(stream.chunks)} chunk writes, "
                f"{len(stream.body)} body bytes"
            )
            for port in (servers["mock"].port, servers["bare"].port):
                for request in workloads.values():
                    await run_load(
                        port, [request], connections=args.connections, seconds=args.warmup
                    )
            cells = {(w, s): Cell() for w in workloads for s in ("mock", "bare")}
            for round_no in range(args.rounds):
                for workload, request in workloads.items():
                    order = ("mock", "bare") if round_no % 2 == 0 else ("bare", "mock")
                    parts: dict[str, str] = {}
                    for name in order:
                        server = servers[name]
                        cpu_before = server.cpu_seconds()
                        result = await run_load(
                            server.port,
                            [request],
                            connections=args.connections,
                            seconds=args.seconds,
                        )
                        cells[workload, name].add(result, server.cpu_seconds() - cpu_before)
                        cell = cells[workload, name]
                        parts[name] = (
                            f"{name} {result.rate:8.1f} req/s (server cpu {cell.cpu[-1]:4.0%}"
                            f"{f', {result.errors} errors' if result.errors else ''})"
                        )
                    print(f"round {round_no + 1} {workload:<6} {parts['mock']}   {parts['bare']}")
            print(f"\nsummary (median of {args.rounds} rounds; latency over all requests):")
            failed = False
            for workload in workloads:
                mock, bare = cells[workload, "mock"], cells[workload, "bare"]
                mock_rate = statistics.median(mock.rates)
                bare_rate = statistics.median(bare.rates)
                ratio = mock_rate / bare_rate if bare_rate else 0.0
                verdict = "met" if ratio >= 0.8 else "MISSED"
                print(
                    f"{workload:<6} mock {mock_rate:8.1f} req/s   bare {bare_rate:8.1f} req/s   "
                    f"ratio mock/bare {ratio:.2f} (goal >= 0.80: {verdict})"
                )
                for name, cell in (("mock", mock), ("bare", bare)):
                    ordered = sorted(cell.latencies)
                    print(
                        f"{workload:<6} {name} latency p50 {percentile(ordered, 0.5) * 1000:.2f} ms"
                        f"   p99 {percentile(ordered, 0.99) * 1000:.2f} ms"
                        f"   server cpu {statistics.median(cell.cpu):.0%}"
                        f"   errors {cell.errors}"
                    )
                    failed = failed or cell.errors > 0
            health = await fetch(
                servers["mock"].port,
                build_request(
                    "GET", "/_gateprobe/health", None, {"x-gateprobe-admin": ADMIN_TOKEN}
                ),
            )
            lag = json.loads(health.body)["loop_lag_ms"]
            print(
                f"mock event-loop lag after the run: p50 {lag['p50']:.2f} ms, "
                f"p99 {lag['p99']:.2f} ms, max {lag['max']:.2f} ms ({lag['samples']} samples)"
            )
            return 1 if failed else 0
        finally:
            for server in servers.values():
                server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--serve", choices=("mock", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--capture", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(args.serve, args.cpu, args.capture)
        return 0
    loop = new_event_loop()
    try:
        return loop.run_until_complete(_benchmark(args))
    finally:
        loop.close()


if __name__ == "__main__":
    raise SystemExit(main())
