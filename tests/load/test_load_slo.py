"""SLO keys: parsing --slo options and judging a summary."""

from __future__ import annotations

import pytest

from gateprobe.errors import UsageError
from gateprobe.load.slo import evaluate, parse_slo_options

SUMMARY = {
    "metrics": {"ttft_ms": {"p50": 200.0, "p99": 260.0, "p99.9": 300.0}, "itl_ms": {"count": 0}},
    "requests": {"error_ratio": 0.02},
    "throughput": {"output_tokens_per_s": 500.0, "requests_per_s": 20.0},
    "goodput": {"fraction": 0.9},
}


def test_parse_options() -> None:
    parsed = parse_slo_options(["ttft_p99_ms=500", "error_ratio=0.01", "itl_p999_ms=80"])
    assert parsed == {"ttft_p99_ms": 500.0, "error_ratio": 0.01, "itl_p999_ms": 80.0}


@pytest.mark.parametrize(
    ("item", "message"),
    [("ttft_p99_ms", "key=value"), ("ttft_p97_ms=3", "unknown key"),
     ("ttft_p99_ms=fast", "not a number"), ("error_ratio=-1", ">= 0")],
)  # fmt: skip
def test_bad_options(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_slo_options([item])


def test_thresholds_pass_and_fail_with_readable_messages() -> None:
    results = {
        r.key: r
        for r in evaluate(
            {
                "ttft_p99_ms": 300,
                "ttft_p50_ms": 150,
                "ttft_p999_ms": 300,
                "itl_p99_ms": 50,
                "error_ratio": 0.01,
                "min_output_tokens_per_s": 400,
                "min_requests_per_s": 25,
                "goodput_fraction": 0.95,
                "goodput_ttft_ms": 500,  # a criterion, not a threshold: not judged itself
            },
            SUMMARY,
        )
    }
    assert "goodput_ttft_ms" not in results
    passed = {k for k, r in results.items() if r.passed}
    assert passed == {"ttft_p99_ms", "ttft_p999_ms", "min_output_tokens_per_s"}
    assert results["ttft_p50_ms"].message == "TTFT p50 200 ms > 150 ms"
    assert results["itl_p99_ms"].actual is None and "no samples" in results["itl_p99_ms"].message
    assert results["error_ratio"].message == "error ratio 0.02 > 0.01"
    assert results["min_requests_per_s"].message == "requests/s 20 < 25"
