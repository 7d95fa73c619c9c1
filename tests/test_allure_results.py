"""allure-results of a run: statuses and the shipped categories (gateprobe/report/allure.py).

A gateway that fails a check is *failed* (a product defect); an error of gateprobe or of the
scenario is *broken* (a test defect); a declared deviation is *skipped* (pytest's xfail).
Every failed or broken result falls under a category of the shipped categories.json, matched
as allure does (CategoriesPlugin.matches: the status among matchedStatuses, the whole message
matching messageRegex with DOTALL, every result under each category it matches). The runs
are ``gateprobe run`` subprocesses against the embedded mock or a mock started here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateprobe.checks import REGISTRY
from gateprobe.mock import MockConfig
from gateprobe.provision import MOCK_TARGET, start_bundled_mock
from gateprobe.run import DEFAULT_SUITES

GATEPROBE = Path(sys.executable).parent / "gateprobe"
BROKEN = "gateprobe or scenario errors"

# Two scenarios that cannot run as written, found only once rendered (the loader accepts
# templates): the scenario's fault, never the gateway's.
BROKEN_SUITE = """\
id: broken.unknown_operation
title: A scenario naming an operation the protocol does not have
parametrize:
  operation: [no-such-operation]
steps:
  - request: {protocol: openai, operation: "{operation}"}
    expect: {status: 200}
---
id: broken.check_argument
title: A check refusing its argument
parametrize:
  how: [sometimes]
steps:
  - request: {protocol: openai, operation: chat}
    expect: {status: 200, quota_charged: "{how}"}
