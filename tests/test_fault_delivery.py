"""Fault delivery: a fault is sent only once the upstream's mark shows directives reach it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from itertools import count
from typing import Any

import pytest

from gateprobe import fault_delivery
from gateprobe.fault_delivery import delivery_problem, visible_text
from gateprobe.http import Exchange, RequestRecord
from gateprobe.request import BuiltRequest
from gateprobe.sse import SSEEvent

_names = count()


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    fault_delivery._PROBED.clear()
    yield
    fault_delivery._PROBED.clear()


def answer(status: int | None, body: Any = None, events: list[Any] | None = None) -> Exchange:
    ex = Exchange(RequestRecord("POST", "/v1/chat/completions", {}, None), status=status)
    if body is not None:
        ex.body = json.dumps(body).encode()
    for i, data in enumerate(events or ()):
        text = json.dumps(data)
        ex.events.append(SSEEvent(i, None, text, None, None, 0.01 * i, f"data: {text}"))
    if status is None:
        ex.error = "connect timeout after 5.00 s"
    return ex


def built(fault: str, stream: str | None = None) -> BuiltRequest:
    return BuiltRequest("POST", "/x", {}, {}, None, "openai", stream, None, fault=fault)


def ask(
    reply: Exchange, fault: str = "error-503", stream: str | None = None
) -> tuple[str | None, list[Mapping[str, Any]]]:
    sent: list[Mapping[str, Any]] = []

    def call(spec: Mapping[str, Any]) -> Exchange:
        sent.append(spec)
        return reply

    spec = {"protocol": "openai", "operation": "chat", "fault": fault, "read_timeout": 3}
    problem = delivery_problem(
        spec, built(fault, stream), f"t{next(_names)}", "http://gw", "model", call
    )
    return problem, sent


def chat(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_the_mark_in_the_answer_confirms_delivery_and_the_probe_carries_only_the_mark() -> None:
    problem, sent = ask(answer(200, chat("gateprobe-mark-7319 Hello there.")))
    assert problem is None
    (probe,) = sent
    assert probe["fault"] == "mark-7319" and "read_timeout" not in probe


def test_no_mark_is_a_skip_reason_that_names_the_delivery() -> None:
    problem, _ = ask(answer(200, chat("Hello there.")), fault="chunks-8,fail-after-3")
    assert problem == (
        "the fault 'chunks-8,fail-after-3' could not be delivered through this gateway: a probe "
        "with the directive mark-7319 in the model name answered HTTP 200 without the "
        "upstream's mark 'gateprobe-mark-7319' (directives: header sends them as a header "
        "instead)"
    )


def test_a_refused_or_unanswered_probe_is_not_a_delivery() -> None:
    refused, _ = ask(answer(400, {"error": {"message": "no such model"}}))
    assert refused is not None and "answered HTTP 400 without the upstream's mark" in refused
    silent, _ = ask(answer(None))
    assert silent is not None and "got no answer (connect timeout after 5.00 s)" in silent


def test_a_mark_re_cut_by_the_gateway_is_still_found() -> None:
    pieces = ["gatep", "robe-", "mark-", "7319-", "strea", "med H", "ello."]
    events = [
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": p}} for p in pieces
    ]
    problem, _ = ask(answer(200, events=events), fault="chunks-8,fail-after-3", stream="sse")
    assert problem is None


def test_a_mid_stream_fault_needs_a_streamed_upstream_call() -> None:
    plain_upstream = answer(200, events=[{"delta": {"text": "gateprobe-mark-7319 Hi."}}])
    problem, _ = ask(plain_upstream, fault="chunks-8,cut-after-3", stream="sse")
    assert problem is not None
    assert "answers this stream from a plain (not streamed) upstream call" in problem
    assert "(cut-after)" in problem
    # a fault before the first byte needs no upstream stream
    early, _ = ask(plain_upstream, fault="error-503", stream="sse")
    assert early is None


def test_the_probe_runs_once_per_route_and_its_finding_serves_every_fault() -> None:
    calls: list[int] = []
    reply = answer(200, events=[{"delta": {"text": "gateprobe-mark-7319 Hi."}}])

    def call(spec: Mapping[str, Any]) -> Exchange:
        calls.append(1)
        return reply

    spec = {"protocol": "openai", "operation": "chat"}
    first = delivery_problem(spec, built("error-503", "sse"), "t", "u", "model", call)
    second = delivery_problem(spec, built("fail-after-3", "sse"), "t", "u", "model", call)
    assert first is None and second is not None and len(calls) == 1


def test_visible_text_joins_the_text_fields_of_each_protocol() -> None:
    gemini = answer(200, {"candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b"}]}}]})
    assert visible_text(gemini) == "ab"
    responses = answer(
        200,
        events=[
            {"type": "response.output_text.delta", "delta": "x"},
            {"type": "response.output_text.delta", "delta": "y"},
        ],
    )
    assert visible_text(responses) == "xy"
    garbage = Exchange(RequestRecord("GET", "/", {}, None), status=200, body=b"<html>hi")
    assert visible_text(garbage) == "<html>hi"
