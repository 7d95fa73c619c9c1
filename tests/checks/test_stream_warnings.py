"""A SHOULD-level finding (no Cache-Control on an event stream) warns without failing the
verdict, and the warning and the stream's timing figures reach the reports. A target that
claims ``stream.cache_control`` (the bundled mock's profile does) fails instead."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import httpx
from selftest import FAULT, STREAM, mock_target, run_all
from support import DEFAULT

from gateprobe.mock import MockServer
from gateprobe.report.summary import result_record
from gateprobe.scenario import load_scenarios
from gateprobe.target import Target

SCENARIO = STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini").replace(FAULT, "")


def unclaimed(url: str) -> Target:
    """The mock's profile without its claim of Cache-Control on streams."""
    target = mock_target(url)
    return dataclasses.replace(target, capabilities=target.capabilities - {"stream.cache_control"})


def test_a_missing_cache_control_warns_and_the_scenario_still_passes(
    mock_factory: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"no-cache-control"}))
    target = unclaimed(server.url)
    with httpx.Client(timeout=10.0) as http:
        (outcome,) = run_all(tmp_path, SCENARIO, target, http)
        (claimed,) = run_all(tmp_path, SCENARIO, mock_target(server.url), http)
    assert claimed.verdict == "fail"
    assert claimed.reason == (
        "stream: no Cache-Control: no-cache on an event stream: a proxy may cache or buffer it"
    )
    assert outcome.verdict == "pass", outcome.reason
    (warning,) = outcome.warnings
    assert warning.check == "stream" and warning.where == "headers.cache-control"
    assert "no Cache-Control: no-cache" in warning.message

    (scenario,) = load_scenarios(tmp_path / "selftest" / "case.yaml")
    (instance,) = scenario.instances()
    record = result_record(instance, outcome, target, strict=True)
    assert record["verdict"] == "pass"
    (step,) = record["steps"]
    assert step["warnings"] == [
        {"check": "stream", "message": warning.message, "where": "headers.cache-control"}
    ]
    metrics = step["stream"]
    assert metrics["events"] >= 3 and metrics["output_events"] >= 1
    assert metrics["ttft_at"] == "event[1]"  # the role chunk (event[0]) is framing, not output
    assert metrics["ttft_ms"] > 0


def test_the_clean_mock_gives_no_warning(mock: MockServer, tmp_path: Path) -> None:
    with httpx.Client(timeout=10.0) as http:
        (outcome,) = run_all(tmp_path, SCENARIO, mock_target(mock.url), http)
    assert outcome.verdict == "pass" and outcome.warnings == []


def test_the_failure_text_shows_the_warning_and_the_stream_figures(
    mock_factory: Callable[..., MockServer], tmp_path: Path
) -> None:
    from gateprobe.report.failure import format_failure

    server = mock_factory(DEFAULT, defects=frozenset({"no-cache-control", "missing-done"}))
    target = unclaimed(server.url)
    with httpx.Client(timeout=10.0) as http:
        (outcome,) = run_all(tmp_path, SCENARIO, target, http)
    assert outcome.verdict == "fail"
    (scenario,) = load_scenarios(tmp_path / "selftest" / "case.yaml")
    (instance,) = scenario.instances()
    text = format_failure(instance, outcome, target)
    assert "x stream: expected exactly one data: [DONE], got 0" in text
    assert "! stream (warning): no Cache-Control: no-cache" in text
    assert "~ stream: ttft " in text and "(event[1])" in text and "network chunks" in text