"""


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Path:
    """``gateprobe run`` in ``cwd``; its report directory."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEPROBE_", "PYTEST_", "GP_")) and k != "PYTHONPATH"
    }
    result = subprocess.run(
        [str(GATEPROBE), "run", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return next(cwd.glob("reports/*/summary.json")).parent


def results(directory: Path) -> dict[str, dict[str, Any]]:
    """allure's results by scenario instance name, as in summary.json: the story (scenario
    id), then the parameters' id that ends the title (``<title> [<param id>]``)."""
    out = {}
    for path in (directory / "allure-results").glob("*-result.json"):
        result = json.loads(path.read_text("utf-8"))
        story = next(label["value"] for label in result["labels"] if label["name"] == "story")
        parametrized = any(p["name"] != "target" for p in result["parameters"])
        param_id = result["name"].rpartition(" [")[2].removesuffix("]")
        out[f"{story}[{param_id}]" if parametrized else story] = result
    return out


def matching(categories: list[dict[str, Any]], status: str, message: str) -> list[str]:
    """The names of the categories allure puts a result with this status and message in."""

    def matches(regex: str | None) -> bool:
        return regex is None or re.fullmatch(regex, message, re.DOTALL) is not None

    return [
        c["name"]
        for c in categories
        if (not c.get("matchedStatuses") or status in c["matchedStatuses"])
        and matches(c.get("messageRegex"))
        and c.get("traceRegex") is None
    ]


def shipped(directory: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        (directory / "allure-results" / "categories.json").read_text("utf-8")
    )
    return data


@pytest.fixture(scope="module")
def defect_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled suites against the embedded mock without `data: [DONE]`, plus two
    scenarios that are broken themselves."""
    cwd = tmp_path_factory.mktemp("allure-run")
    (cwd / "extra" / "broken").mkdir(parents=True)
    (cwd / "extra" / "broken" / "broken.yaml").write_text(BROKEN_SUITE, "utf-8")
    suites = ("--suites", str(DEFAULT_SUITES), "--suites", str(cwd / "extra"))
    return run(*suites, "--defect", "missing-done", cwd=cwd)


def test_a_failed_check_is_failed_and_a_scenario_error_broken(defect_run: Path) -> None:
    summary = json.loads((defect_run / "summary.json").read_text("utf-8"))
    by_name = results(defect_run)
    assert set(by_name) == {s["name"] for s in summary["scenarios"]}
    statuses: dict[str, set[str]] = {}
    for scenario in summary["scenarios"]:
        result = by_name[scenario["name"]]
        statuses.setdefault(result["status"], set()).add(scenario["id"])
        checks = {f["check"] for step in scenario["steps"] for f in step["failures"]}
        if scenario["verdict"] == "pass":
            assert result["status"] == "passed", scenario["name"]
        elif checks & {"scenario", "internal"}:
            assert result["status"] == "broken", scenario["name"]
        else:
            assert result["status"] == "failed", scenario["name"]
            # an assertion, named after the gateway's failure, not a test's error
            assert result["statusDetails"]["message"].startswith(
                "gateprobe.plugin.GatewayFailure: "
            )
    assert statuses["broken"] == {"broken.unknown_operation", "broken.check_argument"}
    # missing-done breaks the OpenAI chat streams: only streaming scenarios fail
    assert statuses["failed"] and all(i.startswith("streaming.") for i in statuses["failed"])


def test_each_sent_step_has_its_curl_reproduction_attached(defect_run: Path) -> None:
    summary = json.loads((defect_run / "summary.json").read_text("utf-8"))
    by_name = results(defect_run)
    failed = next(
        s
        for s in summary["scenarios"]
        if s["verdict"] == "fail" and s["id"].startswith("streaming.")
    )
    attachments = {a["name"]: a for a in by_name[failed["name"]]["attachments"]}
    attached = attachments["step 1: curl reproduction"]
    assert attached["type"] == "text/plain"
    text = (defect_run / "allure-results" / attached["source"]).read_text("utf-8")
    # the command summary.json has, the key as the profile's variable
    assert text == failed["steps"][0]["curl"]
    assert text.startswith("curl -sS -i -N ") and '"$GATEPROBE_MOCK_KEY_VALID"' in text


def test_every_failed_or_broken_result_has_a_shipped_category(defect_run: Path) -> None:
    categories = shipped(defect_run)
    assert [c["name"] for c in categories][:5] == [
        "Transport failures",
        "Stream grammar",
        "Error envelopes",
        "Quota and billing",
        "Secret and credential leaks",
    ]
    seen: dict[str, set[str]] = {}
    for name, result in results(defect_run).items():
        if result["status"] == "passed":
            continue
        found = matching(categories, result["status"], result["statusDetails"]["message"])
        assert found, (name, result["statusDetails"]["message"])
        for category in found:
            seen.setdefault(category, set()).add(result["status"])
        if result["status"] == "broken":
            assert found == [BROKEN], name
        else:
            assert BROKEN not in found and "Stream grammar" in found, (name, found)
    assert seen == {"Stream grammar": {"failed"}, BROKEN: {"broken"}}


def test_a_declared_deviation_is_skipped_under_its_category(tmp_path: Path) -> None:
    # The mock's own profile, declaring the missing [DONE] as a known deviation.
    profile = tmp_path / "mock-with-deviation.yaml"
    text = MOCK_TARGET.read_text("utf-8")
    assert "\ndeviations:" not in text
    profile.write_text(
        text + '\ndeviations:\n  - {scenario: "streaming.*", check: stream, reason: "no [DONE]"}\n',
        "utf-8",
    )
    config = MockConfig.default().replace(defects=frozenset({"missing-done"}))
    server, env = start_bundled_mock(config=config)
    try:
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        result = subprocess.run(
            [str(GATEPROBE), "run", "--target", str(profile), "-k", "streaming"],
            cwd=cwd,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("GATEPROBE_")},
                **env,
            },
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    directory = next(cwd.glob("reports/*/summary.json")).parent
    summary = json.loads((directory / "summary.json").read_text("utf-8"))
    deviations = {s["name"] for s in summary["scenarios"] if s["verdict"] == "deviation"}
    assert deviations
    categories = shipped(directory)
    for name, found in results(directory).items():
        if name not in deviations:
            continue
        assert found["status"] == "skipped", name
        message = found["statusDetails"]["message"]
        assert "Declared deviations" in matching(categories, "skipped", message), message


# -- the categories themselves, against messages of each kind ------------------------------

GATEWAY = "gateprobe.plugin.GatewayFailure: "


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("failed", GATEWAY + "transport: no response: read timed out", ["Transport failures"]),
        (
            "failed",
            GATEWAY + "target 'gw' is unreachable at http://127.0.0.1:9 (connection refused); "
            "no request was sent",
            ["Transport failures"],
        ),
        (
            "failed",
            GATEWAY + "stream_error: 2 findings: no error event; [DONE] after the failure",
            ["Stream grammar"],
        ),
        ("failed", GATEWAY + "error_envelope: no error.type", ["Error envelopes"]),
        (
            "failed",
            GATEWAY + "status: expected HTTP status 402, got 200 | quota_charged: charged 12",
            ["Quota and billing", "Status, headers and bodies"],
        ),
        (
            "failed",
            GATEWAY + "no_secret_echo: the body quotes the key",
            ["Secret and credential leaks"],
        ),
        ("failed", GATEWAY + "models_match_calls: o3 is listed", ["Models and capabilities"]),
        # "upstream:" in a message is no stream check
        ("failed", GATEWAY + "status: the upstream: said\nno", ["Status, headers and bodies"]),
        (
            "failed",
            GATEWAY + "declared deviation (OpenAI envelope everywhere): error_envelope: no type",
            ["Error envelopes", "Declared deviations"],
        ),
        (
            "skipped",
            "XFAIL declared deviation (no [DONE]): stream: no [DONE]\n\n"
            "_pytest.outcomes.XFailed: declared deviation (no [DONE]): stream: no [DONE]",
            ["Declared deviations"],
        ),
        (
            "broken",
            "gateprobe.plugin.ScenarioFailure: scenario: cannot build the request: x",
            [BROKEN],
        ),
        ("broken", "gateprobe.plugin.ScenarioFailure: internal: KeyError: 'x'", [BROKEN]),
        ("broken", "KeyError: 'x'", [BROKEN]),
    ],
)
def test_categories_sort_messages_by_family(status: str, message: str, expected: list[str]) -> None:
    from gateprobe.report.allure import categories

    assert sorted(matching(categories(), status, message)) == sorted(expected)


def test_every_registered_check_belongs_to_a_named_family() -> None:
    from gateprobe.report.allure import categories

    shipped_categories = categories()
    # no check of today falls back to "Other gateway failures"
    assert "Other gateway failures" not in {c["name"] for c in shipped_categories}
    for name in REGISTRY:
        found = matching(shipped_categories, "failed", f"{GATEWAY}{name}: something")
        assert found, name
