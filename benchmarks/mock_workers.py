#!/usr/bin/env python
"""Mock throughput in upstream mode with 1 and with 2 worker processes, under one fixed load.

``gateprobe mock --mode upstream --workers N`` is started as a user starts it (zero delays,
``--quiet``); the load generator of ``mock_throughput.py`` (an asyncio raw-socket HTTP/1.1
keep-alive client, here in this process) keeps ``--connections`` requests in flight for
``--seconds``: a non-stream chat completion (``chat``) and a 32-chunk stream (``stream``).
Rounds alternate 1 and 2 workers, and their order, so drift on a shared machine hits both;
nothing is pinned (two workers need two cores). Figures: requests/s (median of the rounds),
latency p50/p99, and the workers' CPU over the round (from /proc: each worker's busy
fraction; the sum near the machine's free cores means the mock was CPU-bound).

    .venv/bin/python benchmarks/mock_workers.py                  # 5 rounds x 5 s
    .venv/bin/python benchmarks/mock_workers.py --rounds 1 --seconds 1

On a 2-core machine the client competes with the workers for the cores: the gain from a
second worker is bounded by what the client leaves free.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mock_throughput import (
    ServerProcess,
    build_request,
    new_event_loop,
    percentile,
    run_load,
)

from gateprobe.load.mock_cpu import CpuWatch

PROMPT = [{"role": "user", "content": "Summarise the gateway benchmark in one paragraph"}]
HEADERS = {"Authorization": "Bearer sk-any"}  # upstream mode takes any key
WORKLOADS = {
    "chat": build_request(
        "POST", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": PROMPT}, HEADERS
    ),
    "stream": build_request(
        "POST",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini--chunks-32", "messages": PROMPT, "stream": True},
        HEADERS,
    ),
}


def start_mock(workers: int) -> ServerProcess:
    argv = [sys.executable, "-m", "gateprobe.cli", "mock", "--mode", "upstream", "--port", "0",
            "--quiet", "--workers", str(workers)]  # fmt: skip
    server = ServerProcess(argv, f"mock --workers {workers}")
    server.wait_ready(b"gateprobe mock listening on ")
    return server


async def one_round(
    workers: int, workload: str, args: argparse.Namespace
) -> tuple[float, float, float, int, list[float]]:
    server = start_mock(workers)
    try:
        request = WORKLOADS[workload]
        await run_load(server.port, [request], connections=args.connections, seconds=args.warmup)
        watch = CpuWatch(f"http://127.0.0.1:{server.port}", interval=0.25).start()
        started = time.time()
        result = await run_load(
            server.port, [request], connections=args.connections, seconds=args.seconds
        )
        cpu = watch.stop().figures(started, time.time())
    finally:
        server.stop()
    ordered = sorted(result.latencies)
    busy = [float(w["busy"]) for w in cpu.get("workers", [])]
    return (
        result.rate,
        percentile(ordered, 0.50) * 1000,
        percentile(ordered, 0.99) * 1000,
        result.errors,
        busy,
    )


async def benchmark(args: argparse.Namespace) -> int:
    errors = 0
    for workload in args.workloads:
        rates: dict[int, list[float]] = {1: [], 2: []}
        for number in range(args.rounds):
            for workers in (1, 2) if number % 2 == 0 else (2, 1):
                rate, p50, p99, failed, busy = await one_round(workers, workload, args)
                errors += failed
                rates[workers].append(rate)
                shares = " + ".join(f"{b:.0%}" for b in busy) or "n/a"
                print(
                    f"{workload:<7} round {number + 1} workers {workers}: {rate:.0f} req/s, "
                    f"latency p50 {p50:.2f} ms p99 {p99:.2f} ms, worker CPU {shares}, "
                    f"errors {failed}",
                    flush=True,
                )
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(
            f"{workload:<7} workers 1 {one:.0f} req/s  workers 2 {two:.0f} req/s  "
            f"ratio {two / one if one else 0.0:.2f} (medians of {args.rounds} rounds, "
            f"{args.connections} connections)",
            flush=True,
        )
    print(f"{errors} failed requests")
    return 0 if errors == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workloads", nargs="+", choices=sorted(WORKLOADS), default=["chat", "stream"]
    )
    args = parser.parse_args(argv)
    loop = new_event_loop()
    try:
        return loop.run_until_complete(benchmark(args))
    finally:
        loop.close()


if __name__ == "__main__":
    raise SystemExit(main())
