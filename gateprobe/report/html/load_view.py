"""The load report: a load run's summary.json and requests.jsonl -> report.html.

The figures are the summary's (gateprobe/load/summary.py computed them); the plots are drawn
from the measured records (warmup and unfinished requests left out, as in the summary), the
distributions from the requests that succeeded only, as the summary's are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateprobe.load.record import METRICS_BY_NAME, RequestRecord
from gateprobe.load.summary import measured_records
from gateprobe.report.html import plots
from gateprobe.report.html.render import render

__all__ = ["DISTRIBUTIONS", "STATS", "load_context", "metric_rows", "write_load_report"]

STATS = ("p50", "p90", "p95", "p99", "p99.9", "mean")
# the distributions drawn, and their titles
DISTRIBUTIONS = {
    "ttft_ms": "Time to first token",
    "itl_ms": "Inter-token latency (every gap)",
    "e2e_ms": "End-to-end latency",
}


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metrics with samples, in the summary's order, each with its unit and meaning."""
    rows = []
    for name, stats in metrics.items():
        if not isinstance(stats, Mapping) or not stats.get("count"):
            continue
        metric = METRICS_BY_NAME.get(name)
        rows.append(
            {
                "name": name,
                "unit": metric.unit if metric else "",
                "description": metric.description if metric else "",
                "stats": stats,
            }
        )
    return rows


def distribution_plots(records: Sequence[RequestRecord], salt: str) -> list[str]:
    ok = [r for r in records if r.get("ok")]
    drawn = []
    for name, title in DISTRIBUTIONS.items():
        values = list(METRICS_BY_NAME[name].samples(ok))
        if values:
            unit = METRICS_BY_NAME[name].unit
            drawn.append(plots.histogram_svg(values, title, unit, f"{salt}-{name}"))
    return drawn


def load_context(summary: Mapping[str, Any], records: Sequence[RequestRecord]) -> dict[str, Any]:
    slo = summary.get("slo") or {}
    figures = distribution_plots(records, "load")
    over_time = plots.over_time_svg(records, "load-over-time")
    if over_time is not None:
        figures.append(over_time)
    return {
        "summary": summary,
        "profile": summary.get("profile") or {},
        "target": summary.get("target") or {},
        "requests": summary.get("requests") or {},
        "throughput": summary.get("throughput") or {},
        "goodput": summary.get("goodput") or {},
        "window": summary.get("window") or {},
        "slo": slo,
        "slo_results": list(slo.get("results") or ()),
        "metric_rows": metric_rows(summary.get("metrics") or {}),
        "stats": STATS,
        "by_request": summary.get("by_request") or {},
        "warnings": list(summary.get("warnings") or ()),
        "plots": figures,
    }


def write_load_report(load_dir: Path) -> Path:
    """load_dir/summary.json and requests.jsonl -> load_dir/report.html."""
    summary = json.loads((load_dir / "summary.json").read_text("utf-8"))
    records = list(measured_records(load_dir / "requests.jsonl"))
    return render("load.html.j2", load_dir / "report.html", **load_context(summary, records))
