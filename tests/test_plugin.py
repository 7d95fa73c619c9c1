"""The gateprobe pytest plugin, in process (pytester): collection, verdicts, xdist.

Each test writes a small suites directory and a target profile into pytester's directory and
runs pytest there. The target is a bundled mock this module starts and provisions itself (fresh
random keys through the admin API) and stops at the end; the inner runs find it through the
GATEPROBE_MOCK_* variables, set with monkeypatch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateprobe.provision import MOCK_TARGET, start_bundled_mock

pytest_plugins = ["pytester"]

# A file with two scenarios: the first parametrized and marked, the second neither.
MODELS = """\
# the model lists
id: models.listed
title: The model list answers in each protocol's shape
marks: [smoke]
requires: {capabilities: ["{protocol}.models"]}
parametrize:
  protocol: [openai, anthropic, gemini]
steps:
  - request: {protocol: "{protocol}", operation: models}
    expect: {status: 200}
---
id: models.one
title: One model by id
steps:
  - request: {protocol: openai, operation: model}
    expect: {status: 200}
"""

CHAT = """\
id: chat.plain
title: A plain chat call answers
parametrize:
  protocol: [openai, gemini]
  stream: [false, true]
steps:
  - request: {protocol: "{protocol}", operation: chat, stream: "{stream}"}
    expect: {status: 200}
"""

VERDICTS = """\
id: verdicts.passes
title: The OpenAI model list answers 200
steps:
  - name: list the models
    request: {protocol: openai, operation: models}
    expect: {status: 200, content_type: application/json}
---
id: verdicts.fails
title: Expects a teapot from the model list
steps:
  - name: list the models, expecting a teapot
    request: {protocol: openai, operation: models}
    expect:
      content_type: application/json
      status: 418
---
id: verdicts.needs_embeddings
title: Needs a capability the partial target does not claim
requires: {capabilities: [openai.embeddings]}
steps:
  - request: {protocol: openai, operation: embeddings}
    expect: {status: 200}
---
id: verdicts.needs_second_key
title: Needs a key kind the partial target does not provide
steps:
  - request: {protocol: openai, operation: models, key: valid2}
    expect: {status: 200}
---
id: verdicts.deviates
title: Expects a header the mock never sends
steps:
  - request: {protocol: openai, operation: models}
    expect:
      status: 200
      headers: {x-gateprobe-never-sent: true}
---
id: verdicts.saves
title: A value saved by one step is used by the next
steps:
  - name: list the models
    request: {protocol: openai, operation: models}
    expect: {status: 200}
    save: {model_id: "json.data[1].id", rid: "headers.x-request-id"}
  - name: fetch the saved model
    request: {protocol: openai, method: GET, path: "{target.paths.openai}/models/{model_id}"}
    expect:
      status: 200
      json: {id: "{model_id}", object: model}
---
id: verdicts.saved_then_fails
title: The failure text shows the saved value and the request that used it
steps:
  - name: list the models
    request: {protocol: openai, operation: models}
    expect: {status: 200}
    save: {model_id: "json.data[1].id"}
  - name: fetch the saved model, expecting a teapot
    request: {protocol: openai, method: GET, path: "{target.paths.openai}/models/{model_id}"}
    expect: {status: 418}
"""

# Same mock, fewer claims: only the valid key, no embeddings, one declared deviation.
PARTIAL_TARGET = """\
name: partial-mock
base_url: ${GATEPROBE_MOCK_URL}
keys:
  valid: GATEPROBE_MOCK_KEY_VALID
models:
  chat: {openai: gpt-4o-mini, anthropic: claude-sonnet-4-5, gemini: gemini-2.5-flash}
  embeddings: text-embedding-3-small
capabilities: [openai.models, openai.chat]
deviations:
  - scenario: verdicts.deviates
    check: headers
    reason: this gateway never sends the header
timeouts: {connect: 5, read: 10, total: 20}
"""


@pytest.fixture(scope="module")
def mock_env() -> Iterator[dict[str, str]]:
    """A bundled mock with freshly provisioned keys; the variables a target reads."""
    server, env = start_bundled_mock()
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture
def gp(pytester: pytest.Pytester, mock_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """pytester with the mock's variables set and a helper to write the ini file."""
    for name, value in mock_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


def write_ini(pytester: pytest.Pytester, target: Path | str | None, suites: str = "suites") -> None:
    lines = ["[pytest]", "addopts = --strict-markers -p no:cacheprovider"]
    if target is not None:
        lines.append(f"gateprobe_target = {target}")
    lines.append(f"gateprobe_suites = {suites}")
    (pytester.path / "pytest.ini").write_text("\n".join(lines) + "\n", "utf-8")


