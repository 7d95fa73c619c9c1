"""From per-request records to a run summary: distributions, throughput, goodput, SLOs.

Percentiles interpolate linearly between the two nearest ranks (NumPy's default "linear"
method), on the exact values; nothing is bucketed. Only measured requests count: records
made during the warmup are excluded, and failed requests add to the error counts, never to
the latency distributions (a 401 in 2 ms is not a fast answer). Requests still in flight
when the run ended (``unfinished`` records) are counted apart: neither ok nor failed.

The figures come from ``record.METRICS``: a distribution of each in ``metrics``; the token
counts (``total``) summed in ``throughput`` (a total, per second over the window, and the
peak second); the ``by_request`` metrics and totals per request name.

An interrupted run (Ctrl-C, SIGTERM) is summarized from what ran, with ``"interrupted":
true``; its SLO results are computed for information but give no verdict (``passed`` is
null): a partial run says nothing about whether the target meets them.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateprobe.load.record import METRICS, RequestRecord
from gateprobe.load.slo import GOODPUT_METRICS, evaluate

__all__ = [
    "PERCENTILES",
    "build_summary",
    "distribution",
    "measured_records",
    "percentile",
    "read_records",
]

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
TOTALS = tuple(metric for metric in METRICS if metric.total)
BY_REQUEST = tuple(metric for metric in METRICS if metric.by_request)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of an already sorted, non-empty sequence."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Iterable[float]) -> dict[str, float | int]:
    """count, mean, min, max and p50/p90/p95/p99/p99.9 (``{"count": 0}`` when empty)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    out: dict[str, float | int] = {
        "count": len(ordered),
        "mean": round(math.fsum(ordered) / len(ordered), 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
    }
    for q in PERCENTILES:
        out[f"p{q:g}"] = round(percentile(ordered, q), 4)
    return out


def read_records(path: Path) -> Iterator[RequestRecord]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record: RequestRecord = json.loads(line)
                yield record


def measured_records(path: Path) -> Iterator[RequestRecord]:
    """The records the summary measures: neither in the warmup nor cut by the run's end."""
    for record in read_records(path):
        if not record.get("warmup") and not record.get("unfinished"):
            yield record


def _good(record: RequestRecord, criteria: Mapping[str, float]) -> bool:
    if not record.get("ok"):
        return False
    for key, metric in GOODPUT_METRICS.items():
        limit = criteria.get(key)
        if limit is None:
            continue
        value = metric.read(record) if metric.read is not None else None
        if value is None or value > limit:
            return False
    return True


def _totals(
    records: Sequence[RequestRecord], ends: Sequence[float], window: float
) -> dict[str, Any]:
    """Each token count's total over the succeeded ``records``, per second over the window,
    and in the peak second (credited at each request's end: the peak a run sustained)."""
    out: dict[str, Any] = {}
    for metric in TOTALS:
        read = metric.read
        assert read is not None
        total = 0
        per_second: Counter[int] = Counter()
        for record, end in zip(records, ends, strict=True):
            if record.get("ok"):
                count = int(read(record) or 0)
                total += count
                per_second[int(end)] += count
        out[metric.name] = total
        out[f"{metric.name}_per_s"] = round(total / window, 3) if window > 0 else None
        out[f"peak_{metric.name}_per_s"] = max(per_second.values()) if per_second else 0
    return out


def build_summary(
    records: Iterable[RequestRecord],
    *,
    slo: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The summary of a run; ``context`` (run id, profile, target, locust totals, ...) is
    copied in first, so computed sections win over it. ``interrupted``: the run was cut
    short, so no SLO verdict."""
    slo = dict(slo or {})
    measured: list[RequestRecord] = []
    unfinished: list[RequestRecord] = []  # still in flight when the run ended
    warmup = 0
    for record in records:
        if record.get("unfinished"):
            unfinished.append(record)
        elif record.get("warmup"):
            warmup += 1
        else:
            measured.append(record)
    ok = [r for r in measured if r.get("ok")]
    failed = len(measured) - len(ok)
    starts = [float(r["start"]) for r in measured]
    ends = [float(r["start"]) + float(r["e2e_ms"]) / 1000.0 for r in measured]
    given = (context or {}).get("window") or {}
    if given.get("wall_s") is not None:  # the run's own window: opened to closed
        window = float(given["wall_s"])
    else:  # records alone: their span
        window = (max(ends) - min(starts)) if measured else 0.0
    metrics = {metric.name: distribution(metric.samples(ok)) for metric in METRICS}
    criteria = {k: v for k, v in slo.items() if k in GOODPUT_METRICS}
    good = sum(1 for r in measured if _good(r, criteria))
    by_name: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in measured:
        by_name[str(record.get("name"))].append(record)
    summary: dict[str, Any] = dict(context or {})
    summary["interrupted"] = interrupted
    summary["requests"] = {
        "measured": len(measured),
        "ok": len(ok),
        "failed": failed,
        "warmup_excluded": warmup,
        "unfinished": len(unfinished),
        "unfinished_max_in_flight_ms": (
            max(float(r["e2e_ms"]) for r in unfinished) if unfinished else None
        ),
        "error_ratio": round(failed / len(measured), 6) if measured else None,
        "by_error_class": dict(Counter(r["error_class"] for r in measured if r.get("error_class"))),
        "by_status": {
            str(k): v for k, v in sorted(Counter(r.get("status") for r in measured).items())
        },
        "output_tokens_source": dict(
            Counter(r["output_tokens_source"] for r in ok if r.get("output_tokens_source"))
        ),
    }
    summary["throughput"] = {
        "window_s": round(window, 3),
        "requests_per_s": round(len(ok) / window, 3) if window > 0 else None,
        # output_tokens, output_tokens_per_s, peak_output_tokens_per_s; input_tokens, ...
        **_totals(measured, ends, window),
        # Little's law: mean requests in flight over the window
        "observed_concurrency": (
            round(math.fsum(float(r["e2e_ms"]) for r in measured) / 1000.0 / window, 3)
            if window > 0
            else None
        ),
    }
    summary["goodput"] = {
        "criteria": criteria,
        "good": good,
        "fraction": round(good / len(measured), 6) if measured else None,
        "requests_per_s": round(good / window, 3) if window > 0 else None,
    }
    summary["metrics"] = metrics
    summary["by_request"] = {name: _by_request(group) for name, group in sorted(by_name.items())}
    summary["workers"] = dict(
        sorted(Counter(str(r.get("worker", "local")) for r in measured).items())
    )
    results = evaluate(slo, summary)
    summary["slo"] = {
        "thresholds": slo,
        "results": [r.as_dict() for r in results],
        "passed": None if interrupted else all(r.passed for r in results),
    }
    if interrupted:
        summary["slo"]["partial"] = True  # results of what ran, for information only
    return summary


def _by_request(group: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in group if r.get("ok")]
    out: dict[str, Any] = {"measured": len(group), "failed": len(group) - len(ok)}
    for metric in BY_REQUEST:
        out[metric.name] = distribution(metric.samples(ok))
    for metric in TOTALS:
        out[metric.name] = metric.sum(ok)
    return out
