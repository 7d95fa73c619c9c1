"""summary.json: the target, and the verdict and timings of every scenario instance.

It is the machine-readable record of a run (for CI and for vendor comparison runs). Workers
under xdist send each record to the controller as a pytest user property; the controller
writes the file once. ``interrupted`` says whether the run was cut short (Ctrl-C, SIGTERM):
then the file covers the scenarios that ran, and ``interruption`` says by what, when, and
how many of how many ran.

For a report built from this file alone (an HTML report), each failure carries its
``expected`` and ``actual`` (text, masked and shortened as the failure text shows them),
each step its ``curl`` reproduction (gateprobe/report/curl.py; null when the step built no
request) and, when it failed, its ``exchange`` (``Exchange.to_dict``: masked, each body and
event cut at 4 KiB saying by how much, at most ``EXCHANGE_EVENTS`` events and array
elements, ``events_omitted`` / ``elements_omitted`` saying how many more); and the file's
``failure_groups`` are the failed scenarios grouped by cause, as the terminal lists them
(gateprobe/report/groups.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateprobe import __version__
from gateprobe._redact import Redactor
from gateprobe.errors import CheckFailed
from gateprobe.report.curl import step_curl
from gateprobe.report.failure import shorten
from gateprobe.report.groups import failure_groups
from gateprobe.report.masking import outcome_redactor
from gateprobe.runner import Outcome, StepRecord
from gateprobe.scenario import Instance
from gateprobe.target import Target

__all__ = ["EXCHANGE_EVENTS", "RESULT_PROPERTY", "SummaryWriter", "area_table", "result_record"]

RESULT_PROPERTY = "gateprobe_result"
EXCHANGE_EVENTS = 200  # events (and array elements) of a failed step's exchange kept


def _failure(failure: CheckFailed, redactor: Redactor) -> dict[str, Any]:
    def shown(value: Any) -> str | None:
        return None if value is None else redactor.text(shorten(value))

    return {
        "check": failure.check,
        "message": redactor.text(failure.message),
        "where": failure.where,
        "expected": shown(failure.expected),
        "actual": shown(failure.actual),
    }


def _exchange(record: StepRecord, redactor: Redactor) -> dict[str, Any] | None:
    """A failed step's exchange for summary.json: masked, its events capped."""
    if record.exchange is None or not (record.failures or record.deviations):
        return None
    data = record.exchange.to_dict(redactor)
    for key in ("events", "elements"):
        if len(data[key]) > EXCHANGE_EVENTS:
            data[f"{key}_omitted"] = len(data[key]) - EXCHANGE_EVENTS
            data[key] = data[key][:EXCHANGE_EVENTS]
    return data


def _step(record: StepRecord, target: Target, redactor: Redactor) -> dict[str, Any]:
    exchange = record.exchange
    return {
        "name": record.step.name,
        "status": exchange.status if exchange else None,
        "elapsed_ms": round(exchange.elapsed * 1000, 3) if exchange else None,
        "ttfb_ms": (
            round(exchange.ttfb * 1000, 3) if exchange and exchange.ttfb is not None else None
        ),
        "checks": record.checks_run,
        "stream": exchange.stream_metrics() if exchange else None,
        "warnings": [
            {"check": w.check, "message": redactor.text(w.message), "where": w.where}
            for w in record.warnings
        ],
        "failures": [_failure(f, redactor) for f in record.failures],
        "deviations": [
            {"check": f.check, "message": redactor.text(f.message), "reason": d.reason}
            for f, d in record.deviations
        ],
        "curl": step_curl(exchange.request if exchange else None, record.request, target, redactor),
        "exchange": _exchange(record, redactor),
    }


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
        "steps": [_step(record, target, redactor) for record in outcome.steps],
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
            "failure_groups": failure_groups(records),
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
