"""Exit codes that tell the truth, run as a user runs the commands (the console script in a
subprocess): one ExitCode for every command, nothing selected is a usage error, a repeated
single-valued option is refused, an internal error is one line and exit 4 (a scenario gateprobe
broke is that scenario's failure, and the run goes on), pytest's selection and stop options.

Internal errors are provoked with a ``sitecustomize`` on ``PYTHONPATH`` that replaces one
function (``GP_BREAK=module:name``) or one check (``GP_BREAK_CHECK=name``) with one that
raises, before the command starts: the bug a user would meet, without a bug to ship.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN
from test_cli import run_cli, running_mock

from gateprobe.exit_codes import ExitCode

SITECUSTOMIZE = """\
import dataclasses
import importlib
import os


def _boom(*args, **kwargs):
    raise ValueError("boom, the bug under test")


if os.environ.get("GP_BREAK"):
    module, name = os.environ["GP_BREAK"].split(":")
    setattr(importlib.import_module(module), name, _boom)
if os.environ.get("GP_BREAK_CHECK"):
    from gateprobe.checks import REGISTRY

    name = os.environ["GP_BREAK_CHECK"]
    REGISTRY[name] = dataclasses.replace(REGISTRY[name], fn=_boom)
"""
ONE_LINE = "gateprobe: internal error: ValueError: boom, the bug under test"
HINT = "(run with --debug for the traceback)"
RUN_TIMEOUT = 120.0


@pytest.fixture
def breaker(tmp_path: Path) -> Path:
    """A directory for PYTHONPATH whose sitecustomize breaks what GP_BREAK* names."""
    directory = tmp_path / "breaker"
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE, "utf-8")
    return directory


def summary_of(cwd: Path) -> dict[str, Any]:
    (path,) = (cwd / "reports").glob("*/summary.json")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def run_dirs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "reports").glob("*") if p.is_dir())


# -- one set of exit codes ----------------------------------------------------------------


def test_the_exit_codes() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "SLO_BREACHED": 3,
        "INTERNAL": 4,
        "INTERRUPTED": 130,
    }
    # what a load run sets on a breach is the same 3 (asked in a process of its own:
    # importing the Locust side monkey-patches this one with gevent)
    slo = subprocess.run(
        [sys.executable, "-c", "from gateprobe.load.runtime import EXIT_SLO; print(EXIT_SLO)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(slo.stdout) == ExitCode.SLO_BREACHED


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        ((), (0, 1, 2, 3, 4, 130)),
        (("run",), (0, 1, 2, 4, 130)),
        (("demo",), (0, 1, 2, 4, 130)),
        (("validate",), (0, 2, 4, 130)),
        (("mock",), (0, 2, 4)),
        (("load",), (0, 1, 2, 3, 4, 130)),
    ],
    ids=["gateprobe", "run", "demo", "validate", "mock", "load"],
)
def test_each_help_ends_with_the_exit_codes_of_its_command(
    command: tuple[str, ...], codes: tuple[int, ...]
) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == ExitCode.OK, result.stderr
    listed = result.stdout.split("exit codes:\n", 1)[1]
    numbers = tuple(int(m) for m in re.findall(r"^  (\d+) +\S", listed, re.MULTILINE))
    assert numbers == codes, listed


# -- nothing selected ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "said"),
    [
        (("-k", "no_such_scenario"), "no scenario selected (-k 'no_such_scenario' matched none"),
        (("-m", "no_such_mark"), "no scenario selected (-m 'no_such_mark' matched none"),
        (
            ("-k", "models", "-m", "no_such_mark"),
            "no scenario selected (-k 'models' and -m 'no_such_mark' matched none",
        ),
    ],
    ids=["-k", "-m", "-k-and-m"],
)
def test_a_selection_that_matches_nothing_is_a_usage_error(
    tmp_path: Path, selection: tuple[str, ...], said: str
) -> None:
    result = run_cli("run", *selection, cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "passed," not in result.stdout  # no 0/0 table that reads like a pass
    assert run_dirs(tmp_path) == []  # and no report of nothing


def test_a_suites_directory_without_scenarios_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "suites"
    (empty / "area").mkdir(parents=True)
    (empty / "area" / "blank.yaml").write_text("# nothing yet\n", "utf-8")
    result = run_cli("run", "--suites", str(empty), cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert f"gateprobe: error: no scenario selected (no scenario in {empty})" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_of_a_directory_without_files_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    result = run_cli("validate", "nothing", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "gateprobe: error: nothing: no *.yaml or *.yml file in this directory" in result.stderr


# -- repeated options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("run", "--target", "a.yaml", "--target", "b.yaml"), "--target given twice"),
        (("run", "-k", "auth", "-k", "models"), "-k given twice"),
        (("demo", "--seed", "1", "--seed", "2"), "--seed given twice"),
        (("mock", "--port", "0", "--port", "0"), "--port given twice"),
        (("load", "--profile", "a", "--profile", "b"), "--profile given twice"),
    ],
    ids=["run-target", "run-k", "demo-seed", "mock-port", "load-profile"],
)
def test_a_single_valued_option_given_twice_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert said in result.stderr
    assert "listening" not in result.stdout and not (tmp_path / "reports").exists()


def test_options_meant_to_repeat_still_repeat() -> None:
    with running_mock("--defect", "missing-done", "--defect", "html-error-page") as mock:
        defects = httpx.get(f"{mock.url}/_gateprobe/defects", headers=ADMIN, timeout=10.0)
        code, _ = mock.stop()
    assert code == ExitCode.OK
    assert defects.status_code == 200, defects.text
    assert {"missing-done", "html-error-page"} <= set(defects.json()["defects"])


# -- internal errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "broken"),
    [
        (("validate", "suites"), "gateprobe.scenario:load_scenarios"),
        (("mock", "--port", "0"), "gateprobe.mock.server:serve"),
        (("load", "--duration", "1s"), "gateprobe.load.cli_options:run_from_args"),
        (("run",), "gateprobe.run:validate_inputs"),
        (("demo",), "gateprobe.run:validate_inputs"),
    ],
    ids=["validate", "mock", "load", "run", "demo"],
)
def test_an_internal_error_is_one_line_and_exit_4(
    tmp_path: Path, breaker: Path, args: tuple[str, ...], broken: str
) -> None:
    (tmp_path / "suites" / "x").mkdir(parents=True)
    (tmp_path / "suites" / "x" / "a.yaml").write_text("id: x.a\n", "utf-8")
    env = {"PYTHONPATH": str(breaker), "GP_BREAK": broken}
    result = run_cli(*args, cwd=tmp_path, timeout=RUN_TIMEOUT, **env)
    assert result.returncode == ExitCode.INTERNAL, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == f"{ONE_LINE} {HINT}"

    debug = run_cli("--debug", *args, cwd=tmp_path, timeout=RUN_TIMEOUT, **env)
    assert debug.returncode == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == ONE_LINE


def test_debug_is_accepted_after_the_command_too(tmp_path: Path, breaker: Path) -> None:
    env = {"PYTHONPATH": str(breaker), "GP_BREAK": "gateprobe.scenario:load_scenarios"}
    (tmp_path / "a.yaml").write_text("id: x.a\n", "utf-8")
    result = run_cli("validate", "--debug", "a.yaml", cwd=tmp_path, **env)
    assert result.returncode == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in result.stderr


def test_a_scenario_gateprobe_broke_fails_as_internal_and_the_run_goes_on(
    tmp_path: Path, breaker: Path
) -> None:
    env = {"PYTHONPATH": str(breaker), "GP_BREAK_CHECK": "no_secret_echo"}
    # auth.missing_key expects no_secret_echo; models.list does not
    selection = "missing_key or models.list"
    result = run_cli("run", "-k", selection, cwd=tmp_path, timeout=RUN_TIMEOUT, **env)
    output = result.stdout + result.stderr
    assert result.returncode == ExitCode.INTERNAL, output
    assert "Traceback" not in output
    summary = summary_of(tmp_path)
    verdicts = {s["name"]: s["verdict"] for s in summary["scenarios"]}
    broken = sorted(n for n in verdicts if n.startswith("auth.missing_key"))
    assert broken == [f"auth.missing_key[{p}]" for p in ("anthropic", "gemini", "openai")]
    assert all(verdicts[n] == "fail" for n in broken)
    assert any(v == "pass" for n, v in verdicts.items() if n not in broken)  # it went on
    record = next(s for s in summary["scenarios"] if s["name"] == broken[0])
    (failure,) = [f for step in record["steps"] for f in step["failures"]]
    assert failure["check"] == "internal"
    assert failure["message"] == f"ValueError: boom, the bug under test {HINT}"
    assert record["reason"].startswith("internal: ValueError: boom")
    # the table still prints, then what broke and the one line
    totals = summary["totals"]
    assert f"{totals['pass']} passed, {totals['fail']} failed" in result.stdout
    assert "3 scenario(s) broken by an error of gateprobe" in result.stderr
    assert result.stderr.splitlines()[-1] == f"{ONE_LINE} {HINT}"

    debug = run_cli("--debug", "run", "-k", "missing_key and openai", cwd=tmp_path, **env)
    assert debug.returncode == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in debug.stdout  # in the scenario's failure


def test_a_rendered_argument_that_does_not_fit_fails_the_scenario(tmp_path: Path) -> None:
    suite = tmp_path / "suites" / "rendered"
    suite.mkdir(parents=True)
    (suite / "status.yaml").write_text(
        """\
