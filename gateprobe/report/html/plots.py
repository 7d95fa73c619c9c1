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

__all__ = ["PALETTE", "cdf_svg", "histogram_svg", "over_time_overlay_svg", "over_time_svg"]

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


class _Timeline:
    """A run's requests on seconds since its first measured one: per ``step`` for rates,
    per ``window`` (wider: a percentile wants samples) for TTFT; about 100 points whatever
    the run's length, 1 s steps for a short run."""

    def __init__(self, records: Sequence[RequestRecord]) -> None:
        origin = min(float(r["start"]) for r in records)
        self.records = records
        self.ends = [float(r["start"]) + float(r["e2e_ms"]) / 1000.0 - origin for r in records]
        span = max(self.ends)
        self.step = max(1, math.ceil(span / 100))
        self.window = max(2 * self.step, math.ceil(span / 40))
        self.buckets = list(range(0, int(span // self.step) * self.step + 1, self.step))

    def per_step(self, value: Any) -> list[float]:
        """``value(record)`` summed per step, per second, for every step of the run."""
        totals: dict[int, float] = defaultdict(float)
        for record, end in zip(self.records, self.ends, strict=True):
            totals[int(end // self.step) * self.step] += value(record)
        return [totals[b] / self.step for b in self.buckets]

    @property
    def step_centres(self) -> list[float]:
        return [b + self.step / 2 for b in self.buckets]

    def ttft(self, q: float) -> tuple[list[float], list[float]]:
        """The succeeded requests' TTFT ``q``-th percentile per window: (centres, values)."""
        found: dict[int, list[float]] = defaultdict(list)
        for record, end in zip(self.records, self.ends, strict=True):
            value = record.get("ttft_ms")
            if record.get("ok") and value is not None:
                found[int(end // self.window) * self.window].append(float(value))
        starts = sorted(found)
        return (
            [s + self.window / 2 for s in starts],
            [percentile(sorted(found[s]), q) for s in starts],
        )


def _ok_tokens(record: RequestRecord) -> float:
    return float(record.get("output_tokens") or 0) if record.get("ok") else 0.0


def over_time_svg(records: Sequence[RequestRecord], salt: str) -> str | None:
    """TTFT (p50, p99 per window) and output tokens/s and requests/s over the run."""
    import matplotlib

    if not records:
        return None
    line = _Timeline(records)
    xs = line.step_centres
    failed = line.per_step(lambda r: 0.0 if r.get("ok") else 1.0)
    with matplotlib.rc_context(_RC):
        figure, (top, bottom) = _figure(6.4, 4.6, rows=2)
        for q, style in ((50, "-"), (99, ":")):
            top.plot(*line.ttft(q), linestyle=style, marker=".", color=PALETTE[0],
                     label=f"TTFT p{q}")  # fmt: skip
        top.set_ylabel("ms")
        top.set_title(f"TTFT per {line.window} s window")
        top.legend(loc="upper right", fontsize=8)
        top.set_ylim(bottom=0)
        bottom.plot(xs, line.per_step(_ok_tokens), color=PALETTE[2], label="output tok/s")
        bottom.set_ylabel("tokens/s")
        bottom.set_ylim(bottom=0)
        rates = bottom.twinx()
        ok = line.per_step(lambda r: 1.0 if r.get("ok") else 0.0)
        rates.plot(xs, ok, color=PALETTE[0], label="ok req/s")
        if any(failed):
            rates.plot(xs, failed, color="#cc3311", label="failed")
        rates.set_ylabel("requests/s")
        rates.set_ylim(bottom=0)
        rates.grid(False)
        lines = bottom.get_lines() + rates.get_lines()
        bottom.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
        bottom.set_title(f"Throughput per {line.step} s (by request end)")
        bottom.set_xlabel("seconds since the first measured request")
    return _svg(figure, salt)


def over_time_overlay_svg(
    series: Sequence[tuple[str, Sequence[RequestRecord]]], salt: str
) -> str | None:
    """Several targets over their runs, overlaid: TTFT p50 per window and output tokens/s,
    each on seconds since that target's first measured request (the runs were not at the
    same time; their courses are what is compared)."""
    import matplotlib

    timelines = [(label, _Timeline(records)) for label, records in series if records]
    if not timelines:
        return None
    with matplotlib.rc_context(_RC):
        figure, (top, bottom) = _figure(6.4, 4.6, rows=2)
        for index, (label, line) in enumerate(timelines):
            colour = PALETTE[index % len(PALETTE)]
            top.plot(*line.ttft(50), marker=".", color=colour, label=label)
            bottom.plot(line.step_centres, line.per_step(_ok_tokens), color=colour, label=label)
        top.set_title("TTFT p50 over the run")
        top.set_ylabel("ms")
        top.set_ylim(bottom=0)
        top.legend(loc="upper right", fontsize=8)
        bottom.set_title("Output tokens/s over the run (by request end)")
        bottom.set_ylabel("tokens/s")
        bottom.set_ylim(bottom=0)
        bottom.set_xlabel("seconds since each target's first measured request")
    return _svg(figure, salt)
