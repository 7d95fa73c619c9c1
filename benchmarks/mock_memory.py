#!/usr/bin/env python
"""Does the mock gateway's memory stay flat under a long run?

Starts the mock as a user would (``gateprobe mock --port 0 --quiet``), sends ``--small``
requests (default 10,000), reads the server's resident set size (VmRSS), sends more up to
``--large`` in total (default 100,000), reads it again, and prints both and the growth
(goal: within 10%). The requests are a mix of non-stream and streamed OpenAI chat
completions, Claude Messages and Gemini generateContent, each with a prompt of its own, so a
cache keyed on content would show up as growth.

    .venv/bin/python benchmarks/mock_memory.py
    .venv/bin/python benchmarks/mock_memory.py --small 200 --large 400      # a smoke run

What the mock keeps is bounded by its configuration: ``usage_log_size`` records and
``ledger_size`` ledger entries (both 10,000 by default, so both are full by the first
reading). The run prints both bounds: with a larger bound, growth between the two readings
includes the record filling up to it. ``--config`` passes a configuration file to the mock,
for instance to try another ``ledger_size``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mock_throughput import (
    ADMIN_TOKEN,
    LoadResult,
    ServerProcess,
    build_request,
    fetch,
    new_event_loop,
    run_load,
    valid_secret,
)

KINDS = ("chat", "chat-stream", "anthropic", "gemini")


def _gateprobe() -> str:
    beside = Path(sys.executable).parent / "gateprobe"
    if beside.exists():
        return str(beside)
    found = shutil.which("gateprobe")
    if found is None:
        raise SystemExit("the gateprobe console script is not installed")
    return found


def request_maker(secret: str) -> Callable[[int], bytes]:
    """The n-th request of the mix: kinds in turn, each with a prompt of its own."""
    openai = {"Authorization": f"Bearer {secret}"}
    claude = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    goog = {"x-goog-api-key": secret}

    def make(n: int) -> bytes:
        prompt = f"Request {n}: summarise the quota ledger for account {n % 977} in brief"
        kind = KINDS[n % len(KINDS)]
        if kind in ("chat", "chat-stream"):
            body: dict[str, object] = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": prompt}],
            }
            if kind == "chat-stream":
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
            return build_request("POST", "/v1/chat/completions", body, openai)
        if kind == "anthropic":
            body = {
                "model": "claude-sonnet-4-5",
                "max_tokens": 256,
                "messages": [{"role": "user", "content": prompt}],
            }
            return build_request("POST", "/v1/messages", body, claude)
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        return build_request("POST", path, body, goog)

    return make


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


async def _send(
    port: int, make: Callable[[int], bytes], first: int, count: int, connections: int
) -> LoadResult:
    result = await run_load(port, lambda n: make(first + n), connections=connections, total=count)
    if result.errors:
        print(f"  {result.errors} errors: {dict(result.statuses)}")
    return result


async def _benchmark(args: argparse.Namespace) -> int:
    if not 0 < args.small < args.large:
        print("need 0 < --small < --large")
        return 2
    make = request_maker(valid_secret())
    argv = [_gateprobe(), "mock", "--port", "0", "--quiet"]
    if args.config:
        argv += ["--config", args.config]
    server = ServerProcess(argv, "gateprobe mock")
    try:
        port = server.wait_ready(b"gateprobe mock listening on ")
        config = await fetch(
            port,
            build_request("GET", "/_gateprobe/config", None, {"x-gateprobe-admin": ADMIN_TOKEN}),
        )
        bounds = json.loads(config.body)
        print(
            f"mock_memory: mock pid {server.proc.pid} on port {port}; {args.connections} "
            f"connections; mix {', '.join(KINDS)}; usage_log_size {bounds['usage_log_size']}, "
            f"ledger_size {bounds['ledger_size']}"
        )
        rss_start = server.rss_bytes()
        started = time.perf_counter()
        first = await _send(port, make, 0, args.small, args.connections)
        rss_small = server.rss_bytes()
        second = await _send(port, make, args.small, args.large - args.small, args.connections)
        rss_large = server.rss_bytes()
        elapsed = time.perf_counter() - started
        errors = first.errors + second.errors
        growth = (rss_large - rss_small) / rss_small * 100.0
        verdict = "met" if growth <= 10.0 else "MISSED"
        print(f"rss at start: {_mib(rss_start)}")
        print(f"rss after {args.small} requests: {_mib(rss_small)}")
        print(f"rss after {args.large} requests: {_mib(rss_large)}")
        print(f"growth from {args.small} to {args.large}: {growth:+.1f}% (goal <= 10%: {verdict})")
        print(
            f"sent {first.requests + second.requests} requests in {elapsed:.1f} s "
            f"({(first.requests + second.requests) / elapsed:.0f} req/s), {errors} errors"
        )
        return 1 if errors else 0
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10_000, help="requests before the 1st RSS")
    parser.add_argument("--large", type=int, default=100_000, help="total before the 2nd RSS")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--config", metavar="FILE", help="passed to `gateprobe mock --config`")
    args = parser.parse_args(argv)
    loop = new_event_loop()
    try:
        return loop.run_until_complete(_benchmark(args))
    finally:
        loop.close()


if __name__ == "__main__":
    raise SystemExit(main())