id: rendered.status_from_a_header
title: A status templated from a saved value that is no status
steps:
  - name: list the models
    request: {protocol: openai, operation: models}
    expect: {status: 200}
    save: {ctype: headers.content-type}
  - name: expect the saved value as the status
    request: {protocol: openai, operation: models}
    expect: {status: "{ctype}"}
""",
        "utf-8",
    )
    result = run_cli("run", "--suites", str(tmp_path / "suites"), cwd=tmp_path)
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (record,) = summary_of(tmp_path)["scenarios"]
    assert record["verdict"] == "fail"
    assert record["reason"] == (
        "scenario: steps[1].expect.status: expected an HTTP status (100-599) or a list of "
        "them, got 'application/json' (rendered from '{ctype}')"
    )
    assert record["steps"][1]["status"] is None  # refused before it was sent


# -- pytest's selection and stop options ------------------------------------------------------


def test_m_selects_by_mark(tmp_path: Path) -> None:
    result = run_cli("run", "-m", "smoke", cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    selected = summary_of(tmp_path)["scenarios"]
    assert selected
    from gateprobe.run import DEFAULT_SUITES
    from gateprobe.scenario import load_scenarios, scenario_files

    smoke = {
        s.id
        for path in scenario_files(DEFAULT_SUITES)
        for s in load_scenarios(path, DEFAULT_SUITES)
        if "smoke" in s.marks
    }
    assert {s["id"] for s in selected} == smoke


@pytest.mark.parametrize(("stop", "most"), [(("-x",), 1), (("--maxfail", "2"), 2)])
def test_x_and_maxfail_stop_the_run(tmp_path: Path, stop: tuple[str, ...], most: int) -> None:
    result = run_cli("run", "--defect", "html-error-page", *stop, cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    totals = summary_of(tmp_path)["totals"]
    assert totals["fail"] == most
    assert f"{totals['pass']} passed, {most} failed" in result.stdout  # the table of what ran
    assert f"gateprobe: stopped after {most} failed scenario(s)" in result.stdout


def test_lf_reruns_what_failed_in_the_last_run(tmp_path: Path) -> None:
    first = run_cli(
        "run", "--defect", "html-error-page", "-k", "auth", cwd=tmp_path, timeout=RUN_TIMEOUT
    )
    assert first.returncode == ExitCode.FAILED, first.stdout + first.stderr
    (earlier,) = run_dirs(tmp_path)
    failed = {
        s["name"]
        for s in json.loads((earlier / "summary.json").read_text("utf-8"))["scenarios"]
        if s["verdict"] == "fail"
    }
    assert any("[" in name for name in failed)  # parametrized scenarios among them

    again = run_cli("run", "--lf", "-n", "2", cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert again.returncode == ExitCode.OK, again.stdout + again.stderr  # the mock is healed
    assert f"--lf: the {len(failed)} scenario(s) that failed in {earlier}" in again.stdout
    later = next(p for p in run_dirs(tmp_path) if p != earlier)
    rerun = json.loads((later / "summary.json").read_text("utf-8"))["scenarios"]
    assert {s["name"] for s in rerun} == failed

    # nothing failed in the latest run: --lf runs everything, as pytest's does
    third = run_cli("run", "--lf", "-k", "models", cwd=tmp_path, timeout=RUN_TIMEOUT)
    assert third.returncode == ExitCode.OK, third.stdout + third.stderr
    assert "--lf: nothing failed in" in third.stdout


def test_x_and_maxfail_exclude_each_other(tmp_path: Path) -> None:
    result = run_cli("run", "-x", "--maxfail", "3", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "not allowed with argument -x/--exitfirst" in result.stderr


def test_run_help_documents_the_pass_through_options() -> None:
    result = run_cli("run", "--help")
    for option in ("-m EXPR", "-x, --exitfirst", "--maxfail N", "--lf, --last-failed", "-k EXPR"):
        assert option in result.stdout, option
    assert "summary.json of the latest run under --report-dir" in " ".join(result.stdout.split())
