"""The grouped failure list (gateprobe/report/terminal.py) and its causes (groups.py), on
summary records as summary.json holds them."""

from __future__ import annotations

from typing import Any

from gateprobe.report.groups import cause_of, failure_groups
from gateprobe.report.terminal import failure_report


def _record(name: str, *failures: tuple[str, str], reason: str = "") -> dict[str, Any]:
    steps = [{"failures": [{"check": c, "message": m} for c, m in failures], "deviations": []}]
    return {
        "name": name,
        "file": f"/somewhere/suites/{name.split('.')[0]}/cases.yaml",
        "line": 7,
        "verdict": "fail",
        "reason": reason,
        "steps": steps if failures else [],
    }


RECORDS = [
    _record("auth.a[openai]", ("status", "expected HTTP status 401, got 200")),
    _record("auth.a[anthropic]", ("status", "expected HTTP status 401, got 200")),
    _record("auth.b", ("status", "expected HTTP status 403, got 200"), ("json", "no error")),
    _record("errors.c", ("error_envelope", "the error is text/html, not JSON")),
    _record("models.d", reason="transport: the target stopped answering"),
    {"name": "models.ok", "verdict": "pass", "steps": []},
]


def test_causes_normalise_concrete_values_and_keep_different_messages_apart() -> None:
    assert cause_of("status", "expected HTTP status 401, got 200") == cause_of(
        "status", "expected HTTP status 404, got 500"
    )
    assert cause_of("status", "expected 'gpt-4o-mini' at https://x.test/v1") == (
        "status: expected '…' at <url>"
    )
    assert cause_of("stream", "event 3 is not JSON") != cause_of("stream", "no [DONE]")


def test_groups_put_each_failed_scenario_in_the_group_of_its_first_failure() -> None:
    groups = failure_groups(RECORDS)
    assert groups == [
        {
            "cause": "status: expected HTTP status <n>, got <n>",
            "check": "status",
            "count": 3,
            "scenarios": ["auth.a[anthropic]", "auth.a[openai]", "auth.b"],
        },
        {
            "cause": "error_envelope: the error is text/html, not JSON",
            "check": "error_envelope",
            "count": 1,
            "scenarios": ["errors.c"],
        },
        {
            # nothing was sent: the reason names the check
            "cause": "transport: the target stopped answering",
            "check": "transport",
            "count": 1,
            "scenarios": ["models.d"],
        },
    ]


def test_the_report_fits_the_width_and_counts_further_failures() -> None:
    summary = {"failure_groups": failure_groups(RECORDS), "scenarios": RECORDS}
    for width in (72, 80, 120):  # narrower, the shortest name and message overflow
        lines = failure_report(summary, width)
        assert lines[0] == ""
        assert all(len(line) <= width for line in lines), width
    lines = failure_report(summary, 120)
    assert lines[1].startswith("gateprobe: 5 failed scenario(s) by cause")
    assert lines[2] == "[3] status: expected HTTP status <n>, got <n>"
    assert lines[5].split() == [
        "auth.b",
        "suites/auth/cases.yaml:7",  # from the suites folder on, outside the working dir
        "expected",
        "HTTP",
        "status",
        "403,",
        "got",
        "200",
        "(+1",
        "more)",
    ]
    assert failure_report({"failure_groups": [], "scenarios": []}) == []
