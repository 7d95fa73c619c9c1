"""The run report (report.html) of real runs against the bundled mock: the figures it shows
are summary.json's, every failure is there with its check, message and location, no secret
and no network reference is in the page, and a gateway's answer cannot inject markup."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from html_support import Run, assert_offline, load_json, parse

from gateprobe._redact import Redactor
from gateprobe.http import Exchange, RequestRecord
from gateprobe.report.groups import failure_groups as grouped_by_cause
from gateprobe.report.html import write_or_warn, write_run_report
from gateprobe.report.html.run_view import failure_groups

VERDICTS = ("pass", "fail", "skip", "deviation")


def _failed(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in summary["scenarios"] if s["verdict"] == "fail"]


def test_the_run_writes_its_report_and_names_it(failing_run: Run) -> None:
    page = failing_run.directory / "report.html"
    assert page.is_file()
    assert f"HTML: {page}" in failing_run.result.stdout
    assert failing_run.result.returncode == 1  # the report leaves the run's verdict alone


def test_totals_and_areas_are_the_summarys(failing_run: Run) -> None:
    summary = load_json(failing_run.directory / "summary.json")
    page = parse(write_run_report(failing_run.directory))
    assert summary["totals"]["fail"] > 0
    for verdict in VERDICTS:
        assert page.one(total=verdict).text == str(summary["totals"][verdict])
    assert page.one(total="warnings").text == str(summary["warnings"])
    assert [e.attrs["data-area"] for e in page.having("area") if e.tag == "tr"] == [
        a["area"] for a in summary["areas"]
    ]
    for row in summary["areas"]:
        for verdict in VERDICTS:
            assert page.one(area=row["area"], verdict=verdict).text == str(row[verdict])
    target = summary["target"]
    assert page.one(field="target-name").text == target["name"]
    assert page.one(field="target-base-url").text == target["base_url"]


def test_every_failure_shows_its_check_message_and_location(failing_run: Run) -> None:
    summary = load_json(failing_run.directory / "summary.json")
    page = parse(write_run_report(failing_run.directory))
    failed = _failed(summary)
    shown = [e for e in page.having("scenario") if e.tag == "article"]
    assert sorted(e.attrs["data-scenario"] for e in shown) == sorted(s["name"] for s in failed)
    for scenario in failed:
        (article,) = [e for e in shown if e.attrs["data-scenario"] == scenario["name"]]
        assert f"{scenario['file']}:{scenario['line']}" in article.text
        assert scenario["title"] in article.text
        for step in scenario["steps"]:
            for failure in step["failures"]:
                assert failure["check"] in article.text
                assert " ".join(failure["message"].split()) in article.text
                for key in ("expected", "actual"):  # when summary.json carries them
                    if failure.get(key) is not None:
                        assert page.find(field=key)
            if step.get("curl"):
                assert " ".join(step["curl"].split()) in article.text
    # grouped: by the summary's failure_groups when it has them, else by first failed check
    counts = page.having("group-count")
    assert counts and sum(int(c.text) for c in counts) == len(failed)
    passed = page.find(list="pass")[0]
    assert all(s["name"] in passed.text for s in summary["scenarios"] if s["verdict"] == "pass")


def test_no_secret_and_nothing_fetched(failing_run: Run) -> None:
    path = write_run_report(failing_run.directory)
    html = path.read_text("utf-8")
    assert len(failing_run.secrets) == 10
    leaks = [name for name, secret in failing_run.secrets.items() if secret in html]
    assert leaks == []
    assert_offline(path, parse(path))


def _exchange(redactor: Redactor) -> dict[str, Any]:
    """A masked exchange in summary.json's shape, its answer trying to inject markup."""
    exchange = Exchange(
        request=RequestRecord(
            "POST",
            "http://127.0.0.1:9/v1/chat/completions",
            {"authorization": "Bearer sk-gp-injection-test-key-0001", "x-tag": "<b>bold</b>"},
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
        ),
        status=502,
        headers={"content-type": "text/html"},
        body=b"<script>alert('gateway')</script><img src=x onerror=alert(1)>",
        elapsed=0.0123,
        ttfb=0.011,
    )
    return exchange.to_dict(redactor)


