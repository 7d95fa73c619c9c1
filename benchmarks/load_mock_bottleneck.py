#!/usr/bin/env python
"""Does the load summary say when the bundled mock, not the target, was the bottleneck?

Two ``gateprobe load`` runs against the bundled mock (its own process): a moderate one
(realistic delays, few users) and an overload (zero delays, many users, so the mock's single
event loop saturates). ``gateprobe load`` reads the mock's event-loop lag over the measured
window (``GET /_gateprobe/health?since=...``) and warns when its p99 exceeds the limit
(max(2 ms, min(10 ms, a quarter of the measured ITL p50))). Figures: per run, the requests/s,
TTFT p50/p99, the lag p99 and whether the summary warned (expected: moderate no, overload yes).

    .venv/bin/python benchmarks/load_mock_bottleneck.py
    .venv/bin/python benchmarks/load_mock_bottleneck.py --seconds 3 --overload-users 30
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from gateprobe.load.launch import LoadOptions, run_load


def one_run(users: int, seconds: float, ttft: float, itl: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        options = LoadOptions(
            profile="chat-steady",
            overrides={
                "users": users,
                "spawn_rate": users,
                "duration": seconds,
                "warmup": 1,
                "mock_ttft_ms": ttft,
                "mock_itl_ms": itl,
            },
            report_root=Path(tmp),
            plots=False,
            progress=False,
            out=io.StringIO(),
        )
        run_load(options)
        (run,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--moderate-users", type=int, default=10)
    parser.add_argument("--overload-users", type=int, default=80)
    args = parser.parse_args()
    runs = {
        "moderate": one_run(args.moderate_users, args.seconds, 200.0, 20.0),
        "overload": one_run(args.overload_users, args.seconds, 0.0, 0.0),
    }
    for name, summary in runs.items():
        mock = summary.get("mock") or {}
        lag = mock.get("loop_lag_ms") or {}
        warned = any("mock was the bottleneck" in w for w in summary["warnings"])
        ttft = summary["metrics"]["ttft_ms"]
        print(
            f"{name:<9} {summary['throughput']['requests_per_s']} req/s  TTFT p50 "
            f"{ttft.get('p50')} ms p99 {ttft.get('p99')} ms  mock lag p99 {lag.get('p99_max')} ms "
            f"(limit {mock.get('lag_limit_ms')} ms)  warned: {'yes' if warned else 'no'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
