"""Every check can fail: run each self-test case (selftest.py) against the broken and clean mock.

``test_every_check_has_a_self_test`` fails when a check is added to the registry without a case
in one of the ``cases_*.py`` modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selftest import FAULT, STREAM, Case, all_cases, heal, mock_target, run_all
from support import DEFAULT

from gateprobe.checks import REGISTRY
from gateprobe.mock import DEFECTS, MockServer
from gateprobe.target import Deviation

CASES = all_cases()
COVERED = {case.check for case in CASES}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def test_every_check_has_a_self_test() -> None:
    assert set(REGISTRY) == COVERED, (
        f"checks without a self-test: {sorted(set(REGISTRY) - COVERED)}"
    )


def test_the_cases_name_real_defects_and_checks() -> None:
    for case in CASES:
        assert case.check in REGISTRY, case.id
        assert set(case.defects) <= set(DEFECTS), case.id
        assert case.defects or case.fault or case.dialect or case.clean_scenario, case.id
        assert FAULT in case.scenario or not case.fault, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_check_fails_on_the_broken_mock_and_passes_on_the_clean_one(
    case: Case,
    mock_factory: Callable[..., MockServer],
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset(case.defects))
    clean_target = mock_target(server.url)
    broken_target = dataclasses.replace(
        clean_target, dialect=dataclasses.replace(clean_target.dialect, **case.dialect)
    )

    broken = run_all(tmp_path, case.scenario.replace(FAULT, case.fault), broken_target, http)
    assert broken
    for outcome in broken:
        assert outcome.verdict == "fail", outcome.reason
        assert outcome.reason.startswith(f"{case.check}: "), outcome.reason
        failure = outcome.failures[0]
        assert failure.check == case.check
        assert case.message in failure.message, failure.message

    heal(http, server.url)
    clean = run_all(
        tmp_path, (case.clean_scenario or case.scenario).replace(FAULT, ""), clean_target, http
    )
    for outcome in clean:
        assert outcome.verdict == "pass", outcome.reason
        assert outcome.failures == []
        assert case.check in {name for step in outcome.steps for name in step.checks_run}


def test_a_declared_deviation_turns_the_failure_into_a_deviation(
    mock_factory: Callable[..., MockServer], http: httpx.Client, tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"missing-done"}))
    declared = Deviation("selftest.*", "stream", "this gateway never sends [DONE]")
    target = dataclasses.replace(mock_target(server.url), deviations=(declared,))
    text = STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini").replace(FAULT, "")
    (outcome,) = run_all(tmp_path, text, target, http)
    assert outcome.verdict == "deviation"
    assert outcome.failures == []
    ((failure, deviation),) = outcome.deviations
    assert failure.check == "stream" and deviation is declared
    assert outcome.reason.startswith("declared deviation (this gateway never sends [DONE]): stream")
    # A deviation for another check does not hide this failure.
    other = dataclasses.replace(target, deviations=(Deviation("selftest.*", "status", "x"),))
    (outcome,) = run_all(tmp_path, text, other, http)
    assert outcome.verdict == "fail" and outcome.reason.startswith("stream: ")
