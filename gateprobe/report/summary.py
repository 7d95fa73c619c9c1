"""summary.json: the target, and the verdict and timings of every scenario instance.

It is the machine-readable record of a run (for CI and for vendor comparison runs). Workers
under xdist send each record to the controller as a pytest user property; the controller
writes the file once. ``interrupted`` says whether the run was cut short (Ctrl-C, SIGTERM):
then the file covers the scenarios that ran, and ``interruption`` says by what, when, and
how many of how many ran.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateprobe import __version__
from gateprobe.report.masking import outcome_redactor
from gateprobe.runner import Outcome
from gateprobe.scenario import Instance
from gateprobe.target import Target

__all__ = ["RESULT_PROPERTY", "SummaryWriter", "area_table", "result_record"]

RESULT_PROPERTY = "gateprobe_result"


def result_record(
    instance: Instance, outcome: Outcome, target: Target, strict: bool
) -> dict[str, Any]:
    redactor = outcome_redactor(target, outcome)  # its literal keys too
    verdict = outcome.verdict
    if verdict == "deviation" and strict:
        verdict = "fail"
    scenario = instance.scenario
    return {
        "id": scenario.id,
        "name": instance.name,
        "title": scenario.title,
        "area": scenario.area,
        "params": {k: redactor.text(str(v)) for k, v in instance.params.items()},
        "file": str(scenario.path),
        "line": scenario.line,
        "verdict": verdict,
        "reason": redactor.text(outcome.reason),
        "duration_ms": round(outcome.duration * 1000, 3),
        "steps": [
            {
                "name": record.step.name,
                "status": record.exchange.status if record.exchange else None,
                "elapsed_ms": round(record.exchange.elapsed * 1000, 3) if record.exchange else None,
                "ttfb_ms": (
                    round(record.exchange.ttfb * 1000, 3)
                    if record.exchange and record.exchange.ttfb is not None
                    else None
                ),
                "checks": record.checks_run,
                "stream": record.exchange.stream_metrics() if record.exchange else None,
                "warnings": [
                    {"check": w.check, "message": redactor.text(w.message), "where": w.where}
                    for w in record.warnings
                ],
                "failures": [
                    {"check": f.check, "message": redactor.text(f.message), "where": f.where}
                    for f in record.failures
                ],
                "deviations": [
                    {"check": f.check, "message": redactor.text(f.message), "reason": d.reason}
                    for f, d in record.deviations
                ],
            }
            for record in outcome.steps
        ],
    }


def area_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[str, Counter[str]] = {}
    for record in records:
        rows.setdefault(record["area"], Counter())[record["verdict"]] += 1
    return [
        {"area": area, **{v: counts.get(v, 0) for v in ("pass", "fail", "skip", "deviation")}}
        for area, counts in sorted(rows.items())
    ]


class SummaryWriter:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.started = time.time()

    def write(
        self,
        directory: Path,
        records: list[dict[str, Any]],
        config: pytest.Config,
        *,
        interrupted: dict[str, Any] | None = None,
    ) -> Path:
        """``interrupted``: the run was cut short (``by``: the signal or exception, ``at``:
        epoch seconds, ``selected``: how many scenarios were to run, when known,
        ``cut_short``: the scenarios stopped midway); the file then covers the scenarios
        that ran, and says so."""
        directory.mkdir(parents=True, exist_ok=True)
        records = sorted(records, key=lambda r: (r["area"], r["name"]))
        totals = Counter(r["verdict"] for r in records)
        summary: dict[str, Any] = {
            "gateprobe": __version__,
            "target": self.target.metadata(),
            "strict": bool(
                config.getoption("--gateprobe-strict") or config.getini("gateprobe_strict")
            ),
            "interrupted": interrupted is not None,
            "started": self.started,
            "finished": time.time(),
            "totals": {v: totals.get(v, 0) for v in ("pass", "fail", "skip", "deviation")},
            "warnings": sum(len(s.get("warnings", ())) for r in records for s in r["steps"]),
            "areas": area_table(records),
            "scenarios": records,
        }
        if interrupted is not None:
            summary["interruption"] = {
                "by": interrupted.get("by"),
                "at": interrupted.get("at"),
                "ran": len(records),
                "selected": interrupted.get("selected"),
                # started and stopped midway: in no total, with no verdict
                "cut_short": list(interrupted.get("cut_short") or ()),
            }
        path = directory / "summary.json"
        text = self.target.redactor().text(json.dumps(summary, indent=2, sort_keys=False))
        path.write_text(text, "utf-8")
        return path
