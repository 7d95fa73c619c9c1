#!/usr/bin/env python
"""How accurately gateprobe measures TTFT and inter-event gaps, against the mock's known truth.

The mock paces a stream exactly as told (``x-gateprobe-directives: ttft-200,itl-20,chunks-20``:
the first output chunk 200 ms after the request, then one every 20 ms). gateprobe's exchange
recorder (gateprobe/http.py) timestamps every chunk as it arrives, and gateprobe/stream_metrics.py
turns that into the figures the reports carry: TTFT (to the first event carrying output) and
the gaps between output events. This script compares them with the truth at low load (one
request at a time, keep-alive) for each protocol and prints the errors:

    ttft error = measured TTFT - configured TTFT: includes the request's own round trip (the
                 client sending, the mock parsing, authenticating, reserving and writing), a
                 real positive bias of about one plain request
    net error  = measured TTFT - (configured TTFT + baseline), where the baseline is the median
                 TTFT of the same request with ``ttft-0``, measured interleaved in the same run:
                 how exactly the configured delay itself is measured
    gap error  = measured gap - configured inter-token latency

Goal: the median absolute gap error and net TTFT error are <= 2 ms (the raw TTFT error is
printed too, with the baseline that explains it). The mock runs in its own process (``gateprobe
mock --port 0``), so the client's reads never wait on the server's event loop for the GIL.

    .venv/bin/python benchmarks/stream_timing.py                      # 20 requests per protocol
    .venv/bin/python benchmarks/stream_timing.py --requests 2 --chunks 4 --ttft 20 --itl 5
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from gateprobe.http import Limits, exchange
from gateprobe.mock import MockConfig

GOAL_MS = 2.0
PROMPT = "Summarise the stream timing benchmark"
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": (
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    "gemini": (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
    ),
}


def start_mock() -> tuple[subprocess.Popen[str], str]:
    script = "from gateprobe.cli import main; raise SystemExit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", script, "mock", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if " on http" not in line:
        process.kill()
        raise SystemExit(f"the mock did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def headers_for(protocol: str, secret: str, directives: str) -> dict[str, str]:
    auth = {
        "openai": {"authorization": f"Bearer {secret}"},
        "anthropic": {"x-api-key": secret, "anthropic-version": "2023-06-01"},
        "gemini": {"x-goog-api-key": secret},
    }[protocol]
    return {**auth, "x-gateprobe-directives": directives}


def measure(
    client: httpx.Client, url: str, protocol: str, secret: str, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float], int]:
    """TTFTs, baseline (``ttft-0``) TTFTs and gaps, in ms, of sequential streams; failures."""
    path, body = REQUESTS[protocol]
    body = dict(body)
    if protocol != "gemini":
        body |= {"stream": True, "max_tokens": args.chunks + 8}
    paced = f"ttft-{args.ttft:g},itl-{args.itl:g},chunks-{args.chunks}"
    at_once = f"ttft-0,itl-{args.itl:g},chunks-2"
    ttfts: list[float] = []
    baseline: list[float] = []
    gaps: list[float] = []
    failures = 0
    limits = Limits(read=30.0, total=60.0)
    # the first pair warms the connection and is dropped; then paced and baseline alternate
    for i in range(args.requests + 1):
        for directives, into in ((paced, ttfts), (at_once, baseline)):
            headers = headers_for(protocol, secret, directives)
            ex = exchange(
                client, "POST", url + path, headers=headers, json_body=body, limits=limits
            )
            metrics = ex.stream_metrics()
            if ex.status != 200 or ex.error or metrics is None or metrics["ttft_ms"] is None:
                failures += 1
                continue
            if i == 0:
                continue
            into.append(metrics["ttft_ms"])
            if into is ttfts:
                output = [e.time for e in ex.events if _is_output(e.event, e.data)]
                gaps += [(b - a) * 1000 for a, b in itertools.pairwise(output)]
    return ttfts, baseline, gaps, failures


def _is_output(name: str | None, data: str) -> bool:
    from gateprobe.stream_metrics import carries_output

    return carries_output(name, data)


def summary(values: list[float], truth: float) -> dict[str, float]:
    errors = [v - truth for v in values]
    absolute = sorted(abs(e) for e in errors)
    return {
        "median": statistics.median(values),
        "median_error": statistics.median(errors),
        "median_abs_error": statistics.median(absolute),
        "p90_abs_error": absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))],
        "max_abs_error": absolute[-1],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20, help="streams per protocol")
    parser.add_argument("--ttft", type=float, default=200.0, help="configured TTFT, ms")
    parser.add_argument("--itl", type=float, default=20.0, help="configured gap, ms")
    parser.add_argument("--chunks", type=int, default=20, help="output chunks per stream")
    parser.add_argument(
        "--protocols", default="openai,anthropic,gemini", help="comma-separated protocols"
    )
    args = parser.parse_args(argv)
    secret = next(k.secret for k in MockConfig.default().keys if k.name == "valid")
    process, url = start_mock()
    all_ttft_errors: list[float] = []
    all_net_errors: list[float] = []
    all_gap_errors: list[float] = []
    failed = 0
    try:
        with httpx.Client(timeout=30.0) as client:
            for protocol in args.protocols.split(","):
                ttfts, baseline, gaps, failures = measure(client, url, protocol, secret, args)
                failed += failures
                if not ttfts or not gaps or not baseline:
                    print(f"{protocol:<9} no measurement ({failures} failed requests)")
                    continue
                base = statistics.median(baseline)
                t, g = summary(ttfts, args.ttft), summary(gaps, args.itl)
                net = summary(ttfts, args.ttft + base)
                print(
                    f"{protocol:<9} ttft  truth {args.ttft:g} ms  n {len(ttfts)}  "
                    f"median {t['median']:.2f} ms  median error {t['median_error']:+.2f} ms  "
                    f"p90 |error| {t['p90_abs_error']:.2f} ms  max |error| "
                    f"{t['max_abs_error']:.2f} ms"
                )
                print(
                    f"{protocol:<9} ttft  baseline (ttft-0) {base:.2f} ms  net median |error| "
                    f"{net['median_abs_error']:.2f} ms  "
                    f"net p90 |error| {net['p90_abs_error']:.2f} ms"
                )
                print(
                    f"{protocol:<9} gaps  truth {args.itl:g} ms  n {len(gaps)}  "
                    f"median {g['median']:.2f} ms  median error {g['median_error']:+.2f} ms  "
                    f"median |error| {g['median_abs_error']:.2f} ms  "
                    f"p90 |error| {g['p90_abs_error']:.2f} ms  max |error| "
                    f"{g['max_abs_error']:.2f} ms"
                )
                all_ttft_errors += [abs(v - args.ttft) for v in ttfts]
                all_net_errors += [abs(v - args.ttft - base) for v in ttfts]
                all_gap_errors += [abs(v - args.itl) for v in gaps]
    finally:
        process.terminate()
        process.wait(timeout=10)
    if not all_ttft_errors or not all_gap_errors:
        print(f"no measurement: {failed} failed requests")
        return 1
    ttft_error = statistics.median(all_ttft_errors)
    net_error = statistics.median(all_net_errors)
    gap_error = statistics.median(all_gap_errors)
    met = net_error <= GOAL_MS and gap_error <= GOAL_MS
    print(
        f"overall   median |ttft error| {ttft_error:.2f} ms (net of the round trip "
        f"{net_error:.2f} ms), median |gap error| {gap_error:.2f} ms, goal <= {GOAL_MS:g} ms: "
        f"{'met' if met else 'NOT met'}; {failed} failed requests"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
