#!/usr/bin/env python
"""Generator capacity: gateprobe's streaming Locust user vs a bare FastHttpUser.

Both send the same streamed chat request (``chat-steady``'s, built by the protocol layer)
to the bundled mock with zero delays, in rounds that alternate stream and bare (and their
order). The mock runs in its own process pinned to CPU 0, Locust in one process pinned to
CPU 1, closed loop with N users. Figures per kind: requests/s, and Locust's CPU time per
request (the Locust process's CPU time from test start to test stop). The capacity ratio is
bare CPU per request / stream CPU per request: the share of a bare user's request rate the
streaming user sustains when the generator's CPU is the limit (goal >= 0.7). The requests/s
ratio is printed too; it equals the capacity ratio only when the generator, not the mock,
is the bottleneck (see the CPU column).

    .venv/bin/python benchmarks/load_capacity.py                     # 3 rounds x 8 s, 20 users
    .venv/bin/python benchmarks/load_capacity.py --rounds 1 --seconds 2 --users 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gateprobe.load.mock_process import MockProcess
from gateprobe.provision import MOCK_TARGET

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "load_capacity_locustfile.py"


def locust_round(
    kind: str, users: int, seconds: float, env: dict[str, str], out: Path
) -> dict[str, float]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    cpu_file = out / f"{kind}-cpu.json"
    run_env = {
        **env,
        "BENCH_USER": kind,
        "BENCH_CPU_FILE": str(cpu_file),
        "GATEPROBE_LOAD_REPORT_DIR": str(out / f"{kind}-run"),
    }
    log = out / f"{kind}.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(command, env=run_env, stdout=subprocess.DEVNULL, stderr=log_file)
        if hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, {1 % (os.cpu_count() or 1)})
        process.wait()
    if process.returncode not in (0, 1):
        tail = log.read_text()[-2000:]
        raise SystemExit(f"locust ({kind}) failed with {process.returncode}:\n{tail}")
    figures = json.loads(cpu_file.read_text())
    requests, failures = int(figures["requests"]), int(figures["failures"])
    cpu = float(figures["cpu_s"])  # the run only, not start-up
    if requests == 0:
        raise SystemExit(f"locust ({kind}) completed no request:\n{log.read_text()[-2000:]}")
    return {
        "rps": requests / seconds,
        "requests": requests,
        "failures": failures,
        "cpu_us_per_request": cpu / max(1, requests) * 1e6,
        "cpu_share": cpu / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"stream": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp, MockProcess(ttft_ms=0, itl_ms=0, cpu=0) as mock:
        env = {
            **os.environ,
            **mock.env,
            "GATEPROBE_LOAD_PROFILE": "chat-steady",
            "GATEPROBE_LOAD_OVERRIDES": json.dumps({"warmup": 0}),
            "GATEPROBE_LOAD_TARGET": str(MOCK_TARGET),
        }
        for index in range(args.rounds):
            order = ("stream", "bare") if index % 2 == 0 else ("bare", "stream")
            for kind in order:
                out = Path(tmp) / f"round{index}"
                out.mkdir(exist_ok=True)
                results[kind].append(locust_round(kind, args.users, args.seconds, env, out))
    medians = {
        kind: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        for kind, rounds in results.items()
    }
    for kind in ("stream", "bare"):
        m = medians[kind]
        print(
            f"{kind:<7} {m['rps']:.1f} req/s  cpu {m['cpu_us_per_request']:.0f} us/request  "
            f"generator cpu {m['cpu_share']:.0%}  failures {m['failures']:.0f}"
        )
    capacity = medians["bare"]["cpu_us_per_request"] / medians["stream"]["cpu_us_per_request"]
    rps_ratio = medians["stream"]["rps"] / medians["bare"]["rps"]
    print(f"capacity ratio stream/bare {capacity:.2f} (goal >= 0.7)")
    print(f"requests/s ratio stream/bare {rps_ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
