"""Reading usage, delivered pieces and the model from an exchange record, per protocol.

Streamed usage is cumulative: the last report counts, once (one-api #415 summed the chunks).
"""

from __future__ import annotations

import json
from typing import Any

from gateprobe.http import Exchange, RequestRecord
from gateprobe.quota.usage import Usage, content_pieces, model_of, usage_of
from gateprobe.sse import ArrayElement, SSEEvent


def stream(payloads: list[Any], url: str = "http://gw/v1/chat/completions") -> Exchange:
    ex = Exchange(RequestRecord("POST", url, {}, b'{"model": "gpt-4o-mini--itl-5"}'), status=200)
    for i, payload in enumerate(payloads):
        data = payload if isinstance(payload, str) else json.dumps(payload)
        ex.events.append(SSEEvent(i, None, data, None, None, 0.0, f"data: {data}"))
    return ex


def test_openai_usage_comes_from_the_usage_chunk_once() -> None:
    chunk = {"choices": [{"delta": {"content": "hi"}}], "usage": None}
    final = {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 3}}
    ex = stream([chunk, chunk, chunk, final, "[DONE]"])
    assert usage_of(ex, "openai") == Usage(8, 3)
    assert content_pieces(ex, "openai") == 3
    assert model_of(ex) == "gpt-4o-mini--itl-5"
    assert usage_of(stream([chunk]), "openai") == Usage(None, None)


def test_responses_usage_comes_from_response_completed() -> None:
    delta = {"type": "response.output_text.delta", "delta": "hi"}
    done = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 5, "output_tokens": 2}},
    }
    ex = stream([delta, delta, done], url="http://gw/v1/responses")
    assert usage_of(ex, "openai") == Usage(5, 2) and content_pieces(ex, "openai") == 2


def test_anthropic_takes_the_start_input_and_the_last_cumulative_output() -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "b"}},
        {"type": "message_delta", "usage": {"output_tokens": 2}},
        {"type": "message_delta", "usage": {"output_tokens": 4}},
        {"type": "message_stop"},
    ]
    ex = stream(events, "http://gw/v1/messages")
    assert usage_of(ex, "anthropic") == Usage(9, 4)  # not 1 + 2 + 4
    assert content_pieces(ex, "anthropic") == 2
    plain = Exchange(
        RequestRecord("POST", "http://gw/v1/messages", {}, None),
        status=200,
        body=b'{"usage": {"input_tokens": 7, "output_tokens": 5}}',
    )
    assert usage_of(plain, "anthropic") == Usage(7, 5)


def test_gemini_takes_the_last_usage_metadata_and_counts_thoughts() -> None:
    url = "http://gw/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    ex = Exchange(RequestRecord("POST", url, {}, b"{}"), status=200)
    for i, (text, out) in enumerate([("a", 1), ("b", 2), ("", 2)]):
        element = {
            "candidates": [{"content": {"parts": [{"text": text}]}}],
            "usageMetadata": {
                "promptTokenCount": 6,
                "candidatesTokenCount": out,
                "thoughtsTokenCount": 1,
            },
        }
        ex.elements.append(ArrayElement(i, json.dumps(element), 0.0))
    assert usage_of(ex, "gemini") == Usage(6, 3)
    assert content_pieces(ex, "gemini") == 2  # the last element carries no text
    assert model_of(ex) == "gemini-2.5-flash"
