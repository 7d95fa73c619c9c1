"""Stream figures: which events carry output, TTFT, gaps, chunks and the stream's own tokens."""

from __future__ import annotations

import json

import pytest

from gateprobe.sse import ArrayElement, SSEEvent
from gateprobe.stream_metrics import carries_output, stream_metrics, usage_tokens


def event(index: int, time: float, data: object, name: str | None = None) -> SSEEvent:
    text = data if isinstance(data, str) else json.dumps(data)
    return SSEEvent(index, name, text, None, None, time, f"data: {text}")


@pytest.mark.parametrize(
    ("name", "data", "output"),
    [
        (None, {"choices": [{"delta": {"role": "assistant", "content": ""}}]}, False),
        (None, {"choices": [{"delta": {"content": "hi"}}]}, True),
        (None, {"choices": [{"delta": {"reasoning_content": "hm"}}]}, True),
        (None, {"choices": [{"delta": {"tool_calls": [{"index": 0}]}}]}, True),
        (None, {"choices": [], "usage": {"completion_tokens": 3}}, False),
        ("message_start", {"type": "message_start"}, False),
        ("ping", {"type": "ping"}, False),
        ("content_block_delta", {"type": "content_block_delta"}, True),
        ("response.created", {"type": "response.created"}, False),
        ("response.output_text.delta", {"type": "response.output_text.delta"}, True),
        (None, {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}, True),
        (None, {"candidates": [{"content": {"parts": [{"text": ""}]}}]}, False),
        (None, "[DONE]", False),
        (None, "not json", False),
    ],
)
def test_which_events_carry_output(name: str | None, data: object, output: bool) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    assert carries_output(name, text) is output


def test_figures_of_a_paced_stream() -> None:
    role = {"choices": [{"delta": {"role": "assistant", "content": ""}}]}
    events = [event(0, 0.001, role)] + [
        event(i, 0.2 + 0.02 * (i - 1), {"choices": [{"delta": {"content": f"w{i} "}}]})
        for i in range(1, 5)
    ]
    events.append(event(5, 0.3, {"choices": [], "usage": {"completion_tokens": 8}}))
    chunks = [(e.time, 100) for e in events]
    metrics = stream_metrics(events, [], chunks)
    assert metrics is not None
    assert metrics["ttft_ms"] == 200.0 and metrics["ttft_at"] == "event[1]"
    assert metrics["output_events"] == 4 and metrics["events"] == 6
    assert metrics["network_chunks"] == 6
    assert metrics["output_span_ms"] == pytest.approx(60.0)
    gaps = metrics["gaps_ms"]
    assert gaps["count"] == 3 and gaps["median"] == pytest.approx(20.0)
    assert gaps["min"] == pytest.approx(20.0) and gaps["max"] == pytest.approx(20.0)
    assert metrics["output_tokens"] == 8 and metrics["tokens_per_event"] == 2.0


def test_a_plain_response_has_no_stream_figures() -> None:
    assert stream_metrics([], [], [(0.01, 120)]) is None


def test_array_elements_are_timed_and_their_last_usage_counts() -> None:
    def element(i: int, time: float, count: int) -> ArrayElement:
        data = {
            "candidates": [{"content": {"parts": [{"text": "x"}]}}],
            "usageMetadata": {"candidatesTokenCount": count, "thoughtsTokenCount": 1},
        }
        return ArrayElement(i, json.dumps(data), time)

    elements = [element(0, 0.1, 1), element(1, 0.15, 2)]
    metrics = stream_metrics([], elements, [(0.1, 50), (0.15, 50)])
    assert metrics is not None and metrics["ttft_at"] == "element[0]"
    assert metrics["output_tokens"] == 3  # the last usageMetadata: 2 + 1 thought


def test_usage_tokens_of_anthropic_and_responses() -> None:
    claude = [
        event(0, 0.0, {"type": "message_start", "message": {"usage": {"output_tokens": 1}}}),
        event(1, 0.1, {"type": "message_delta", "usage": {"output_tokens": 12}}),
    ]
    assert usage_tokens(claude, []) == 12
    responses = [
        event(0, 0.0, {"type": "response.created", "response": {"usage": None}}),
        event(1, 0.1, {"type": "response.completed", "response": {"usage": {"output_tokens": 7}}}),
    ]
    assert usage_tokens(responses, []) == 7
    assert usage_tokens([event(0, 0.0, {"choices": [], "usage": None})], []) is None


def test_visible_ttft_skips_reasoning() -> None:
    events = [
        event(0, 0.1, {"type": "content_block_delta", "delta": {"type": "thinking_delta"}}),
        event(1, 0.3, {"type": "content_block_delta", "delta": {"type": "text_delta"}}),
    ]
    metrics = stream_metrics(events, [], [(0.1, 10), (0.3, 10)])
    assert metrics is not None
    assert metrics["ttft_ms"] == 100.0 and metrics["visible_ttft_ms"] == 300.0
    chat = [
        event(0, 0.05, {"choices": [{"delta": {"reasoning_content": "hm"}}]}),
        event(1, 0.25, {"choices": [{"delta": {"content": "hi"}}]}),
    ]
    metrics = stream_metrics(chat, [], [(0.05, 10), (0.25, 10)])
    assert metrics is not None and metrics["visible_ttft_ms"] == 250.0
    assert carries_output(
        "response.reasoning_text.delta", '{"type": "response.reasoning_text.delta"}'
    )
    assert not carries_output(
        "response.reasoning_text.delta", '{"type": "response.reasoning_text.delta"}', visible=True
    )
    thought = '{"candidates": [{"content": {"parts": [{"text": "x", "thought": true}]}}]}'
    assert carries_output(None, thought) and not carries_output(None, thought, visible=True)
