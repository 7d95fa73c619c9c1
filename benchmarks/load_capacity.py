#!/usr/bin/env python
"""Generator capacity: gateprobe's streaming Locust user vs a bare FastHttpUser.

Both send the same streamed chat request (``chat-steady``'s, built by the protocol layer)
to the bundled mock with zero delays, in rounds that alternate stream and bare (and their
order). The mock runs in its own process pinned to CPU 0, Locust in one process pinned to
CPU 1, closed loop with N users. Figures per kind, over N seconds from the moment every
user has started: requests/s, and Locust's CPU time per request.

The goal (>= 0.7) is on the requests/s ratio stream/bare, the median of the rounds'
ratios (each round's stream and bare ran back to back, so a slower machine moves both).
The CPU-per-request ratio bare/stream is printed too: it is the share of a bare user's
request rate the streaming user sustains when the generator's CPU is the limit. The last
line says which binds: when both kinds kept their core busy (>= 85%) the generator did and
the two ratios agree up to those shares; otherwise the mock (or the machine) did and the
requests/s ratio overstates the capacity ratio.

    .venv/bin/python benchmarks/load_capacity.py                     # 5 rounds x 8 s, 20 users
    .venv/bin/python benchmarks/load_capacity.py --rounds 1 --seconds 2 --users 4
    .venv/bin/python benchmarks/load_capacity.py --request "anthropic chat stream"

``--request NAME`` measures another of ``mixed-protocols``' requests instead of
``chat-steady``'s (the Claude, Gemini and Responses streams are decoded event by event).
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

import yaml

from gateprobe.load.mock_process import MockProcess
from gateprobe.load.profile import load_profile
from gateprobe.provision import MOCK_TARGET

HERE = Path(__file__).resolve().parent
MIXED = HERE.parent / "loadtests" / "profiles" / "mixed-protocols.yaml"
LOCUSTFILE = HERE / "load_capacity_locustfile.py"
GOAL = 0.7
BUSY = 0.85  # a generator at this share of its core or more is the bottleneck


def locust_round(
    kind: str, users: int, seconds: float, env: dict[str, str], out: Path
) -> dict[str, float]:
    # no --run-time: the locustfile ends the run BENCH_SECONDS after every user started
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "--loglevel", "WARNING",
    ]  # fmt: skip
    cpu_file = out / f"{kind}-cpu.json"
    run_env = {
        **env,
        "BENCH_USER": kind,
        "BENCH_CPU_FILE": str(cpu_file),
        "BENCH_SECONDS": str(seconds),
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
    # the measured span only (every user started to the end), not start-up or stopping
    cpu, wall = float(figures["cpu_s"]), float(figures["wall_s"])
    if requests == 0:
        raise SystemExit(f"locust ({kind}) completed no request:\n{log.read_text()[-2000:]}")
    return {
        "rps": requests / wall,
        "requests": requests,
        "failures": failures,
        "cpu_us_per_request": cpu / max(1, requests) * 1e6,
        "cpu_share": cpu / wall,
    }


def one_request_profile(name: str, directory: Path) -> Path:
    """A profile with the one request of mixed-protocols named ``name``."""
    names = [request.name for request in load_profile(MIXED).requests]
    if name not in names:
        raise SystemExit(f"no request {name!r} in {MIXED.name}; one of: {', '.join(names)}")
    entry = yaml.safe_load(MIXED.read_text())["requests"][names.index(name)]
    path = directory / "capacity.yaml"
    entry = {**entry, "name": name, "weight": 1}
    path.write_text(yaml.safe_dump({"name": "capacity", "requests": [entry]}))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--request", help="a request of mixed-protocols (default: chat-steady's)")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"stream": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp, MockProcess(ttft_ms=0, itl_ms=0, cpu=0) as mock:
        env = {
            **os.environ,
            **mock.env,
            "GATEPROBE_LOAD_PROFILE": (
                str(one_request_profile(args.request, Path(tmp))) if args.request else "chat-steady"
            ),
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
    pairs = list(zip(results["stream"], results["bare"], strict=True))
    rps_ratio = statistics.median(s["rps"] / b["rps"] for s, b in pairs)
    capacity = statistics.median(
        b["cpu_us_per_request"] / s["cpu_us_per_request"] for s, b in pairs
    )
    verdict = "met" if rps_ratio >= GOAL else "missed"
    print(f"requests/s ratio stream/bare {rps_ratio:.2f} (goal >= {GOAL}: {verdict})")
    print(f"capacity ratio stream/bare {capacity:.2f} (bare cpu per request / stream's)")
    shares = medians["stream"]["cpu_share"], medians["bare"]["cpu_share"]
    if min(shares) >= BUSY:
        print(
            f"binding: the generator's CPU ({shares[0]:.0%} stream, {shares[1]:.0%} bare): "
            "the requests/s ratio is the capacity ratio up to those shares"
        )
    else:
        print(
            f"binding: not the generator alone ({shares[0]:.0%} stream, {shares[1]:.0%} bare "
            "of its core): the capacity ratio is the one to quote"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
