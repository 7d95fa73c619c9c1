"""Inline SVG plots for the HTML reports (matplotlib, without pyplot's global state).

Each plot is returned as the text of one ``<svg>`` element, ready to be placed in a page:
the XML prolog, the DOCTYPE and the metadata block (which name matplotlib's web site) are
cut, so a report references no network resource, and the fixed width and height give way to
the viewBox, so the plot scales with the page. Text stays text (``svg.fonttype: none``).

Distributions are drawn from quantiles, never from every sample: an hour's run has millions
of inter-token gaps, and a curve of 400 points looks the same and keeps the page small.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gateprobe.load.record import RequestRecord
from gateprobe.load.summary import percentile

__all__ = ["PALETTE", "cdf_svg", "histogram_svg", "over_time_svg"]

# Paul Tol's "bright" scheme: distinguishable by colour-blind readers too
PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
_POINTS = 400
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d8dee4",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#8c959f",
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "legend.frameon": False,
}


def _figure(width: float, height: float, rows: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True) if rows > 1 else figure.subplots()
    return figure, axes


def _svg(figure: Any, salt: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    # the salt keeps clip-path ids apart between the plots of one page (and stable)
    with matplotlib.rc_context({**_RC, "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    text = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
        r'<svg\1 width="100%" preserveAspectRatio="xMidYMid meet" role="img"',
        text,
        count=1,
    )
    return text


def _quantiles(ordered: Sequence[float]) -> tuple[list[float], list[float]]:
    """(values, cumulative fractions) at up to ``_POINTS`` evenly spaced ranks."""
    count = len(ordered)
    if count <= _POINTS:
        return list(ordered), [(i + 1) / count for i in range(count)]
    fractions = [i / (_POINTS - 1) for i in range(_POINTS)]
    return [percentile(ordered, f * 100) for f in fractions], fractions


def histogram_svg(values: Sequence[float], title: str, unit: str, salt: str) -> str:
    """One distribution: a histogram with its p50 and p99 marked."""
    import matplotlib

    ordered = sorted(values)
    with matplotlib.rc_context(_RC):
        figure, axis = _figure(6.4, 3.2)
        bins = min(80, max(10, int(math.sqrt(len(ordered)))))
        axis.hist(ordered, bins=bins, color=PALETTE[0], alpha=0.85)
        for q, style in ((50, "--"), (99, ":")):
            mark = percentile(ordered, q)
            axis.axvline(mark, color="#cc3311", linestyle=style, label=f"p{q} {mark:.2f} {unit}")
        axis.set_title(f"{title} ({len(ordered)} samples)")
        axis.set_xlabel(unit)
        axis.set_ylabel("count")
        axis.legend(loc="upper right")
    return _svg(figure, salt)


def cdf_svg(series: Sequence[tuple[str, Sequence[float]]], title: str, unit: str, salt: str) -> str:
    """Several distributions overlaid as cumulative curves (one per label)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure, axis = _figure(6.4, 3.2)
        for index, (label, values) in enumerate(series):
            ordered = sorted(values)
            if not ordered:
                continue
            xs, ys = _quantiles(ordered)
            axis.plot(
                xs,
                ys,
                color=PALETTE[index % len(PALETTE)],
                linewidth=1.6,
                drawstyle="steps-post",
                label=f"{label}: p50 {percentile(ordered, 50):.2f}, p99 "
                f"{percentile(ordered, 99):.2f} {unit}",
            )
        axis.set_ylim(0, 1.02)
        axis.set_title(title)
        axis.set_xlabel(unit)
        axis.set_ylabel("fraction of samples ≤ x")
        axis.legend(loc="lower right", fontsize=8)
    return _svg(figure, salt)


def over_time_svg(records: Sequence[RequestRecord], salt: str) -> str | None:
    """TTFT (p50, p99 per window) and output tokens/s and requests/s over the run."""
    import matplotlib

    if not records:
        return None
    origin = min(float(r["start"]) for r in records)
    ends = [float(r["start"]) + float(r["e2e_ms"]) / 1000.0 - origin for r in records]
    span = max(ends) if ends else 0.0
    # about 100 points whatever the run's length; 1 s for a short run
    step = max(1, math.ceil(span / 100))
    window = max(2 * step, math.ceil(span / 40))
    tokens: dict[int, int] = defaultdict(int)
    done: dict[int, int] = defaultdict(int)
    failed: dict[int, int] = defaultdict(int)
    ttft: dict[int, list[float]] = defaultdict(list)
    for record, end in zip(records, ends, strict=True):
        bucket = int(end // step) * step
        if record.get("ok"):
            done[bucket] += 1
            tokens[bucket] += int(record.get("output_tokens") or 0)
            value = record.get("ttft_ms")
            if value is not None:
                ttft[int(end // window) * window].append(float(value))
        else:
            failed[bucket] += 1
    buckets = list(range(0, int(span // step) * step + 1, step))
    with matplotlib.rc_context(_RC):
        figure, (top, bottom) = _figure(6.4, 4.6, rows=2)
        starts = sorted(ttft)
        for q, style in ((50, "-"), (99, ":")):
            ys = [percentile(sorted(ttft[s]), q) for s in starts]
            xs = [s + window / 2 for s in starts]
            top.plot(xs, ys, linestyle=style, marker=".", color=PALETTE[0], label=f"TTFT p{q}")
        top.set_ylabel("ms")
        top.set_title(f"TTFT per {window} s window")
        top.legend(loc="upper right", fontsize=8)
        top.set_ylim(bottom=0)
        xs = [b + step / 2 for b in buckets]
        bottom.plot(xs, [tokens[b] / step for b in buckets], color=PALETTE[2], label="output tok/s")
        bottom.set_ylabel("tokens/s")
        bottom.set_ylim(bottom=0)
        rates = bottom.twinx()
        rates.plot(xs, [done[b] / step for b in buckets], color=PALETTE[0], label="ok req/s")
        if any(failed.values()):
            rates.plot(xs, [failed[b] / step for b in buckets], color="#cc3311", label="failed")
        rates.set_ylabel("requests/s")
        rates.set_ylim(bottom=0)
        rates.grid(False)
        lines = bottom.get_lines() + rates.get_lines()
        bottom.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
        bottom.set_title(f"Throughput per {step} s (by request end)")
        bottom.set_xlabel("seconds since the first measured request")
    return _svg(figure, salt)