def test_the_exchange_expected_actual_and_curl_are_shown_and_escaped(run_copy: Path) -> None:
    summary = load_json(run_copy / "summary.json")
    scenario = _failed(summary)[0]
    step = next(s for s in scenario["steps"] if s["failures"])
    step["exchange"] = _exchange(Redactor(["sk-gp-injection-test-key-0001"]))
    step["curl"] = "curl -sS -X POST 'http://127.0.0.1:9/v1/chat/completions' -H 'x-tag: <b>'"
    step["failures"][0]["expected"] = {"status": 200}
    step["failures"][0]["actual"] = "<script>alert('actual')</script>"
    step["failures"][0]["message"] = "answered <script>alert('message')</script>"
    (run_copy / "summary.json").write_text(json.dumps(summary), "utf-8")

    path = write_run_report(run_copy)
    html = path.read_text("utf-8")
    page = parse(path)
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    assert "sk-gp-injection-test-key-0001" not in html
    assert "&lt;script&gt;alert(&#39;gateway&#39;)&lt;/script&gt;" in html
    (article,) = [
        e for e in page.having("scenario") if e.attrs["data-scenario"] == scenario["name"]
    ]
    assert "POST http://127.0.0.1:9/v1/chat/completions" in article.text
    assert "Bearer sk-…0001" in article.text  # the masked form, as summary.json holds it
    assert "502" in article.text and "<script>alert('gateway')</script>" in article.text
    assert " ".join(step["curl"].split()) in [e.text for e in page.find(field="curl")]
    assert '{ "status": 200 }' in [e.text for e in page.find(field="expected")]
    assert "<script>alert('actual')</script>" in [e.text for e in page.find(field="actual")]


def test_failure_groups_of_the_summary_are_used(run_copy: Path) -> None:
    summary = load_json(run_copy / "summary.json")
    failed = _failed(summary)
    first, rest = failed[:1], failed[1:]
    summary["failure_groups"] = [
        {"cause": "the key is quoted back", "check": "no_secret_echo", "count": len(rest),
         "scenarios": [s["name"] for s in rest]},
    ]  # fmt: skip
    groups = failure_groups(summary)
    # the one left out: a group of its own, its cause by the terminal's rule
    (own,) = grouped_by_cause(first)
    assert [g["cause"] for g in groups] == ["the key is quoted back", own["cause"]]
    assert [len(g["scenarios"]) for g in groups] == [len(rest), 1]
    (run_copy / "summary.json").write_text(json.dumps(summary), "utf-8")
    page = parse(write_run_report(run_copy))
    assert page.one(group_count="the key is quoted back").text == str(len(rest))


def test_without_groups_failures_are_grouped_as_the_terminal_groups_them(
    failing_run: Run,
) -> None:
    summary = load_json(failing_run.directory / "summary.json")
    written = summary.pop("failure_groups")
    groups = failure_groups(summary)
    assert [(g["cause"], g["check"], g["count"]) for g in groups] == [
        (g["cause"], g["check"], g["count"]) for g in written
    ]
    assert [[s["name"] for s in g["scenarios"]] for g in groups] == [
        g["scenarios"] for g in written
    ]
    assert sum(g["count"] for g in groups) == len(_failed(summary))


def test_events_summary_json_left_out_are_counted(run_copy: Path) -> None:
    summary = load_json(run_copy / "summary.json")
    step = next(
        step for s in _failed(summary) for step in s["steps"] if (step.get("exchange") or {})
    )
    step["exchange"]["events"] = [
        {"index": i, "t_ms": float(i), "event": None, "data": f"chunk {i}"} for i in range(3)
    ]
    step["exchange"]["events_omitted"] = 297
    (run_copy / "summary.json").write_text(json.dumps(summary), "utf-8")
    html = write_run_report(run_copy).read_text("utf-8")
    assert "Events (300)" in html and "… 297 more events" in html


def test_a_passing_run_says_so(tmp_path: Path, failing_run: Run) -> None:
    summary = load_json(failing_run.directory / "summary.json")
    summary["scenarios"] = [s for s in summary["scenarios"] if s["verdict"] == "pass"]
    summary["totals"] = {v: (len(summary["scenarios"]) if v == "pass" else 0) for v in VERDICTS}
    (tmp_path / "summary.json").write_text(json.dumps(summary), "utf-8")
    page = parse(write_run_report(tmp_path))
    assert page.having("group") == []
    assert "Every scenario passed" in page.text


def test_a_report_that_cannot_be_written_says_so_in_one_line(tmp_path: Path) -> None:
    out = io.StringIO()
    assert write_or_warn(write_run_report, tmp_path, out) is None  # no summary.json there
    assert out.getvalue().count("\n") == 1
    assert "HTML report was not written (FileNotFoundError" in out.getvalue()
    assert not (tmp_path / "report.html").exists()