def write(pytester: pytest.Pytester, relative: str, text: str) -> Path:
    path = pytester.path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` that starts with ``text``."""
    lines = path.read_text("utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(text))


def selected(pytester: pytest.Pytester, *args: str) -> list[pytest.Item]:
    """The items a run would execute (after -m/-k deselection)."""
    reprec = pytester.inline_run("--collect-only", *args)
    finished = reprec.getcalls("pytest_collection_finish")
    return list(finished[0].session.items)


def partial_target(pytester: pytest.Pytester) -> Path:
    return write(pytester, "partial.yaml", PARTIAL_TARGET)


# -- collection --------------------------------------------------------------------------------


def test_one_item_per_scenario_and_parameter_located_at_the_scenario(
    gp: pytest.Pytester,
) -> None:
    models = write(gp, "suites/models/list.yaml", MODELS)
    chat = write(gp, "suites/chat/plain.yaml", CHAT)
    write_ini(gp, MOCK_TARGET)

    items, _ = gp.inline_genitems()
    by_name = {item.name: item for item in items}
    assert sorted(by_name) == sorted(
        [
            "models.listed[openai]",
            "models.listed[anthropic]",
            "models.listed[gemini]",
            "models.one",
            "chat.plain[openai-False]",
            "chat.plain[openai-True]",
            "chat.plain[gemini-False]",
            "chat.plain[gemini-True]",
        ]
    )
    listed_line = line_of(models, "id: models.listed")
    one_line = line_of(models, "id: models.one")
    assert listed_line == 2 and one_line == 12
    for name, item in by_name.items():
        path, lineno, shown = item.reportinfo()
        expected_file = chat if name.startswith("chat.") else models
        expected_line = {"models.one": one_line}.get(name, 1 if name.startswith("chat.") else 2)
        assert Path(path) == expected_file, name
        assert lineno == expected_line - 1, name  # pytest's locations are 0-based
        assert shown == name
        assert item.location[0] == str(expected_file.relative_to(gp.path))
        assert item.location[1] == expected_line - 1

    result = gp.runpytest("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "suites/chat/plain.yaml::chat.plain[openai-False]",
            "suites/models/list.yaml::models.listed[openai]",
            "suites/models/list.yaml::models.one",
            "8 tests collected*",
        ],
        consecutive=False,
    )


def test_scenario_marks_select_with_dash_m(gp: pytest.Pytester) -> None:
    write(gp, "suites/models/list.yaml", MODELS)
    write(gp, "suites/chat/plain.yaml", CHAT)
    write_ini(gp, MOCK_TARGET)

    items = selected(gp, "-m", "smoke")
    assert sorted(i.name for i in items) == [
        "models.listed[anthropic]",
        "models.listed[gemini]",
        "models.listed[openai]",
    ]
    assert all(i.get_closest_marker("smoke") is not None for i in items)
    assert all(i.get_closest_marker("gateprobe") is not None for i in items)
    unmarked = selected(gp, "-m", "not smoke")
    assert len(unmarked) == 5
    assert all(i.get_closest_marker("smoke") is None for i in unmarked)


def test_yaml_outside_the_suites_dirs_is_not_collected(gp: pytest.Pytester) -> None:
    write(gp, "suites/models/list.yaml", MODELS)
    # Valid scenarios, but not under the suites directory: never collected.
    write(gp, "elsewhere/chat.yaml", CHAT)
    write(gp, "stray.yaml", CHAT)
    write_ini(gp, MOCK_TARGET)

    items, _ = gp.inline_genitems()
    assert {Path(str(i.path)).parent.name for i in items} == {"models"}
    assert len(items) == 4
    # Named explicitly on the command line, the directory still holds no scenarios.
    result = gp.runpytest("--collect-only", "-q", "elsewhere")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "chat.plain" not in result.stdout.str()


def test_other_suites_directories_are_collected_when_configured(gp: pytest.Pytester) -> None:
    write(gp, "suites/models/list.yaml", MODELS)
    write(gp, "extra/chat/plain.yaml", CHAT)
    write_ini(gp, MOCK_TARGET, suites="extra")

    items, _ = gp.inline_genitems()
    assert sorted({i.name.split("[")[0] for i in items}) == ["chat.plain"]


def test_without_a_target_nothing_is_collected(gp: pytest.Pytester) -> None:
    write(gp, "suites/models/list.yaml", MODELS)
    write_ini(gp, None)

    items, _ = gp.inline_genitems()
    assert items == []
    result = gp.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


# -- verdicts ----------------------------------------------------------------------------------


def reports_by_name(reprec: Any) -> dict[str, pytest.TestReport]:
    """The call-phase report of each item (the setup report for items skipped before)."""
    out: dict[str, pytest.TestReport] = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            out[name] = report
    return out


def test_verdicts_pass_fail_skip_and_declared_deviation(gp: pytest.Pytester) -> None:
    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    target = partial_target(gp)
    write_ini(gp, target)

    reprec = gp.inline_run()
    reprec.assertoutcome(passed=2, skipped=3, failed=2)  # the xfail counts as skipped
    reports = reports_by_name(reprec)
    assert reports["verdicts.passes"].passed
    assert reports["verdicts.saves"].passed

    skipped = reports["verdicts.needs_embeddings"]
    assert skipped.skipped
    assert isinstance(skipped.longrepr, tuple)
    assert (
        "capability 'openai.embeddings' not claimed by target 'partial-mock'"
        in (skipped.longrepr[2])
    )
    no_key = reports["verdicts.needs_second_key"]
    assert no_key.skipped
    assert isinstance(no_key.longrepr, tuple)
    assert "key kind 'valid2' not provided by target 'partial-mock'" in no_key.longrepr[2]

    deviation = reports["verdicts.deviates"]
    assert deviation.skipped and hasattr(deviation, "wasxfail")
    assert "declared deviation (this gateway never sends the header)" in deviation.wasxfail
    assert "x-gateprobe-never-sent" in deviation.wasxfail

    # The same scenarios, seen by a user: -rsx lists the reasons.
    result = gp.runpytest("-rsx")
    result.assert_outcomes(passed=2, skipped=2, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*SKIPPED*capability 'openai.embeddings' not claimed*",
            "*SKIPPED*key kind 'valid2' not provided*",
            "*XFAIL*verdicts.deviates*declared deviation*",
        ],
        consecutive=False,
    )


def test_failure_text_shows_the_yaml_the_check_and_the_exchange(
    gp: pytest.Pytester, mock_env: dict[str, str]
) -> None:
    suite = write(gp, "suites/verdicts/all.yaml", VERDICTS)
    target = partial_target(gp)
    write_ini(gp, target)

    reprec = gp.inline_run("-k", "verdicts.fails")
    reprec.assertoutcome(failed=1)
    text = str(reports_by_name(reprec)["verdicts.fails"].longrepr)
    start = line_of(suite, "id: verdicts.fails")
    # Where the scenario is, and its YAML with line numbers.
    assert f"{suite}:{start}" in text
    assert f"{start:>4} | id: verdicts.fails" in text
    assert f"{start + 7:>4} |       status: 418" in text
    assert "id: verdicts.passes" not in text  # only this scenario's lines
    # The failed check, with expected and actual.
    assert "x status: expected HTTP status 418, got 200" in text
    assert "expected: 418" in text
    assert "actual:   200" in text
    assert "step 1 'list the models, expecting a teapot'" in text
    # The exchange: request line, masked credentials, response status and body.
    assert f"> GET {mock_env['GATEPROBE_MOCK_URL']}/v1/models" in text
    assert "> authorization: Bearer sk-" in text
    assert "< HTTP 200" in text
    assert '< {"object":"list","data":[' in text
    assert mock_env["GATEPROBE_MOCK_KEY_VALID"] not in text


def test_saved_values_reach_the_next_step(gp: pytest.Pytester, mock_env: dict[str, str]) -> None:
    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    target = partial_target(gp)
    write_ini(gp, target)
    report_dir = gp.path / "out"

    reprec = gp.inline_run("-k", "saves or saved_then", f"--gateprobe-report-dir={report_dir}")
    reprec.assertoutcome(passed=1, failed=1)
    summary = json.loads((report_dir / "summary.json").read_text("utf-8"))
    records = {r["name"]: r for r in summary["scenarios"]}
    saves = records["verdicts.saves"]
    assert saves["verdict"] == "pass"
    assert [s["status"] for s in saves["steps"]] == [200, 200]
    assert "json" in saves["steps"][1]["checks"]

    # The second step requested the model that the first step saved (data[1], not data[0]).
    failed = reports_by_name(reprec)["verdicts.saved_then_fails"]
    text = str(failed.longrepr)
    saved = json.loads(text.split("resolved values: ", 1)[1].splitlines()[0])["model_id"]
    assert saved and saved != "gpt-4o-mini"  # data[0] of the mock's list
    assert f"> GET {mock_env['GATEPROBE_MOCK_URL']}/v1/models/{saved}" in text
    assert f'< {{"id":"{saved}","object":"model"' in text


def test_strict_makes_a_declared_deviation_fail(gp: pytest.Pytester) -> None:
    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    target = partial_target(gp)
    write_ini(gp, target)
    report_dir = gp.path / "strict-out"

    reprec = gp.inline_run(
        "-k", "deviates", "--gateprobe-strict", f"--gateprobe-report-dir={report_dir}"
    )
    reprec.assertoutcome(failed=1)
    text = str(reports_by_name(reprec)["verdicts.deviates"].longrepr)
    assert "declared deviation: this gateway never sends the header" in text
    summary = json.loads((report_dir / "summary.json").read_text("utf-8"))
    assert summary["strict"] is True
    assert [(r["name"], r["verdict"]) for r in summary["scenarios"]] == [
        ("verdicts.deviates", "fail")
    ]
    assert summary["totals"]["fail"] == 1


# -- xdist -------------------------------------------------------------------------------------


def verdicts(summary_path: Path) -> dict[str, str]:
    summary = json.loads(summary_path.read_text("utf-8"))
    return {r["name"]: r["verdict"] for r in summary["scenarios"]}


def test_xdist_gives_the_same_verdicts_as_a_serial_run(gp: pytest.Pytester) -> None:
    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    write(gp, "suites/models/list.yaml", MODELS)
    target = partial_target(gp)
    write_ini(gp, target)

    serial = gp.runpytest(f"--gateprobe-report-dir={gp.path / 'serial'}")
    parallel = gp.runpytest("-n", "2", f"--gateprobe-report-dir={gp.path / 'parallel'}")
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    assert "2 workers" in parallel.stdout.str() or "gw1" in parallel.stdout.str()
    expected = verdicts(gp.path / "serial" / "summary.json")
    assert len(expected) == 11
    assert set(expected.values()) == {"pass", "fail", "skip", "deviation"}
    assert expected["models.listed[anthropic]"] == "skip"  # the partial target claims openai only
    assert verdicts(gp.path / "parallel" / "summary.json") == expected


# -- interrupts --------------------------------------------------------------------------------


def test_sigterm_mid_scenario_ends_the_run_with_reports_of_what_ran(
    gp: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    from xml.etree import ElementTree

    import gateprobe.runner

    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    write_ini(gp, partial_target(gp))
    real = gateprobe.runner.send_built
    sent: list[str] = []

    def send_built(*args: Any, **kwargs: Any) -> Any:
        sent.append(args[0].url)
        if len(sent) == 3:  # in verdicts.deviates, the fifth scenario (two skips before it)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(gateprobe.runner, "send_built", send_built)
    before = signal.getsignal(signal.SIGTERM)
    out = gp.path / "out"
    reprec = gp.inline_run(
        f"--gateprobe-report-dir={out}", f"--junitxml={out / 'junit.xml'}", no_reraise_ctrlc=True
    )
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    assert signal.getsignal(signal.SIGTERM) is before  # the inner run's handler is gone
    assert len(sent) == 3  # nothing was sent after the interrupt
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["interrupted"] is True
    interruption = summary["interruption"]
    assert interruption["by"] == "SIGTERM" and interruption["selected"] == 7
    assert interruption["ran"] == 4 and interruption["cut_short"] == ["verdicts.deviates"]
    assert sorted(r["name"] for r in summary["scenarios"]) == [
        "verdicts.fails",
        "verdicts.needs_embeddings",
        "verdicts.needs_second_key",
        "verdicts.passes",
    ]
    # the scenario cut short: skipped with the reason, not passed, not failed
    reports = reports_by_name(reprec)
    assert reports["verdicts.deviates"].skipped
    assert "interrupted (SIGTERM) before the scenario finished" in str(
        reports["verdicts.deviates"].longrepr
    )
    suite = ElementTree.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    own = suite.find("properties")  # the testsuite's own, not its testcases'
    assert own is not None
    properties = {p.get("name"): p.get("value") for p in own.findall("property")}
    assert properties["gateprobe_interrupted"] == "true"
    assert properties["gateprobe_interrupted_by"] == "SIGTERM"


def test_a_collection_error_is_no_interrupt(gp: pytest.Pytester) -> None:
    write(gp, "suites/verdicts/all.yaml", VERDICTS)
    write(gp, "suites/broken/bad.yaml", "id: broken.one\ntitle: [unclosed\n")
    write_ini(gp, partial_target(gp))
    out = gp.path / "out"
    reprec = gp.inline_run(f"--gateprobe-report-dir={out}", no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED  # pytest's way of ending on such errors
    assert json.loads((out / "summary.json").read_text("utf-8"))["interrupted"] is False
