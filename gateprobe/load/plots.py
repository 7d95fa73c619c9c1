"""PNG plots of a load run from its requests.jsonl (matplotlib, headless).

    ttft.png         TTFT distribution (histogram, p50/p99 marked)
    itl.png          inter-token gap distribution
    over_time.png    requests/s and output (and input) tokens/s per second; TTFT and
                     end-to-end p50/p99 per 5 s window

Which metrics are drawn, and how, is ``record.METRICS``' say (``plot``, ``over_time``,
``total``).

``python -m gateprobe.load.plots reports/load/<run-id>`` redraws them (e.g. after a
standalone ``locust -f`` run).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateprobe.load.record import METRICS, RequestRecord
from gateprobe.load.summary import measured_records, percentile

__all__ = ["plot_run"]

_TOKEN_COLORS = ("#228833", "#aa3377", "#66ccee")


def plot_run(report_dir: Path) -> list[Path]:
    """Draw the plots next to requests.jsonl; returns the files written ([] without
    matplotlib or without measured requests)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    records = list(measured_records(report_dir / "requests.jsonl"))
    if not records:
        return []
    ok = [r for r in records if r.get("ok")]
    written: list[Path] = []
    for metric in METRICS:
        if metric.plot is None:
            continue
        values = sorted(metric.samples(ok))
        name, title = f"{metric.slo}.png", metric.plot
        if not values:
            continue
        figure, axis = plt.subplots(figsize=(8, 4.5))
        axis.hist(values, bins=min(100, max(10, len(values) // 20)), color="#4477aa")
        for q, style in ((50, "--"), (99, ":")):
            mark = percentile(values, q)
            axis.axvline(
                mark, color="#cc3311", linestyle=style, label=f"p{q} {mark:.2f} {metric.unit}"
            )
        axis.set_title(f"{title} ({len(values)} samples)")
        axis.set_xlabel(metric.unit)
        axis.set_ylabel("count")
        axis.legend()
        figure.tight_layout()
        path = report_dir / name
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    written.append(_over_time(plt, records, report_dir / "over_time.png"))
    return written


def _over_time(plt: Any, records: Sequence[RequestRecord], path: Path) -> Path:
    origin = min(float(r["start"]) for r in records)
    totals = [metric for metric in METRICS if metric.total]
    lines = [metric for metric in METRICS if metric.over_time]
    # ok, failed, then each total's sum
    per_second: dict[int, list[int]] = defaultdict(lambda: [0] * (2 + len(totals)))
    # each over_time metric's values
    windows: dict[int, list[list[float]]] = defaultdict(lambda: [[] for _ in lines])
    for record in records:
        end = float(record["start"]) + float(record["e2e_ms"]) / 1000.0 - origin
        bucket = per_second[int(end)]
        if record.get("ok"):
            bucket[0] += 1
            for index, metric in enumerate(totals, 2):
                bucket[index] += metric.sum((record,))
            window = windows[int(end // 5) * 5]
            for values, metric in zip(window, lines, strict=True):
                values.extend(metric.samples((record,)))
        else:
            bucket[1] += 1
    seconds = sorted(per_second)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot(seconds, [per_second[s][0] for s in seconds], label="ok requests/s")
    top.plot(
        seconds, [per_second[s][1] for s in seconds], label="failed requests/s", color="#cc3311"
    )
    top.set_ylabel("requests/s")
    tokens = top.twinx()
    for index, metric in enumerate(totals):
        tokens.plot(
            seconds,
            [per_second[s][2 + index] for s in seconds],
            color=_TOKEN_COLORS[index % len(_TOKEN_COLORS)],
            alpha=0.6,
            label=f"{metric.name.replace('_', ' ')}/s",
        )
    tokens.set_ylabel("tokens/s", color=_TOKEN_COLORS[0])
    tokens.set_ylim(bottom=0)
    tokens.legend(loc="upper right")
    top.set_ylim(bottom=0)
    top.legend(loc="upper left")
    top.set_title("Throughput and latency over time")
    starts = sorted(windows)
    for index, label in enumerate(metric.label for metric in lines):
        xs = [s for s in starts if windows[s][index]]
        for q, style in ((50, "-"), (99, ":")):
            ys = [percentile(sorted(windows[s][index]), q) for s in xs]
            bottom.plot([x + 2.5 for x in xs], ys, linestyle=style, label=f"{label} p{q}")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("seconds since the first request")
    bottom.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


if __name__ == "__main__":  # pragma: no cover - a convenience entry point
    for written_path in plot_run(Path(sys.argv[1])):
        print(written_path)
