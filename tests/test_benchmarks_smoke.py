"""The benchmark scripts run end to end and print their figures.

Tiny settings only: these tests check that the scripts work (servers start, the load
generator completes, every figure line is printed, no request fails), never the figures'
goals, which belong to real benchmark runs on a quiet machine, not to timed tests.
"""

from __future__ import annotations

from support import NUMBER, line_matching, run_benchmark


def test_throughput_benchmark_prints_rates_ratios_latency_and_loop_lag() -> None:
    out = run_benchmark(
        "mock_throughput.py", "--rounds", "1", "--seconds", "1", "--warmup", "0.2",
        "--connections", "8",
    )  # fmt: skip
    captured = line_matching(r"stream (\d+) chunk writes, (\d+) body bytes", out)
    assert int(captured.group(1)) >= 34  # the role chunk, 32 content chunks, the finish chunk
    for workload in ("chat", "stream"):
        match = line_matching(
            rf"^{workload}\s+mock\s+({NUMBER}) req/s\s+bare\s+({NUMBER}) req/s\s+"
            rf"ratio mock/bare ({NUMBER})",
            out,
        )
        mock, bare, ratio = (float(g) for g in match.groups())
        assert mock > 0 and bare > 0
        assert abs(ratio - mock / bare) < 0.01
        for server in ("mock", "bare"):
            latency = line_matching(
                rf"^{workload}\s+{server} latency p50 ({NUMBER}) ms\s+p99 ({NUMBER}) ms"
                rf".*errors (\d+)$",
                out,
            )
            p50, p99, errors = latency.groups()
            assert 0 < float(p50) <= float(p99)
            assert errors == "0"
    line_matching(
        rf"^mock event-loop lag after the run: p50 {NUMBER} ms, p99 {NUMBER} ms, "
        rf"max {NUMBER} ms \((\d+) samples\)",
        out,
    )


def test_memory_benchmark_prints_rss_at_both_counts_and_growth() -> None:
    out = run_benchmark("mock_memory.py", "--small", "200", "--large", "400", "--connections", "8")
    small = line_matching(rf"^rss after 200 requests: ({NUMBER}) MiB$", out)
    large = line_matching(rf"^rss after 400 requests: ({NUMBER}) MiB$", out)
    growth = line_matching(rf"^growth from 200 to 400: ([+-]{NUMBER})%", out)
    assert float(small.group(1)) > 0 and float(large.group(1)) > 0
    expected = (float(large.group(1)) - float(small.group(1))) / float(small.group(1)) * 100
    assert abs(float(growth.group(1)) - expected) < 0.5  # both from the same rounded readings
    line_matching(r"^sent 400 requests in .* 0 errors$", out)


def test_stream_timing_benchmark_prints_ttft_and_gap_errors_per_protocol() -> None:
    out = run_benchmark(
        "stream_timing.py", "--requests", "2", "--chunks", "4", "--ttft", "20", "--itl", "5"
    )
    for protocol in ("openai", "anthropic", "gemini"):
        ttft = line_matching(rf"^{protocol}\s+ttft\s+truth 20 ms\s+n 2\s+median ({NUMBER}) ms", out)
        assert float(ttft.group(1)) >= 20  # the configured delay is a floor, never undercut
        line_matching(rf"^{protocol}\s+ttft\s+baseline \(ttft-0\) {NUMBER} ms", out)
        gaps = line_matching(rf"^{protocol}\s+gaps\s+truth 5 ms\s+n 6\s+median ({NUMBER}) ms", out)
        assert float(gaps.group(1)) > 0
    line_matching(r"^overall .* goal <= 2 ms: (met|NOT met); 0 failed requests$", out)


def test_mock_workers_benchmark_prints_rates_with_one_and_two_workers() -> None:
    out = run_benchmark(
        "mock_workers.py", "--rounds", "1", "--seconds", "0.5", "--warmup", "0.1",
        "--connections", "8", "--workloads", "chat",
    )  # fmt: skip
    for workers in (1, 2):
        round_line = line_matching(
            rf"^chat\s+round 1 workers {workers}: ({NUMBER}) req/s, latency p50 {NUMBER} ms "
            rf"p99 {NUMBER} ms, worker CPU (.+), errors 0$",
            out,
        )
        assert float(round_line.group(1)) > 0
        assert round_line.group(2).count("%") == workers  # one figure per worker process
    match = line_matching(
        rf"^chat\s+workers 1 ({NUMBER}) req/s  workers 2 ({NUMBER}) req/s  ratio ({NUMBER})", out
    )
    one, two, ratio = (float(g) for g in match.groups())
    assert one > 0 and two > 0 and abs(ratio - two / one) < 0.01
    line_matching(r"^0 failed requests$", out)
