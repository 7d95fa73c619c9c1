"""The command line's parsing rules, in-process: every single-valued option of every command
refuses a second occurrence, options meant to repeat repeat, and ``main`` maps each kind of
error to its exit code. (tests/test_exit_codes.py runs the same as a user does.)"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateprobe import cli
from gateprobe.errors import DEBUG_ENV, UsageError
from gateprobe.exit_codes import ExitCode

# Action classes that take no value or are meant to repeat; any other is a single value.
NOT_SINGLE_VALUED = {
    "_AppendAction",
    "_HelpAction",
    "_StoreConstAction",
    "_StoreFalseAction",
    "_StoreTrueAction",
    "_SubParsersAction",
    "_VersionAction",
}
REPEATABLE = {("run", "--suites"), ("run", "--defect"), ("demo", "--defect"), ("mock", "--defect")}
REPEATABLE |= {("demo", "--suites"), ("load", "--slo")}


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    parser = cli._build_parser()
    yield "", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def single_valued() -> list[tuple[str, argparse.Action]]:
    return [
        (name, action)
        for name, parser in commands()
        for action in parser._actions
        if action.option_strings and type(action).__name__ not in NOT_SINGLE_VALUED
    ]


def a_value(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    return "1"  # parses as an int, a float, a path and a string alike


def test_every_single_valued_option_is_store_once() -> None:
    found = single_valued()
    assert len(found) > 30  # every command's options, not none of them
    assert [(n, a.option_strings) for n, a in found if not isinstance(a, cli.StoreOnce)] == []


@pytest.mark.parametrize(
    ("command", "action"),
    single_valued(),
    ids=[f"{n}{a.option_strings[-1]}" for n, a in single_valued()],
)
def test_each_single_valued_option_given_twice_is_refused(
    command: str, action: argparse.Action, capsys: pytest.CaptureFixture[str]
) -> None:
    option, value = action.option_strings[-1], a_value(action)
    prefix = [command] if command else []
    once = cli._build_parser().parse_args([*prefix, option, value])
    assert getattr(once, action.dest) is not None
    with pytest.raises(SystemExit) as exited:
        cli._build_parser().parse_args([*prefix, option, value, option, value])
    assert exited.value.code == ExitCode.USAGE
    assert f"{'/'.join(action.option_strings)} given twice" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "option"), sorted(REPEATABLE))
def test_options_meant_to_repeat_repeat(command: str, option: str) -> None:
    value = "a=1" if option == "--slo" else "x"
    args = cli._build_parser().parse_args([command, option, value, option, value + "2"])
    dest = option.lstrip("-")
    assert len(getattr(args, dest)) == 2


def test_debug_before_the_command_is_kept_by_the_command() -> None:
    parser = cli._build_parser()
    assert parser.parse_args(["--debug", "validate", "x"]).debug is True
    assert parser.parse_args(["validate", "--debug", "x"]).debug is True
    assert parser.parse_args(["validate", "x"]).debug is False


# -- main's exit codes ---------------------------------------------------------------------


def _raise(exc: BaseException) -> Any:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return raiser


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (
            UsageError("bad", file="f.yaml", line=3),
            ExitCode.USAGE,
            "gateprobe: error: f.yaml:3: bad",
        ),
        (
            ValueError("boom\nsecond line"),
            ExitCode.INTERNAL,
            "gateprobe: internal error: ValueError: boom second line "
            "(run with --debug for the traceback)",
        ),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, None),
    ],
    ids=["usage", "internal", "interrupted"],
)
@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["validate", "x.yaml"], "_validate"),
        (["run"], "_run"),
        (["demo"], "_run"),
        (["mock"], "_run_mock"),
    ],
    ids=["validate", "run", "demo", "mock"],
)
def test_main_maps_errors_to_exit_codes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    where: str,
    exc: BaseException,
    code: ExitCode,
    line: str | None,
) -> None:
    monkeypatch.setattr(cli, where, _raise(exc))
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if line is not None:
        assert err.splitlines() == [line]


def test_main_maps_the_load_run_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateprobe.load import cli_options

    for given, wanted in [(0, 0), (1, 1), (2, 2), (3, 3), (130, 130), (-9, 4), (7, 4)]:
        monkeypatch.setattr(cli_options, "run_from_args", lambda args, code=given: code)
        assert cli.main(["load"]) == wanted
        assert isinstance(cli.main(["load"]), ExitCode)


def test_debug_prints_the_traceback_and_is_set_only_while_the_command_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    seen: list[str | None] = []

    def broken(files: list[Path]) -> ExitCode:
        seen.append(os.environ.get(DEBUG_ENV))
        raise ValueError("boom")

    monkeypatch.setattr(cli, "_validate", broken)
    assert cli.main(["--debug", "validate", "x.yaml"]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "gateprobe: internal error: ValueError: boom"
    assert seen == ["1"]
    assert DEBUG_ENV not in os.environ
