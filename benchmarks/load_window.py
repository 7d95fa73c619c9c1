#!/usr/bin/env python
"""How close ``gateprobe load`` comes to the measured window it was asked for, on a quiet
machine and beside busy processes.

Each round is a ``gateprobe load`` run against the bundled mock (``chat-steady``, its own
process), first alone, then beside ``--hogs`` processes that spin on the CPU (started before
the run, killed after it). Figures per run, from its summary: the window's wall-clock length
and the time measured in it (less the generator's stalls) against what was asked, the stalls,
how long start-up took before the window opened, and whether the summary warned. Goal: every
run's measured time within 1% of what was asked, or a warning naming the shortfall.

    .venv/bin/python benchmarks/load_window.py                        # 3 rounds x 20 s, 2 hogs
    .venv/bin/python benchmarks/load_window.py --rounds 1 --seconds 3 --hogs 2
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateprobe.load.launch import LoadOptions, run_load
from gateprobe.load.window import TOLERANCE


def one_run(seconds: float, users: int, hogs: int) -> dict[str, Any]:
    spinning = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(hogs)
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            options = LoadOptions(
                profile="chat-steady",
                overrides={"users": users, "duration": seconds, "warmup": 1, "slo": {}},
                report_root=Path(tmp),
                plots=False,
                progress=False,
                out=io.StringIO(),
            )
            started = time.perf_counter()
            code = run_load(options)
            elapsed = time.perf_counter() - started
            (run,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
            summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    finally:
        for hog in spinning:
            hog.kill()
            hog.wait()
    window = summary["window"]
    warned = [w for w in summary["warnings"] if w.startswith("measured ")]
    return {
        "code": code,
        "elapsed_s": elapsed,
        "asked_s": window["asked_s"],
        "wall_s": window["wall_s"],
        "measured_s": window["measured_s"],
        "share": window["measured_share"],
        "stalled_s": window["stalls"]["stalled_s"],
        "longest_ms": window["stalls"]["longest_ms"],
        "opened_after_s": window["opened_after_s"],
        "requests": summary["requests"]["measured"],
        "warning": warned[0] if warned else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the loaded runs")
    args = parser.parse_args()
    met = True
    for label, hogs in (("unloaded", 0), (f"beside {args.hogs} busy processes", args.hogs)):
        runs = [one_run(args.seconds, args.users, hogs) for _ in range(args.rounds)]
        for index, run in enumerate(runs, 1):
            print(
                f"{label} run {index}: asked {run['asked_s']:g} s, wall {run['wall_s']:.3f} s, "
                f"measured {run['measured_s']:.3f} s ({run['share']:.2%}), stalls "
                f"{run['stalled_s']:.3f} s (longest {run['longest_ms']:.0f} ms), opened after "
                f"{run['opened_after_s']:.2f} s, {run['requests']} requests, exit {run['code']}, "
                f"warned: {'yes' if run['warning'] else 'no'}"
            )
            if run["warning"]:
                print(f"  warning: {run['warning']}")
        shares = [run["share"] for run in runs]
        within = sum(1 for s in shares if abs(s - 1.0) <= TOLERANCE)
        warned = sum(1 for run in runs if run["warning"])
        ok = all(abs(r["share"] - 1.0) <= TOLERANCE or r["warning"] for r in runs)
        met = met and ok
        print(
            f"{label}: measured/asked median {statistics.median(shares):.2%}, min "
            f"{min(shares):.2%}, max {max(shares):.2%}; wall/asked max "
            f"{max(r['wall_s'] / r['asked_s'] for r in runs):.2%}; {within} of {len(runs)} "
            f"within 1%, {warned} warned"
        )
    print(f"goal within 1% or warned: {'met' if met else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
