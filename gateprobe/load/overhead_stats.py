"""What a gateway adds, from the paired rounds of an overhead run (``overhead.py``).

Each round measured the same load twice, straight at the upstream (*direct*) and through
the gateway: one pair. Per metric and percentile, a pair's difference is gateway - direct;
the overhead reported is the median of the pairs' differences (a pair shares its moment on
the machine, so drift cancels within it and a disturbed round moves only its own pair), and
its spread is the differences' min, quartiles and max. ``direct`` and ``gateway`` are the
medians of each side's per-round values, for reference: the added figure is not their
difference.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from gateprobe.load.summary import percentile

__all__ = [
    "OVERHEAD_METRICS",
    "OVERHEAD_PERCENTILES",
    "added_figures",
    "format_table",
    "request_figures",
]

OVERHEAD_METRICS = ("ttft_ms", "ttst_ms", "itl_ms", "tpot_ms", "e2e_ms")
OVERHEAD_PERCENTILES = ("p50", "p90", "p95", "p99")
_TABLE_METRICS = ("ttft_ms", "itl_ms", "e2e_ms")  # the table printed; overhead.json has all

Pair = tuple[Mapping[str, Any], Mapping[str, Any]]  # (direct summary, gateway summary)


def _value(summary: Mapping[str, Any], metric: str, stat: str) -> float | None:
    stats = (summary.get("metrics") or {}).get(metric) or {}
    value = stats.get(stat) if stats.get("count") else None
    return float(value) if isinstance(value, int | float) else None


def _spread(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": round(ordered[0], 3),
        "p25": round(percentile(ordered, 25), 3),
        "p75": round(percentile(ordered, 75), 3),
        "max": round(ordered[-1], 3),
    }


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def added_figures(pairs: Sequence[Pair]) -> dict[str, Any]:
    """Per metric, per percentile: direct, gateway, added (median of the pairs'
    differences), added_spread and per_round. A metric neither side measured is left out; a
    pair where one side has no value counts in per_round only."""
    out: dict[str, Any] = {}
    for metric in OVERHEAD_METRICS:
        if not any(_value(s, metric, "count") for pair in pairs for s in pair):
            continue
        per_stat: dict[str, Any] = {}
        for stat in OVERHEAD_PERCENTILES:
            rounds = []
            for direct, gateway in pairs:
                d, g = _value(direct, metric, stat), _value(gateway, metric, stat)
                added = round(g - d, 3) if d is not None and g is not None else None
                rounds.append({"direct": d, "gateway": g, "added": added})
            differences = [r["added"] for r in rounds if r["added"] is not None]
            per_stat[stat] = {
                "direct": _median([r["direct"] for r in rounds if r["direct"] is not None]),
                "gateway": _median([r["gateway"] for r in rounds if r["gateway"] is not None]),
                "added": _median(differences),
                "added_spread": _spread(differences) if differences else None,
                "pairs": len(differences),
                "per_round": rounds,
            }
        out[metric] = per_stat
    return out


def request_figures(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One side's request counts and rates per round, and their medians."""
    per_round = []
    for summary in summaries:
        requests = summary.get("requests") or {}
        per_round.append(
            {
                "measured": requests.get("measured"),
                "ok": requests.get("ok"),
                "failed": requests.get("failed"),
                "error_ratio": requests.get("error_ratio"),
                "requests_per_s": (summary.get("throughput") or {}).get("requests_per_s"),
            }
        )
    rates = [float(r["requests_per_s"]) for r in per_round if r["requests_per_s"] is not None]
    return {
        "requests_per_s": _median(rates),
        "failed": sum(int(r["failed"] or 0) for r in per_round),
        "per_round": per_round,
    }


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def format_table(figures: Mapping[str, Any]) -> str:
    """The compact table: per metric and percentile, both sides and what the gateway adds
    (median and min..max over the pairs), in ms."""
    lines = [
        f"{'metric':<10}{'pct':<5}{'direct':>10}{'gateway':>10}{'added':>10}  "
        "added min..max over pairs"
    ]
    for metric in _TABLE_METRICS:
        per_stat = figures.get(metric)
        if not per_stat:
            continue
        for stat in OVERHEAD_PERCENTILES:
            row = per_stat[stat]
            spread = row["added_spread"]
            span = f"{spread['min']:+.2f} .. {spread['max']:+.2f}" if spread else "-"
            lines.append(
                f"{metric.removesuffix('_ms'):<10}{stat:<5}{_cell(row['direct']):>10}"
                f"{_cell(row['gateway']):>10}{_cell(row['added'], True):>10}  {span}"
            )
    return "\n".join(lines)
