"""``gateprobe run`` interrupted: Ctrl-C (SIGINT to the process group) or SIGTERM (to the pid)
stops it within seconds, leaves no process behind (the embedded mock is a thread; xdist's
workers are processes), writes the partial reports marked interrupted and exits 130.

Each run is a subprocess in a session of its own. It is interrupted once it is really
running: scenarios passed on its output (against the bundled mock, slowed to TTFT 100 ms so
the suites take longer than the test waits), or requests arrived at a silent gateway that
holds every worker in a 20 s read (its profile's usual timeouts).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from xml.etree import ElementTree

import pytest
from interrupt_support import Command, SilentServer, run_dir, silent_profile
from support import bundled_scenario_count

STOP_LIMIT_S = 10.0  # "within seconds"; measured 0.4-2 s on the 2-core VM


def _progress(output: str) -> int:
    """Scenarios pytest's progress lines show as done (one character each)."""
    return sum(len(run) for run in re.findall(r"(?m)^[.sxXFE]+", output))


def _reports(root: Path) -> tuple[dict[str, object], ElementTree.Element, Path]:
    out = run_dir(root)
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    junit = ElementTree.parse(out / "junit.xml").getroot()
    return summary, junit, out / "allure-results"


def _junit_properties(junit: ElementTree.Element) -> dict[str, str]:
    suite = junit if junit.tag == "testsuite" else junit.find("testsuite")
    assert suite is not None
    props = suite.find("properties")
    assert props is not None, ElementTree.tostring(suite)[:500]
    return {p.get("name", ""): p.get("value", "") for p in props.findall("property")}


def _assert_interrupted_reports(root: Path, by: str, output: str) -> dict[str, object]:
    summary, junit, allure = _reports(root)
    assert summary["interrupted"] is True
    interruption = summary["interruption"]
    assert isinstance(interruption, dict)
    assert interruption["by"] == by
    assert interruption["ran"] == len(summary["scenarios"])  # type: ignore[arg-type]
    total = bundled_scenario_count()
    assert interruption["selected"] == total  # every scenario of the bundled suites, selected
    properties = _junit_properties(junit)
    assert properties["gateprobe_interrupted"] == "true"
    assert properties["gateprobe_interrupted_by"] == by
    environment = (allure / "environment.properties").read_text("utf-8")
    assert "interrupted=true" in environment and f"interrupted_by={by}" in environment
    # what ran, and where the reports are
    assert "area            pass  fail  skip  deviation" in output
    assert re.search(r"reports: .*\(junit\.xml, summary\.json, allure-results/\)", output)
    assert (
        f"gateprobe: interrupted ({by}) after {interruption['ran']} of {total} scenarios" in output
    )
    assert "Traceback" not in output and "INTERNALERROR" not in output
    return summary


@pytest.mark.parametrize(
    ("sig", "group", "workers"),
    [(signal.SIGINT, True, None), (signal.SIGTERM, False, "2")],
    ids=["ctrl-c", "sigterm-xdist"],
)
def test_an_interrupted_run_against_the_mock_reports_what_ran(
    tmp_path: Path, sig: signal.Signals, group: bool, workers: str | None
) -> None:
    args = ["run", "--ttft-ms", "100", "--itl-ms", "10", "--report-dir", str(tmp_path)]
    command = Command([*args, *(["-n", workers] if workers else [])])
    try:
        # 20 scenarios passed: it runs, and something is there to report
        command.wait_until(lambda: _progress(command.output) >= 20, 90, "20 scenarios done")
        stop = command.interrupt(sig, group=group)
        print(f"stop time ({sig.name}, workers {workers}): {stop:.2f} s")
        assert command.process.returncode == 130, command.output
        assert stop < STOP_LIMIT_S, command.output
        assert command.left_behind() == []
        summary = _assert_interrupted_reports(tmp_path, sig.name, command.output)
        totals = summary["totals"]
        assert isinstance(totals, dict)
        assert 20 <= sum(totals.values()) < bundled_scenario_count()
        assert totals["fail"] == 0  # nothing failed for being cut short
    finally:
        command.kill_all()
    if workers:
        assert len(command.descendants) >= 2  # the xdist workers were seen, and are gone


@pytest.mark.parametrize(
    ("sig", "group", "workers"),
    [(signal.SIGTERM, False, None), (signal.SIGINT, True, "2"), (signal.SIGTERM, False, "2")],
    ids=["sigterm", "ctrl-c-xdist", "sigterm-xdist"],
)
def test_a_run_waiting_on_a_silent_gateway_stops_at_once(
    tmp_path: Path, sig: signal.Signals, group: bool, workers: str | None
) -> None:
    with SilentServer() as server:
        profile, env = silent_profile(tmp_path, server)
        args = ["run", "--target", str(profile), "--report-dir", str(tmp_path / "reports")]
        command = Command([*args, *(["-n", workers] if workers else [])], env=env)
        busy = int(workers or 1)
        try:
            # every worker is blocked reading an answer that never comes (20 s read timeout)
            command.wait_until(lambda: server.requests >= busy, 90, f"{busy} requests sent")
            stop = command.interrupt(sig, group=group)
            print(f"stop time ({sig.name}, workers {workers}, silent target): {stop:.2f} s")
            assert command.process.returncode == 130, command.output
            assert stop < STOP_LIMIT_S, command.output
            assert command.left_behind() == []
        finally:
            command.kill_all()
    summary = _assert_interrupted_reports(tmp_path / "reports", sig.name, command.output)
    assert summary["scenarios"] == []  # nothing finished
    interruption = summary["interruption"]
    assert isinstance(interruption, dict)
    _, junit, allure = _reports(tmp_path / "reports")
    if not workers:
        # the scenario in flight is reported skipped ("interrupted"), not left out or passed
        cut = interruption["cut_short"]
        assert isinstance(cut, list) and len(cut) == 1
        skipped = [c for c in junit.iter("testcase") if c.find("skipped") is not None]
        assert [c.get("name") for c in skipped] == cut
        message = skipped[0].find("skipped")
        assert message is not None
        assert f"interrupted ({sig.name}) before the scenario finished" in message.get(
            "message", ""
        )
    results = [json.loads(p.read_text("utf-8")) for p in allure.glob("*-result.json")]
    # allure keeps the scenario it had started: as skipped, never as passed
    assert results and {r["status"] for r in results} == {"skipped"}
