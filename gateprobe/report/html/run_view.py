"""The run report: summary.json (``gateprobe run`` / ``demo``) -> report.html.

summary.json is already masked (gateprobe/report/summary.py): the page shows only what it
holds. Newer summaries carry, per failure, ``expected`` and ``actual``, per failed step the
masked ``exchange`` and a ``curl`` line, and ``failure_groups`` at the top; older ones
have none of them, and the page then groups failures by cause itself, by the rule the
terminal and summary.json use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateprobe.report.groups import failure_groups as grouped_by_cause
from gateprobe.report.html.render import VERDICTS, render

__all__ = ["failure_groups", "run_context", "write_run_report"]


def failure_groups(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{cause, check, count, scenarios: [records]}]``: the summary's own groups, as the
    terminal listed them; the failed scenarios in none of them (a summary written before
    summary.json had groups, say) grouped by the same rule (gateprobe/report/groups.py)."""
    failed = [s for s in summary.get("scenarios") or () if s.get("verdict") == "fail"]
    by_name = {str(s.get("name")): s for s in failed}
    given = list(summary.get("failure_groups") or ())
    placed = {str(n) for group in given for n in group.get("scenarios") or ()}
    rest = [record for name, record in by_name.items() if name not in placed]
    groups = []
    for group in [*given, *grouped_by_cause(rest)]:
        members = [by_name[n] for n in group.get("scenarios") or () if n in by_name]
        if members:
            cause = str(group.get("cause") or group.get("check") or "?")
            groups.append(
                {"cause": cause, "check": group.get("check"), "count": len(members),
                 "scenarios": members}
            )  # fmt: skip
    return groups


def _value(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _exchange(exchange: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # summary.json keeps the first EXCHANGE_EVENTS events and elements and counts the rest
    if not exchange:
        return None
    return {
        **exchange,
        "request": exchange.get("request") or {},
        "events_shown": list(exchange.get("events") or ()),
        "events_more": int(exchange.get("events_omitted") or 0),
        "elements_shown": list(exchange.get("elements") or ()),
        "elements_more": int(exchange.get("elements_omitted") or 0),
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
