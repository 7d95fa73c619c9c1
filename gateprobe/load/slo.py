"""SLO thresholds for load runs: parsing ``key=value``, merging, judging a summary.

Keys (all numbers; latencies in milliseconds):

    <metric>_<stat>_ms         upper bound; metric ttft | ttst | itl | tpot | e2e,
                               stat p50 | p90 | p95 | p99 | p999 | mean
    error_ratio                upper bound on failed / all measured requests
    min_output_tokens_per_s    lower bound on output tokens per second (all requests)
    min_requests_per_s         lower bound on completed requests per second
    goodput_fraction           lower bound on the fraction of requests that are "good":
                               succeeded and met every goodput_* criterion below
    goodput_ttft_ms, goodput_tpot_ms, goodput_e2e_ms
                               per-request criteria of a good request (not thresholds)

Precedence: the target profile's ``slo`` < the load profile's ``slo`` < ``--slo`` options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateprobe.errors import UsageError

__all__ = [
    "GOODPUT_CRITERIA",
    "SloResult",
    "evaluate",
    "is_slo_key",
    "parse_slo_options",
]

_LATENCY = re.compile(r"^(ttft|ttst|itl|tpot|e2e)_(p50|p90|p95|p99|p999|mean)_ms$")
_STAT_NAME = {"p999": "p99.9"}
GOODPUT_CRITERIA = {
    "goodput_ttft_ms": "ttft_ms",
    "goodput_tpot_ms": "tpot_ms",
    "goodput_e2e_ms": "e2e_ms",
}
_OTHER = {"error_ratio", "min_output_tokens_per_s", "min_requests_per_s", "goodput_fraction"}


def is_slo_key(key: str) -> bool:
    return bool(_LATENCY.match(key)) or key in _OTHER or key in GOODPUT_CRITERIA


def parse_slo_options(options: Iterable[str]) -> dict[str, float]:
    """``["ttft_p99_ms=500", "error_ratio=0.01"]`` -> a dict; UsageError on a bad item."""
    out: dict[str, float] = {}
    for item in options:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--slo {item!r}: expected key=value (e.g. ttft_p99_ms=500)")
        if not is_slo_key(key):
            raise UsageError(
                f"--slo {item!r}: unknown key {key!r} (known: <ttft|ttst|itl|tpot|e2e>_"
                "<p50|p90|p95|p99|p999|mean>_ms, error_ratio, min_output_tokens_per_s, "
                "min_requests_per_s, goodput_fraction, goodput_ttft_ms, goodput_tpot_ms, "
                "goodput_e2e_ms)"
            )
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--slo {item!r}: {value!r} is not a number") from None
        if number < 0:
            raise UsageError(f"--slo {item!r}: must be >= 0")
        out[key] = number
    return out


@dataclass(frozen=True)
class SloResult:
    key: str
    threshold: float
    actual: float | None
    passed: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "threshold": self.threshold,
            "actual": self.actual,
            "passed": self.passed,
            "message": self.message,
        }


def evaluate(thresholds: Mapping[str, float], summary: Mapping[str, Any]) -> list[SloResult]:
    """Judge ``summary`` (see ``summary.build_summary``) against every threshold.

    A latency threshold with no samples (e.g. ITL when nothing streamed) fails: an SLO that
    cannot be measured is not met.
    """
    results: list[SloResult] = []
    metrics: Mapping[str, Any] = summary.get("metrics", {})
    totals: Mapping[str, Any] = summary.get("requests", {})
    throughput: Mapping[str, Any] = summary.get("throughput", {})
    for key in sorted(thresholds):
        threshold = float(thresholds[key])
        match = _LATENCY.match(key)
        actual: float | None
        if match:
            metric, stat = match.group(1), _STAT_NAME.get(match.group(2), match.group(2))
            actual = (metrics.get(f"{metric}_ms") or {}).get(stat)
            results.append(_upper(key, threshold, actual, f"{metric.upper()} {stat}", "ms"))
        elif key == "error_ratio":
            actual = totals.get("error_ratio")
            results.append(_upper(key, threshold, actual, "error ratio", ""))
        elif key == "min_output_tokens_per_s":
            actual = throughput.get("output_tokens_per_s")
            results.append(_lower(key, threshold, actual, "output tokens/s"))
        elif key == "min_requests_per_s":
            actual = throughput.get("requests_per_s")
            results.append(_lower(key, threshold, actual, "requests/s"))
        elif key == "goodput_fraction":
            actual = (summary.get("goodput") or {}).get("fraction")
            results.append(_lower(key, threshold, actual, "goodput fraction"))
    return results


def _upper(key: str, threshold: float, actual: float | None, label: str, unit: str) -> SloResult:
    suffix = f" {unit}" if unit else ""
    if actual is None:
        return SloResult(key, threshold, None, False, f"{label}: no samples (limit {threshold:g})")
    passed = actual <= threshold
    verb = "<=" if passed else ">"
    return SloResult(
        key, threshold, actual, passed, f"{label} {actual:.6g}{suffix} {verb} {threshold:g}{suffix}"
    )


def _lower(key: str, threshold: float, actual: float | None, label: str) -> SloResult:
    if actual is None:
        return SloResult(
            key, threshold, None, False, f"{label}: no samples (minimum {threshold:g})"
        )
    passed = actual >= threshold
    verb = ">=" if passed else "<"
    return SloResult(key, threshold, actual, passed, f"{label} {actual:.6g} {verb} {threshold:g}")
