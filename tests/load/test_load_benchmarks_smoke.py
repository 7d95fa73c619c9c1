"""The load benchmark scripts run end to end in tiny settings and print every figure line.

They check that the scripts work, never the figures' goals (those belong to real benchmark
runs on a quiet machine; see the README's "Load benchmarks").
"""

from __future__ import annotations

from support import NUMBER, line_matching, run_benchmark


def test_capacity_benchmark_prints_both_users_and_the_ratios() -> None:
    out = run_benchmark("load_capacity.py", "--rounds", "1", "--seconds", "1", "--users", "2")
    per_request = {}
    for kind in ("stream", "bare"):
        match = line_matching(
            rf"^{kind}\s+({NUMBER}) req/s  cpu ({NUMBER}) us/request  generator cpu \d+%  "
            r"failures 0$",
            out,
        )
        assert float(match.group(1)) > 0
        per_request[kind] = float(match.group(2))
    # one round: the median of the rounds' ratios is that round's ratio
    ratio = float(
        line_matching(
            rf"^capacity ratio stream/bare ({NUMBER}) \(bare cpu per request / stream's\)$", out
        ).group(1)
    )
    assert abs(ratio - per_request["bare"] / per_request["stream"]) < 0.02
    line_matching(rf"^requests/s ratio stream/bare {NUMBER} \(goal >= 0.7: (met|missed)\)$", out)
    line_matching(r"^binding: (the generator's CPU|not the generator alone) \(", out)


def test_accuracy_benchmark_prints_ttft_and_itl_errors() -> None:
    out = run_benchmark("load_accuracy.py", "--users", "2", "--seconds", "2", "--ttft-ms", "50",
                     "--itl-ms", "10")  # fmt: skip
    line_matching(r"^load: 2 users, \d+ requests in 2 s .*, 0 failed$", out)
    for metric, truth in (("ttft", 50), ("itl", 10)):
        match = line_matching(
            rf"^{metric} error: median ({NUMBER}) ms, p99 ({NUMBER}) ms \((\d+) samples; "
            rf"truth {truth} ms\)$",
            out,
        )
        assert float(match.group(1)) <= float(match.group(2))
        assert int(match.group(3)) > 0
    line_matching(r"^goal median error <= 2 ms: (met|missed)$", out)


def test_bottleneck_benchmark_runs_both_loads() -> None:
    out = run_benchmark("load_mock_bottleneck.py", "--seconds", "2", "--moderate-users", "2",
                     "--overload-users", "4")  # fmt: skip
    for name in ("moderate", "overload"):
        line_matching(
            rf"^{name}\s+{NUMBER} req/s  TTFT p50 .* mock lag p99 .* warned: (yes|no)$", out
        )


def test_window_benchmark_prints_each_run_and_the_goal() -> None:
    out = run_benchmark("load_window.py", "--rounds", "1", "--seconds", "2", "--users", "2",
                        "--hogs", "1")  # fmt: skip
    for label in ("unloaded", "beside 1 busy processes"):
        match = line_matching(
            rf"^{label} run 1: asked 2 s, wall ({NUMBER}) s, measured ({NUMBER}) s "
            rf"\(({NUMBER})%\), stalls {NUMBER} s \(longest \d+ ms\), opened after {NUMBER} s, "
            r"\d+ requests, exit 0, warned: (yes|no)$",
            out,
        )
        wall, measured = float(match.group(1)), float(match.group(2))
        assert wall >= 2.0 and measured <= wall  # the window never closes early
        line_matching(rf"^{label}: measured/asked median {NUMBER}%, min {NUMBER}%, ", out)
    line_matching(r"^goal within 1% or warned: (met|missed)$", out)
