"""Failed scenarios grouped by cause: what the terminal lists and summary.json's
``failure_groups`` hold, so both (and an HTML report built from summary.json) agree.

A failed scenario's cause is its first failure (the first failed check of its first failed
step; a declared deviation failing under ``--strict`` when it has no other; its reason when
nothing was sent) as ``<check>: <message>`` with the concrete values normalised: quoted
text, URLs, numbers and anything with a digit in it (a status, a model name, a key's mask)
become placeholders. So "status: expected 401, got 200" on forty scenarios and "expected
403, got 200" on ten are one cause, "status: expected <n>, got <n>", while a different
message of the same check stays a group of its own. Every failed scenario is in exactly one
group; its further failures are counted on its line (``more``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FailureLine", "cause_of", "failure_groups", "failure_lines", "first_failure"]

_CAUSE_LIMIT = 160  # characters of a normalised message kept as the cause (a quoted body)
_NORMALISE = (
    (re.compile(r"https?://\S+"), "<url>"),
    # quoted text: '...', "...", `...` (never across lines)
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "'…'"),
    # a word with a digit: 401, 2.5s, gpt-4o-mini, sk-…a2a9, req_01H..., 0x1f
    (re.compile(r"(?<![\w<])[\w.:/+…-]*\d[\w.:/+…-]*"), "<n>"),
    (re.compile(r"\s+"), " "),
)


@dataclass(frozen=True)
class FailureLine:
    """One failed scenario as the terminal shows it."""

    name: str
    file: str
    line: int
    check: str
    message: str  # the first failure's message, masked as summary.json is
    more: int  # its further failures


def _normalise(message: str) -> str:
    for pattern, placeholder in _NORMALISE:
        message = pattern.sub(placeholder, message)
    message = message.strip()
    return message if len(message) <= _CAUSE_LIMIT else message[:_CAUSE_LIMIT] + "…"


def first_failure(record: Mapping[str, Any]) -> tuple[str, str, int]:
    """(check, message, how many failures in all) of one failed scenario's summary record."""
    failures = [f for step in record.get("steps", ()) for f in step.get("failures", ())]
    if not failures:  # strict: its declared deviations fail it
        failures = [f for step in record.get("steps", ()) for f in step.get("deviations", ())]
    if failures:
        return str(failures[0]["check"]), str(failures[0]["message"]), len(failures)
    # nothing sent (the target unreachable, the hang breaker): the reason says why
    reason = str(record.get("reason") or "failed")
    check, sep, message = reason.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+", check):
        return check, message, 1
    return "run", reason, 1


def cause_of(check: str, message: str) -> str:
    return f"{check}: {_normalise(message.splitlines()[0] if message else '')}"


def failure_groups(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """summary.json's ``failure_groups``: ``[{"cause", "check", "count", "scenarios"}]``,
    the largest group first (then by cause), the scenarios of each by name."""
    groups: dict[tuple[str, str], list[str]] = {}
    for record in records:
        if record.get("verdict") != "fail":
            continue
        check, message, _ = first_failure(record)
        groups.setdefault((check, cause_of(check, message)), []).append(str(record["name"]))
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0][1]))
    return [
        {"cause": cause, "check": check, "count": len(names), "scenarios": sorted(names)}
        for (check, cause), names in ordered
    ]


def failure_lines(records: Iterable[Mapping[str, Any]]) -> dict[str, FailureLine]:
    """Failed scenario name -> its line."""
    out = {}
    for record in records:
        if record.get("verdict") != "fail":
            continue
        check, message, count = first_failure(record)
        out[str(record["name"])] = FailureLine(
            str(record["name"]),
            str(record.get("file", "?")),
            int(record.get("line") or 0),
            check,
            message,
            count - 1,
        )
    return out
