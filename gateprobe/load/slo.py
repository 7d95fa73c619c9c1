"""SLO thresholds for load runs: parsing ``key=value``, merging, judging a summary.

Keys (all numbers; latencies in milliseconds), from ``record.METRICS`` and the run's own
figures (``RUN_KEYS``):

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from gateprobe.errors import UsageError
from gateprobe.load.record import METRICS, SLO_STATS, Metric

__all__ = [
    "GOODPUT_CRITERIA",
    "GOODPUT_METRICS",
    "RUN_KEYS",
    "SloResult",
    "evaluate",
    "is_slo_key",
    "parse_slo_options",
]


class RunKey(NamedTuple):
    """An SLO on one of the run's own figures: ``summary[section][field]``."""

    section: str
    field: str
    label: str
    bound: Literal["upper", "lower"]


RUN_KEYS = {
    "error_ratio": RunKey("requests", "error_ratio", "error ratio", "upper"),
    "min_requests_per_s": RunKey("throughput", "requests_per_s", "requests/s", "lower"),
    "goodput_fraction": RunKey("goodput", "fraction", "goodput fraction", "lower"),
}
# <metric>_<stat>_ms: (the metric, the statistic of its distribution)
_LATENCY_KEYS: dict[str, tuple[Metric, str]] = {
    f"{metric.slo}_{stat}_ms": (metric, name)
    for metric in METRICS
    if metric.slo and metric.latency
    for stat, name in SLO_STATS.items()
}
# min_<metric>_per_s: a lower bound on a token count's rate over the window
_RATE_KEYS = {metric.rate_key: metric for metric in METRICS if metric.rate_slo}
GOODPUT_METRICS: dict[str, Metric] = {
    metric.goodput_key: metric for metric in METRICS if metric.goodput_key is not None
}
GOODPUT_CRITERIA = {key: metric.name for key, metric in GOODPUT_METRICS.items()}
_STEMS = "|".join(metric.slo for metric in METRICS if metric.slo and metric.latency)
_KNOWN = ", ".join(
    [
        f"<{_STEMS}>_<{'|'.join(SLO_STATS)}>_ms",
        "error_ratio",
        *_RATE_KEYS,
        *(key for key in RUN_KEYS if key != "error_ratio"),
        *GOODPUT_METRICS,
    ]
)


def is_slo_key(key: str) -> bool:
    return key in _LATENCY_KEYS or key in _RATE_KEYS or key in RUN_KEYS or key in GOODPUT_METRICS


def parse_slo_options(options: Iterable[str]) -> dict[str, float]:
    """``["ttft_p99_ms=500", "error_ratio=0.01"]`` -> a dict; UsageError on a bad item."""
    out: dict[str, float] = {}
    for item in options:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--slo {item!r}: expected key=value (e.g. ttft_p99_ms=500)")
        if not is_slo_key(key):
            raise UsageError(f"--slo {item!r}: unknown key {key!r} (known: {_KNOWN})")
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
    throughput: Mapping[str, Any] = summary.get("throughput", {})
    for key in sorted(thresholds):
        threshold = float(thresholds[key])
        actual: float | None
        latency = _LATENCY_KEYS.get(key)
        rate = _RATE_KEYS.get(key)
        run = RUN_KEYS.get(key)
        if latency is not None:
            metric, stat = latency
            actual = (metrics.get(metric.name) or {}).get(stat)
            results.append(_upper(key, threshold, actual, f"{metric.label} {stat}", metric.unit))
        elif rate is not None:
            actual = throughput.get(f"{rate.name}_per_s")
            results.append(_lower(key, threshold, actual, f"{rate.name.replace('_', ' ')}/s"))
        elif run is not None:
            actual = (summary.get(run.section) or {}).get(run.field)
            if run.bound == "upper":
                results.append(_upper(key, threshold, actual, run.label, ""))
            else:
                results.append(_lower(key, threshold, actual, run.label))
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
