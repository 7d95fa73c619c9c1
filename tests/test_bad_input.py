"""Bad input to the harness: exit code 2 and a message naming file, line and field.

For each broken target profile or scenario file, both ``gateprobe run`` (``--target`` or
``--suites``) and ``gateprobe validate`` run as subprocesses of the real console script. Nothing
is ever sent: the target's base URL is a closed loopback port, and validation comes first.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

GATEPROBE = Path(sys.executable).parent / "gateprobe"
KEY_VARIABLE = "GP_BAD_INPUT_KEY"

GOOD_TARGET = """\
name: nowhere
base_url: http://127.0.0.1:9
keys: {valid: GP_BAD_INPUT_KEY}
capabilities: [openai.models]
timeouts: {connect: 1, read: 1, total: 2}
"""

GOOD_SCENARIO = """\
id: bad.fine
title: A valid scenario
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200}
"""


@dataclass(frozen=True)
class Case:
    kind: str  # "target" or "scenario"
    text: str  # the broken file
    line: int  # where the message must point
    field: str | None  # the field it must name (None: a syntax error has none)
    words: str  # in the message, too
    sibling: str | None = None  # a second scenario file in the same directory


TARGET_CASES = {
    "yaml-syntax": Case(
        "target",
        "name: broken\nbase_url: http://127.0.0.1:9\ntimeouts:\n  connect: 1\n read: 2\n",
        5,
        None,
        "invalid YAML",
    ),
    "unknown-field": Case(
        "target",
        GOOD_TARGET + "colour: red\n",
        6,
        "colour",
        "unknown field 'colour'",
    ),
    "wrong-type": Case(
        "target",
        GOOD_TARGET.replace("read: 1", "read: soon"),
        5,
        "timeouts.read",
        "'soon' is not of type 'number'",
    ),
    "nested-unknown-field": Case(
        "target",
        GOOD_TARGET + "dialect:\n  insufficient_quota_status: 403\n  envelope: openai\n",
        8,
        "dialect.envelope",
        "unknown field 'envelope'",
    ),
}

# A missing variable is only an error where the environment matters: `run`. (`validate`
# checks the file, not the shell: it reads every variable as set.)
MISSING_VARIABLE = {
    "missing-key-variable": Case(
        "target",
        GOOD_TARGET.replace("GP_BAD_INPUT_KEY", "GP_BAD_INPUT_UNSET"),
        3,
        "keys.valid",
        "GP_BAD_INPUT_UNSET is not set",
    ),
    "missing-url-variable": Case(
        "target",
        GOOD_TARGET.replace("http://127.0.0.1:9", "${GP_BAD_INPUT_UNSET_URL}/v1"),
        2,
        "base_url",
        "GP_BAD_INPUT_UNSET_URL is not set",
    ),
}

SCENARIO_CASES = {
    "scenario-yaml-syntax": Case(
        "scenario",
        "id: bad.syntax\ntitle: t\nsteps:\n  - request: {protocol: openai, operation: models\n"
        "    expect: {status: 200}\n",
        5,
        None,
        "invalid YAML",
    ),
    "scenario-unknown-field": Case(
        "scenario",
        GOOD_SCENARIO.replace("    expect:", "    retries: 3\n    expect:"),
        5,
        "steps[0].retries",
        "unknown field 'retries'",
    ),
    "scenario-wrong-type": Case(
        "scenario",
        GOOD_SCENARIO.replace("title: A valid scenario", "title: t\nmarks: smoke"),
        3,
        "marks",
        "'smoke' is not of type 'array'",
    ),
    "unknown-check": Case(
        "scenario",
        GOOD_SCENARIO.replace(
            "expect: {status: 200}", "expect:\n      status: 200\n      staus_code: 200"
        ),
        7,
        "steps[0].expect.staus_code",
        "unknown check 'staus_code'",
    ),
    "check-value-wrong-type": Case(
        "scenario",
        GOOD_SCENARIO.replace("{status: 200}", '{status: "two hundred"}'),
        5,
        "steps[0].expect.status",
        "expected an HTTP status (100-599) or a list of them, got 'two hundred'",
    ),
    "check-value-not-a-number": Case(
        "scenario",
        GOOD_SCENARIO.replace("{status: 200}", "{status: 200, max_ttft_ms: fast}"),
        5,
        "steps[0].expect.max_ttft_ms",
        "expected milliseconds (> 0), got 'fast'",
    ),
    "check-value-unknown-mode": Case(
        "scenario",
        GOOD_SCENARIO.replace("{status: 200}", "{stream_error: sideways}"),
        5,
        "steps[0].expect.stream_error",
        "expected one of before-first-byte, mid-stream, cut, got 'sideways'",
    ),
    "check-value-nested-field": Case(
        "scenario",
        GOOD_SCENARIO.replace(
            "expect: {status: 200}",
            "expect:\n      status: 200\n      budget_enforced:\n        max_calls: -1",
        ),
        8,
        "steps[0].expect.budget_enforced.max_calls",
        "expected a whole number of calls >= 1, got -1",
    ),
    "unknown-template-name": Case(
        "scenario",
        "id: bad.template\ntitle: t\nsteps:\n  - request:\n      protocol: openai\n"
        "      operation: chat\n      body:\n        user: '{saved_user}'\n",
        8,
        "steps[0].request.body.user",
        "template names 'saved_user'",
    ),
    "second-document-error": Case(
        "scenario",
        GOOD_SCENARIO
        + "---\n"
        + GOOD_SCENARIO.replace("bad.fine", "bad.other").replace(
            "operation: models}", "operation: models, verb: GET}"
        ),
        10,
        "steps[0].request.verb",
        "unknown field 'verb'",
    ),
    "duplicate-id": Case(
        "scenario",
        "# the second definition\n" + GOOD_SCENARIO,
        2,
        "id",
        "duplicate scenario id 'bad.fine'",
        sibling=GOOD_SCENARIO,
    ),
}


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEPROBE_", "PYTEST_", "GP_")) and k != "PYTHONPATH"
    }
    env[KEY_VARIABLE] = "sk-bad-input-0123456789"
    return env


def gateprobe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEPROBE), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_case(tmp_path: Path, case: Case) -> tuple[Path, Path]:
    """(the broken file, the target to run with); scenarios go in suites/bad/."""
    if case.kind == "target":
        broken = tmp_path / "target.yaml"
        broken.write_text(case.text, "utf-8")
        return broken, broken
    target = tmp_path / "target.yaml"
    target.write_text(GOOD_TARGET, "utf-8")
    suite = tmp_path / "suites" / "bad"
    suite.mkdir(parents=True)
    if case.sibling is not None:
        (suite / "a_first.yaml").write_text(case.sibling, "utf-8")
    broken = suite / "b_broken.yaml"
    broken.write_text(case.text, "utf-8")
    return broken, target


def assert_usage_error(
    result: subprocess.CompletedProcess[str], broken: Path, case: Case, tmp_path: Path
) -> None:
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 2, output
    assert "Traceback" not in result.stderr + result.stdout, output
    lines = [line for line in result.stderr.splitlines() if line.startswith("gateprobe: error:")]
    assert len(lines) == 1, output
    message = lines[0]
    # file:line: field: message, the file as the user can find it.
    match = re.match(r"gateprobe: error: (.+?):(\d+): (.*)$", message)
    assert match is not None, output
    named = Path(match.group(1))
    assert (named if named.is_absolute() else tmp_path / named).resolve() == broken.resolve()
    assert int(match.group(2)) == case.line, output
    if case.field is not None:
        assert match.group(3).startswith(f"{case.field}: "), output
    assert case.words in message, output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def run_args(case: Case, target: Path, tmp_path: Path) -> list[str]:
    args = ["run", "--target", target.name]
    if case.kind == "scenario":
        args += ["--suites", str(tmp_path / "suites")]
    return args


@pytest.mark.parametrize(
    "case",
    list({**TARGET_CASES, **MISSING_VARIABLE, **SCENARIO_CASES}.values()),
    ids=list({**TARGET_CASES, **MISSING_VARIABLE, **SCENARIO_CASES}),
)
def test_run_reports_bad_input(tmp_path: Path, case: Case) -> None:
    broken, target = write_case(tmp_path, case)
    result = gateprobe(*run_args(case, target, tmp_path), cwd=tmp_path)
    assert_usage_error(result, broken, case, tmp_path)


@pytest.mark.parametrize(
    "case",
    list({**TARGET_CASES, **SCENARIO_CASES}.values()),
    ids=list({**TARGET_CASES, **SCENARIO_CASES}),
)
def test_validate_reports_bad_input(tmp_path: Path, case: Case) -> None:
    broken, _ = write_case(tmp_path, case)
    # A duplicate needs its first definition: validate the directory that holds both.
    given = broken.parent if case.sibling is not None else broken
    result = gateprobe("validate", str(given.relative_to(tmp_path)), cwd=tmp_path)
    assert_usage_error(result, broken, case, tmp_path)


CHECK_VALUE_CASES = [k for k in SCENARIO_CASES if k.startswith("check-value-")]


@pytest.mark.parametrize("name", CHECK_VALUE_CASES)
def test_pytest_collection_reports_a_wrong_check_value(tmp_path: Path, name: str) -> None:
    case = SCENARIO_CASES[name]
    broken, target = write_case(tmp_path, case)
    plugin = ["--gateprobe-target", str(target), "--gateprobe-suites", "suites"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *plugin, "suites"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # pytest's: interrupted by a collection error
    assert "Traceback" not in output
    assert f"{broken}:{case.line}: {case.field}: {case.words}" in output


def test_validate_accepts_the_good_files_and_names_them(tmp_path: Path) -> None:
    (tmp_path / "target.yaml").write_text(GOOD_TARGET, "utf-8")
    suite = tmp_path / "suites" / "bad"
    suite.mkdir(parents=True)
    (suite / "fine.yaml").write_text(GOOD_SCENARIO, "utf-8")
    result = gateprobe("validate", "target.yaml", "suites", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok  target.yaml" in result.stdout
    assert "2 file(s) valid" in result.stdout
    # The same scenario file named twice is not a duplicate of itself.
    again = gateprobe("validate", "suites", "suites/bad/fine.yaml", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_validate_accepts_templated_check_values(tmp_path: Path) -> None:
    # what a template renders to is known when the scenario runs: then it is checked
    (tmp_path / "templated.yaml").write_text(
        GOOD_SCENARIO.replace(
            "expect: {status: 200}",
            'expect: {status: "{target.dialect.auth_error_status}", max_ttft_ms: "{limit}"}',
        ).replace("steps:", "parametrize: {limit: [100]}\nsteps:"),
        "utf-8",
    )
    result = gateprobe("validate", "templated.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 file(s) valid" in result.stdout


def test_validate_ignores_the_shell_but_run_needs_the_variable(tmp_path: Path) -> None:
    case = MISSING_VARIABLE["missing-key-variable"]
    broken, target = write_case(tmp_path, case)
    checked = gateprobe("validate", "target.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    result = gateprobe(*run_args(case, target, tmp_path), cwd=tmp_path)
    assert_usage_error(result, broken, case, tmp_path)
