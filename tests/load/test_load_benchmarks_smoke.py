"""The load benchmark scripts run end to end in tiny settings and print every figure line.

They check that the scripts work, never the figures' goals (those belong to real benchmark
runs on a quiet machine; see the README's "Load benchmarks").
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
NUMBER = r"\d+(?:\.\d+)?"


def run_script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    return result.stdout


def line(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return match


def test_capacity_benchmark_prints_both_users_and_the_ratios() -> None:
    out = run_script("load_capacity.py", "--rounds", "1", "--seconds", "1", "--users", "2")
    per_request = {}
    for kind in ("stream", "bare"):
        match = line(
            rf"^{kind}\s+({NUMBER}) req/s  cpu ({NUMBER}) us/request  generator cpu \d+%  "
            r"failures 0$",
            out,
        )
        assert float(match.group(1)) > 0
        per_request[kind] = float(match.group(2))
    ratio = float(line(rf"^capacity ratio stream/bare ({NUMBER}) \(goal >= 0.7\)$", out).group(1))
    assert abs(ratio - per_request["bare"] / per_request["stream"]) < 0.02
    line(rf"^requests/s ratio stream/bare {NUMBER}$", out)


def test_accuracy_benchmark_prints_ttft_and_itl_errors() -> None:
    out = run_script("load_accuracy.py", "--users", "2", "--seconds", "2", "--ttft-ms", "50",
                     "--itl-ms", "10")  # fmt: skip
    line(r"^load: 2 users, \d+ requests in 2 s .*, 0 failed$", out)
    for metric, truth in (("ttft", 50), ("itl", 10)):
        match = line(
            rf"^{metric} error: median ({NUMBER}) ms, p99 ({NUMBER}) ms \((\d+) samples; "
            rf"truth {truth} ms\)$",
            out,
        )
        assert float(match.group(1)) <= float(match.group(2))
        assert int(match.group(3)) > 0
    line(r"^goal median error <= 2 ms: (met|missed)$", out)


def test_bottleneck_benchmark_runs_both_loads() -> None:
    out = run_script("load_mock_bottleneck.py", "--seconds", "2", "--moderate-users", "2",
                     "--overload-users", "4")  # fmt: skip
    for name in ("moderate", "overload"):
        line(rf"^{name}\s+{NUMBER} req/s  TTFT p50 .* mock lag p99 .* warned: (yes|no)$", out)
