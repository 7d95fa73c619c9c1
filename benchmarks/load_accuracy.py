#!/usr/bin/env python
"""TTFT and ITL accuracy of ``gateprobe load`` against the bundled mock's configured truth.

The mock (its own process) waits exactly TTFT before the first token and ITL before each
next one (``--ttft-ms``/``--itl-ms``); ``gateprobe load`` runs a moderate closed-loop load
against it and every request's measured TTFT and every inter-token gap are compared with
that truth. Figures: the median and p99 of |measured - configured| for TTFT and ITL (goal:
median error <= 2 ms), the mock's own event-loop lag over the run, and the generator's
load. What the error contains: the mock's timer and event-loop delay, loopback transfer,
and the generator's scheduling delay (gevent) - i.e. everything between the configured
truth and what a client sees.

    .venv/bin/python benchmarks/load_accuracy.py                        # 20 users, 15 s
    .venv/bin/python benchmarks/load_accuracy.py --users 4 --seconds 3
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

from gateprobe.load.launch import LoadOptions, run_load
from gateprobe.load.summary import measured_records, percentile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--ttft-ms", type=float, default=200.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        options = LoadOptions(
            profile="chat-steady",
            overrides={
                "users": args.users,
                "spawn_rate": args.users,
                "duration": args.seconds,
                "warmup": 2,
                "mock_ttft_ms": args.ttft_ms,
                "mock_itl_ms": args.itl_ms,
                "slo": {},
            },
            report_root=Path(tmp),
            plots=False,
            progress=False,
            out=io.StringIO(),
        )
        code = run_load(options)
        (run,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if code != 0:
            print(options.out.getvalue(), file=sys.stderr)  # type: ignore[attr-defined]
            return code
        records = list(measured_records(run / "requests.jsonl"))
        summary = json.loads((run / "summary.json").read_text())
    ttft_errors = sorted(abs(r["ttft_ms"] - args.ttft_ms) for r in records if r["ok"])
    itl_errors = sorted(abs(g - args.itl_ms) for r in records if r["ok"] for g in r["itl_ms"])
    failed = sum(1 for r in records if not r["ok"])
    print(
        f"load: {args.users} users, {len(records)} requests in {args.seconds:g} s "
        f"({summary['throughput']['requests_per_s']} req/s), {failed} failed"
    )
    print(
        f"ttft error: median {percentile(ttft_errors, 50):.3f} ms, p99 "
        f"{percentile(ttft_errors, 99):.3f} ms ({len(ttft_errors)} samples; "
        f"truth {args.ttft_ms:g} ms)"
    )
    print(
        f"itl error: median {percentile(itl_errors, 50):.3f} ms, p99 "
        f"{percentile(itl_errors, 99):.3f} ms ({len(itl_errors)} samples; truth {args.itl_ms:g} ms)"
    )
    lag = (summary.get("mock") or {}).get("loop_lag_ms") or {}
    print(f"mock event-loop lag: p50 {lag.get('p50')} ms, p99 {lag.get('p99_max')} ms")
    goal = percentile(ttft_errors, 50) <= 2.0 and percentile(itl_errors, 50) <= 2.0
    print(f"goal median error <= 2 ms: {'met' if goal else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
