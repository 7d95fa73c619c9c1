"""The run report: summary.json (``gateprobe run`` / ``demo``) -> report.html.

summary.json is already masked (gateprobe/report/summary.py): the page shows only what it
holds. Newer summaries carry, per failure, ``expected`` and ``actual``, per failed step the
masked ``exchange`` and a ``curl`` line, and ``failure_groups`` at the top; older ones
have none of them, and the page then groups failures by their first failed check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateprobe.report.html.render import VERDICTS, render

__all__ = ["failure_groups", "run_context", "write_run_report"]

_MAX_EVENTS = 200  # events shown per exchange; the rest are counted


def _first_check(record: Mapping[str, Any]) -> str:
    for step in record.get("steps") or ():
        for failure in step.get("failures") or ():
            return str(failure.get("check"))
    return "(no check)"  # failed with a reason only: the breaker, a setup error


def failure_groups(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{cause, check, count, scenarios: [records]}]``: the summary's own groups when it
    has them (a failed scenario in none of them is added in a group of its own), else one
    group per first failed check, largest first."""
    failed = [s for s in summary.get("scenarios") or () if s.get("verdict") == "fail"]
    by_name = {str(s.get("name")): s for s in failed}
    groups: list[dict[str, Any]] = []
    placed: set[str] = set()
    for group in summary.get("failure_groups") or ():
        members = [by_name[n] for n in group.get("scenarios") or () if n in by_name]
        if not members:
            continue
        placed.update(str(m["name"]) for m in members)
        cause = str(group.get("cause") or group.get("check") or "?")
        groups.append(
            {
                "cause": cause,
                "check": group.get("check"),
                "count": len(members),
                "scenarios": members,
            }
        )
    rest: dict[str, list[dict[str, Any]]] = {}
    for record in failed:
        if str(record.get("name")) not in placed:
            rest.setdefault(_first_check(record), []).append(record)
    for check, members in sorted(rest.items(), key=lambda item: (-len(item[1]), item[0])):
        groups.append({"cause": check, "check": check, "count": len(members), "scenarios": members})
    return groups


def _value(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _exchange(exchange: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not exchange:
        return None
    events = list(exchange.get("events") or ())
    elements = list(exchange.get("elements") or ())
    return {
        **exchange,
        "request": exchange.get("request") or {},
        "events_shown": events[:_MAX_EVENTS],
        "events_more": max(0, len(events) - _MAX_EVENTS),
        "elements_shown": elements[:_MAX_EVENTS],
        "elements_more": max(0, len(elements) - _MAX_EVENTS),
    }


def _failed_steps(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps = []
    for number, step in enumerate(record.get("steps") or (), start=1):
        failures = step.get("failures") or ()
        if not failures and not step.get("exchange"):
            continue
        steps.append(
            {
                "number": number,
                "name": step.get("name"),
                "status": step.get("status"),
                "elapsed_ms": step.get("elapsed_ms"),
                "failures": [
                    {
                        **f,
                        "expected_text": _value(f.get("expected")),
                        "actual_text": _value(f.get("actual")),
                    }
                    for f in failures
                ],
                "exchange": _exchange(step.get("exchange")),
                "curl": step.get("curl"),
            }
        )
    return steps


def _warnings(scenarios: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"scenario": s.get("name"), **w}
        for s in scenarios
        for step in s.get("steps") or ()
        for w in step.get("warnings") or ()
    ]


def run_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    scenarios = list(summary.get("scenarios") or ())
    groups = failure_groups(summary)
    for group in groups:
        group["failures"] = [{**s, "failed_steps": _failed_steps(s)} for s in group["scenarios"]]
    by_verdict = {v: [s for s in scenarios if s.get("verdict") == v] for v in VERDICTS}
    totals = {v: (summary.get("totals") or {}).get(v, 0) for v in VERDICTS}
    started, finished = summary.get("started"), summary.get("finished")
    duration = (
        finished - started
        if isinstance(started, int | float) and isinstance(finished, int | float)
        else None
    )
    return {
        "summary": summary,
        "target": summary.get("target") or {},
        "totals": totals,
        "total": sum(totals.values()),
        "areas": list(summary.get("areas") or ()),
        "groups": groups,
        "by_verdict": by_verdict,
        "warnings": _warnings(scenarios),
        "duration_s": duration,
        "interruption": summary.get("interruption"),
    }


def write_run_report(run_dir: Path) -> Path:
    """run_dir/summary.json -> run_dir/report.html; returns the page's path."""
    summary = json.loads((run_dir / "summary.json").read_text("utf-8"))
    return render("run.html.j2", run_dir / "report.html", **run_context(summary))
