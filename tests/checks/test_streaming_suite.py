"""The streaming suite itself (suites/streaming/) catches each streaming defect of the mock.

The self-tests (cases_stream.py) prove each check can fail; this proves the shipped scenarios
use them so that they do: each defect makes the scenario meant for it fail with its check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from selftest import mock_target
from support import DEFAULT

from gateprobe.mock import MockServer
from gateprobe.runner import Outcome, run_instance
from gateprobe.scenario import Instance, load_scenarios

SUITE = Path(__file__).resolve().parents[2] / "suites" / "streaming"
INSTANCES = {
    instance.name: instance
    for path in sorted(SUITE.glob("*.yaml"))
    for scenario in load_scenarios(path, SUITE.parent)
    for instance in scenario.instances()
}
# defect -> (the scenario instance meant to catch it, its check, part of the message)
CAUGHT_BY = {
    "missing-done": ("streaming.grammar[openai]", "stream", "exactly one data: [DONE], got 0"),
    "wrong-stream-content-type": ("streaming.grammar[gemini]", "stream", "Content-Type"),
    "unstable-chunk-id": ("streaming.grammar[openai]", "stream", "event[2].id is"),
    "no-role-in-first-delta": ("streaming.grammar[openai]", "stream", "(event[0]) carries no role"),
    "finish-reason-on-every-chunk": ("streaming.grammar[openai]", "stream", "at event[1]"),
    "usage-chunk-without-include-usage": (
        "streaming.openai_usage[not-set]",
        "stream",
        "include_usage was not set",
    ),
    "usage-chunk-with-choices": (
        "streaming.openai_usage[include_usage-true]",
        "stream",
        "expected choices: []",
    ),
    "responses-sequence-repeats": ("streaming.responses", "stream", "event[3].sequence_number"),
    "responses-no-terminal-event": ("streaming.responses", "stream", "terminal event"),
    "responses-empty-output": ("streaming.responses", "stream", "has output: []"),
    "anthropic-events-out-of-order": ("streaming.grammar[anthropic]", "stream", "event[4]"),
    "anthropic-event-name-mismatch": ("streaming.grammar[anthropic]", "stream", "'delta'"),
    "anthropic-usage-not-cumulative": ("streaming.grammar[anthropic]", "stream", "fell from"),
    "gemini-usage-decreasing": ("streaming.gemini_array", "stream", "fell from"),
    "buffered-stream": ("streaming.incremental[anthropic]", "stream_incremental", "buffered"),
    "stream-drops-chunk": (
        "streaming.joined_equals_plain[gemini]",
        "stream_equals_plain",
        "departs from the plain answer",
    ),
    "stream-error-as-200": (
        "streaming.error_before_first_byte[anthropic]",
        "stream_error",
        "came as HTTP 200",
    ),
    "done-after-stream-error": (
        "streaming.error_mid_stream[openai]",
        "stream_error",
        "comes after the in-band error at event[4]",
    ),
    "raw-error-after-stream": (
        "streaming.error_mid_stream[anthropic]",
        "stream_error",
        "raw text outside any frame",
    ),
    "ignores-client-disconnect": (
        "streaming.client_disconnect[openai]",
        "stream_cancelled",
        "did not notice the cancellation",
    ),
    "fabricated-finish-on-cut": (
        "streaming.cut_stream[anthropic]",
        "stream_error",
        "although the upstream cut the stream",
    ),
    "hang-after-midstream-failure": (
        "streaming.hang_after_mid_stream_failure[gemini]",
        "stream_error",
        "did not close the stream",
    ),
}


def run(server: MockServer, instance: Instance) -> Outcome:
    with httpx.Client(timeout=10.0) as http:
        return run_instance(instance, mock_target(server.url), http)


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
def test_the_scenario_meant_for_a_defect_fails_with_its_check(
    defect: str, mock_factory: Callable[..., MockServer]
) -> None:
    name, check, message = CAUGHT_BY[defect]
    server = mock_factory(DEFAULT, defects=frozenset({defect}))
    outcome = run(server, INSTANCES[name])
    assert outcome.verdict == "fail", (defect, outcome.reason)
    first = outcome.failures[0]
    assert first.check == check, outcome.reason
    assert message in first.message, first.message


def test_every_scenario_of_the_suite_passes_on_the_clean_mock(
    mock_factory: Callable[..., MockServer],
) -> None:
    server = mock_factory(DEFAULT)
    for name in {name for name, _, _ in CAUGHT_BY.values()}:
        outcome = run(server, INSTANCES[name])
        assert outcome.verdict == "pass", (name, outcome.reason)
