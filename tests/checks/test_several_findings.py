"""One rule must not hide the rest: a check reports every rule it can still judge, and a
scenario's reason lists every failed rule, grouped by check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selftest import FAULT, STREAM, mock_target, run_all
from support import DEFAULT

from gateprobe.checks import CheckContext
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange, RequestRecord
from gateprobe.mock import MockServer
from gateprobe.report.failure import format_failure
from gateprobe.report.summary import result_record
from gateprobe.scenario import load_scenarios
from gateprobe.sse import SSEParser
from gateprobe.target import Target

OPENAI_STREAM = STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini").replace(
    FAULT, ""
)
WRONG_TYPE = "expected Content-Type text/event-stream, got application/json"
NO_DONE = "expected exactly one data: [DONE], got 0"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def test_a_stream_with_the_wrong_content_type_is_still_judged(
    mock_factory: Callable[..., MockServer], http: httpx.Client, tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"wrong-stream-content-type", "missing-done"}))
    target = mock_target(server.url)
    (outcome,) = run_all(tmp_path, OPENAI_STREAM, target, http)
    assert outcome.verdict == "fail"
    assert [(f.check, f.message) for f in outcome.failures] == [
        ("stream", WRONG_TYPE),
        ("stream", NO_DONE),
    ]
    assert outcome.reason == f"stream: 2 findings: {WRONG_TYPE}; {NO_DONE}"
    (step,) = outcome.steps
    assert step.exchange is not None and len(step.exchange.events) > 1  # parsed after all

    (scenario,) = load_scenarios(tmp_path / "selftest" / "case.yaml")
    (instance,) = scenario.instances()
    record = result_record(instance, outcome, target, strict=False)
    assert [f["message"] for f in record["steps"][0]["failures"]] == [WRONG_TYPE, NO_DONE]
    assert record["reason"] == outcome.reason
    text = format_failure(instance, outcome, target)
    assert f"x stream: {WRONG_TYPE}" in text and f"x stream: {NO_DONE}" in text


def test_the_wrong_content_type_alone_is_the_only_finding(
    mock_factory: Callable[..., MockServer], http: httpx.Client, tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"wrong-stream-content-type"}))
    (outcome,) = run_all(tmp_path, OPENAI_STREAM, mock_target(server.url), http)
    assert [f.message for f in outcome.failures] == [WRONG_TYPE]
    assert outcome.reason == f"stream: {WRONG_TYPE}"


def test_a_scenario_with_two_failing_checks_lists_both_in_its_reason(
    mock_factory: Callable[..., MockServer], http: httpx.Client, tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"missing-done"}))
    text = OPENAI_STREAM.replace("{status: 200, stream: true}", "{status: 201, stream: true}")
    (outcome,) = run_all(tmp_path, text, mock_target(server.url), http)
    assert outcome.verdict == "fail"
    assert [f.check for f in outcome.failures] == ["status", "stream"]
    status, stream = outcome.reason.split(" | ")
    assert status.startswith("status: ") and "201" in status
    assert stream == f"stream: {NO_DONE}"


# -- the stream check on a hand-made exchange: schema and grammar judged apart --------------

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini",
}


def _stream_context(frames: list[str], content_type: str = "text/event-stream") -> CheckContext:
    body = "".join(f"data: {frame}\n\n" for frame in frames).encode()
    parser = SSEParser()
    parser.feed(body, 0.01)
    parser.close(0.02)
    request = RequestRecord("POST", "http://gw/v1/chat/completions", {}, b'{"stream": true}')
    headers = {"content-type": content_type, "cache-control": "no-cache"}
    exchange = Exchange(request, status=200, headers=headers, body=body, events=parser.events)
    return CheckContext(exchange, Target("t", "http://gw"), "unit.stream", "openai", "sse")


def _chunk(delta: dict[str, object], finish: str | None, *, omit_finish: bool = False) -> str:
    choice: dict[str, object] = {"index": 0, "delta": delta}
    if not omit_finish:
        choice["finish_reason"] = finish
    return json.dumps({**CHUNK, "choices": [choice]})


def test_a_schema_nit_on_the_first_chunk_does_not_hide_a_grammar_defect() -> None:
    # LiteLLM leaves finish_reason out of its first chunk; this stream also lacks [DONE]
    frames = [
        _chunk({"role": "assistant", "content": ""}, None, omit_finish=True),
        _chunk({"content": "hi"}, None),
        _chunk({}, "stop"),
    ]
    ctx = _stream_context(frames)
    found = ctx.run("stream", True)
    assert [(f.check, f.where) for f in found] == [
        ("stream", "end of stream"),
        ("stream", "event[0].choices[0]"),
    ]
    assert found[0].message == NO_DONE
    assert found[1].message == (
        "event[0] does not match openai/chat.completion.chunk: "
        "event[0].choices[0]: 'finish_reason' is a required property"
    )
    assert ctx.failures == found


def test_a_grammar_defect_does_not_hide_a_schema_nit_and_headers_are_separate() -> None:
    frames = [
        _chunk({"role": "assistant", "content": ""}, None, omit_finish=True),
        _chunk({}, "stop"),
        "[DONE]",
    ]
    ctx = _stream_context(frames, content_type="application/json")
    ctx.exchange.headers["content-length"] = str(len(ctx.exchange.body))
    messages = [f.message for f in ctx.run("stream", True)]
    assert messages[0] == WRONG_TYPE
    assert messages[1].startswith("a stream must not carry Content-Length")
    assert "event[0] does not match" in messages[2] and len(messages) == 3


def test_a_clean_stream_has_no_finding() -> None:
    frames = [_chunk({"role": "assistant", "content": ""}, None), _chunk({}, "stop"), "[DONE]"]
    ctx = _stream_context(frames)
    assert ctx.run("stream", True) == [] and ctx.failures == []


def test_a_json_body_where_a_stream_was_asked_says_what_it_is() -> None:
    ctx = _stream_context([])
    ctx.exchange.headers["content-type"] = "application/json"
    ctx.exchange.body = b'{"id": "chatcmpl-1", "object": "chat.completion"}'
    messages = [f.message for f in ctx.run("stream", True)]
    assert messages[0] == WRONG_TYPE
    assert messages[1].startswith("the stream carried no events: the body is not an event stream")


def test_a_raised_failure_is_collected_after_the_recorded_ones() -> None:
    ctx = _stream_context([])
    recorded = CheckFailed("x", "recorded first")
    ctx.fail(recorded)
    # status raises as it always did; run() returns only what this check found
    found = ctx.run("status", 404)
    assert [f.check for f in found] == ["status"] and ctx.failures == [recorded, *found]
