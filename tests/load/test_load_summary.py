"""Percentiles, warmup and failure exclusion, throughput, goodput; open-loop pacing."""

from __future__ import annotations

import itertools
import random
import statistics
from typing import Any

import pytest

from gateprobe.load.pacing import BEHIND_MS, Pacer
from gateprobe.load.summary import build_summary, distribution, percentile


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 99.9) == pytest.approx(99.901)
    assert percentile([7.0], 99) == 7.0
    data = sorted(random.Random(1).gauss(20, 3) for _ in range(1001))
    assert percentile(data, 50) == pytest.approx(statistics.median(data))
    quantiles = statistics.quantiles(data, n=100, method="inclusive")
    assert percentile(data, 90) == pytest.approx(quantiles[89])


def test_distribution_has_every_statistic() -> None:
    stats = distribution([3.0, 1.0, 2.0])
    assert stats == {"count": 3, "mean": 2.0, "min": 1.0, "max": 3.0, "p50": 2.0, "p90": 2.8,
                     "p95": 2.9, "p99": 2.98, "p99.9": 2.998}  # fmt: skip
    assert distribution([]) == {"count": 0}


def record(start: float, **fields: Any) -> dict[str, Any]:
    base = {"name": "chat", "ok": True, "status": 200, "error_class": None, "start": start,
            "e2e_ms": 1000.0, "ttft_ms": 200.0, "itl_ms": [20.0, 20.0], "tpot_ms": 20.0,
            "output_tokens": 3, "output_tokens_source": "usage", "chunks": 3, "stream": "sse",
            "warmup": False, "worker": "w1"}  # fmt: skip
    base.update(fields)
    return base


def test_summary_excludes_warmup_and_keeps_failures_out_of_latencies() -> None:
    records = [record(100.0, warmup=True, ttft_ms=9999.0)]
    records += [record(101.0 + i, ttft_ms=200.0 + i) for i in range(10)]
    records += [record(105.0, ok=False, status=503, error_class="http_503", ttft_ms=1.0,
                       e2e_ms=2.0, worker="w2")]  # fmt: skip
    summary = build_summary(
        records,
        slo={
            "ttft_p99_ms": 300,
            "error_ratio": 0.05,
            "goodput_ttft_ms": 204.5,
            "goodput_fraction": 0.5,
        },
        context={"run_id": "r"},
    )
    assert summary["run_id"] == "r"
    requests = summary["requests"]
    assert (requests["measured"], requests["ok"], requests["failed"]) == (11, 10, 1)
    assert requests["warmup_excluded"] == 1
    assert requests["by_error_class"] == {"http_503": 1}
    assert requests["error_ratio"] == pytest.approx(1 / 11, abs=1e-6)
    ttft = summary["metrics"]["ttft_ms"]
    assert ttft["count"] == 10 and ttft["min"] == 200.0 and ttft["max"] == 209.0
    assert summary["metrics"]["itl_ms"]["count"] == 20
    throughput = summary["throughput"]
    assert throughput["window_s"] == pytest.approx(10.0)  # first start 101, last end 111
    assert throughput["output_tokens_per_s"] == pytest.approx(30 / 10, abs=1e-3)
    assert throughput["observed_concurrency"] == pytest.approx((10 * 1.0 + 0.002) / 10, abs=1e-3)
    goodput = summary["goodput"]
    assert goodput["good"] == 5 and goodput["fraction"] == pytest.approx(5 / 11, abs=1e-6)
    assert summary["workers"] == {"w1": 10, "w2": 1}
    results = {r["key"]: r["passed"] for r in summary["slo"]["results"]}
    assert results == {"ttft_p99_ms": True, "error_ratio": False, "goodput_fraction": False}
    assert summary["slo"]["passed"] is False


def test_constant_pacing_is_evenly_spaced_and_counts_late_sends() -> None:
    now = [0.0]
    pacer = Pacer(4.0, "constant", clock=lambda: now[0])
    slots = [pacer.claim() for _ in range(5)]
    assert slots == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert pacer.lag_ms(slots[1], 0.25 + BEHIND_MS / 2000) == pytest.approx(BEHIND_MS / 2)
    assert pacer.behind == 0
    assert pacer.lag_ms(slots[2], 0.6) == pytest.approx(100.0)
    assert pacer.behind == 1 and pacer.max_lag_ms == pytest.approx(100.0)


def test_poisson_pacing_has_the_asked_mean_rate() -> None:
    pacer = Pacer(50.0, "poisson", seed=3, clock=lambda: 0.0)
    slots = [pacer.claim() for _ in range(5001)]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 50, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(1 / 50, rel=0.1)  # exponential: sd = mean
    pacer.set_rate(100.0)
    assert pacer.rate == 100.0
