"""From per-request records to a run summary: distributions, throughput, goodput, SLOs.

Percentiles interpolate linearly between the two nearest ranks (NumPy's default "linear"
method), on the exact values; nothing is bucketed. Only measured requests count: records
made during the warmup are excluded, and failed requests add to the error counts, never to
the latency distributions (a 401 in 2 ms is not a fast answer). Requests still in flight
when the run ended (``unfinished`` records) are counted apart: neither ok nor failed.

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

from gateprobe.load.slo import GOODPUT_CRITERIA, evaluate

__all__ = [
    "PERCENTILES",
    "build_summary",
    "distribution",
    "measured_records",
    "percentile",
    "read_records",
]

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
LATENCIES = ("ttft_ms", "ttst_ms", "tpot_ms", "e2e_ms", "reasoning_ttft_ms", "schedule_lag_ms")


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


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def measured_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records the summary measures: neither in the warmup nor cut by the run's end."""
    for record in read_records(path):
        if not record.get("warmup") and not record.get("unfinished"):
            yield record


def _good(record: Mapping[str, Any], criteria: Mapping[str, float]) -> bool:
    if not record.get("ok"):
        return False
    for key, field in GOODPUT_CRITERIA.items():
        limit = criteria.get(key)
        if limit is None:
            continue
        value = record.get(field)
        if value is None or value > limit:
            return False
    return True


def build_summary(
    records: Iterable[Mapping[str, Any]],
    *,
    slo: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The summary of a run; ``context`` (run id, profile, target, locust totals, ...) is
    copied in first, so computed sections win over it. ``interrupted``: the run was cut
    short, so no SLO verdict."""
    slo = dict(slo or {})
    measured: list[Mapping[str, Any]] = []
    unfinished: list[Mapping[str, Any]] = []  # still in flight when the run ended
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
    out_tokens = sum(int(r.get("output_tokens") or 0) for r in ok)
    in_tokens = sum(int(r.get("input_tokens") or 0) for r in ok)
    metrics: dict[str, Any] = {}
    for name in LATENCIES:
        metrics[name] = distribution(r[name] for r in ok if r.get(name) is not None)
    metrics["itl_ms"] = distribution(gap for r in ok for gap in r.get("itl_ms") or ())
    metrics["output_tokens"] = distribution(
        r["output_tokens"] for r in ok if r.get("output_tokens") is not None
    )
    metrics["chunks"] = distribution(r["chunks"] for r in ok if r.get("stream"))
    metrics["tokens_per_chunk"] = distribution(
        r["output_tokens"] / r["chunks"]
        for r in ok
        if r.get("stream") and r.get("chunks") and r.get("output_tokens") is not None
    )
    # per-second output tokens, credited at each request's end: the peak a run sustained
    per_second: Counter[int] = Counter()
    for record, end in zip(measured, ends, strict=True):
        if record.get("ok"):
            per_second[int(end)] += int(record.get("output_tokens") or 0)
    criteria = {k: v for k, v in slo.items() if k in GOODPUT_CRITERIA}
    good = sum(1 for r in measured if _good(r, criteria))
    by_name: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
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
        "output_tokens_per_s": round(out_tokens / window, 3) if window > 0 else None,
        "input_tokens": in_tokens,
        "output_tokens": out_tokens,
        "peak_output_tokens_per_s": max(per_second.values()) if per_second else 0,
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
    summary["by_request"] = {
        name: {
            "measured": len(group),
            "failed": sum(1 for r in group if not r.get("ok")),
            "ttft_ms": distribution(
                r["ttft_ms"] for r in group if r.get("ok") and r.get("ttft_ms") is not None
            ),
            "itl_ms": distribution(g for r in group if r.get("ok") for g in r.get("itl_ms") or ()),
            "e2e_ms": distribution(r["e2e_ms"] for r in group if r.get("ok")),
        }
        for name, group in sorted(by_name.items())
    }
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
