"""The streaming defect switches make their bug observable on the wire; the healed mock does not.

Registered with test_defects.py's ``covers`` (which imports this module), so its guard sees
them. The checks that catch each defect are self-tested in tests/checks/cases_stream.py.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from support import ADMIN, bearer, claude, goog, sse_frames
from test_defects import (
    CHAT,
    CLAUDE_BODY,
    GEMINI_BODY,
    GEMINI_SSE,
    MESSAGES,
    OPENAI_BODY,
    covers,
    healed,
    started,
)

from gateprobe.mock import MockServer

RESPONSES = "/v1/responses"
RESPONSES_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "input": "defects", "stream": True}
GEMINI_ARRAY = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def frames(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return sse_frames(response.content)


def chat_chunks(client: httpx.Client, body: dict[str, Any] | None = None) -> list[Any]:
    sent = (body or OPENAI_BODY) | {"stream": True}
    return [json.loads(d) if d != "[DONE]" else d for _, d in frames(client, CHAT, sent, bearer())]


def with_model(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    return body | {"model": body["model"] + suffix}


@covers("stream-error-as-200")
def test_stream_error_as_200(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(OPENAI_BODY, "--error-503") | {"stream": True}
    with started(mock_factory, "stream-error-as-200") as broken:
        response = broken.post(CHAT, json=body, headers=bearer())
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ((_, data),) = sse_frames(response.content)
        assert json.loads(data)["error"]["message"].startswith("Upstream returned HTTP 503")
        response = healed(broken).post(CHAT, json=body, headers=bearer())
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"


@covers("done-after-stream-error")
def test_done_after_stream_error(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(OPENAI_BODY, "--fail-after-3")
    with started(mock_factory, "done-after-stream-error") as broken:
        chunks = chat_chunks(broken, body)
        errors = [i for i, c in enumerate(chunks) if isinstance(c, dict) and "error" in c]
        assert errors == [4]
        assert chunks[5]["usage"]["prompt_tokens"] > 0 and chunks[5]["choices"] == []
        assert chunks[6:] == ["[DONE]"]
        chunks = chat_chunks(healed(broken), body)
        assert "error" in chunks[-1] and "[DONE]" not in chunks


@covers("raw-error-after-stream")
def test_raw_error_after_stream(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(CLAUDE_BODY, "--fail-after-3") | {"stream": True}
    with started(mock_factory, "raw-error-after-stream") as broken:
        text = broken.post(MESSAGES, json=body, headers=claude()).text
        last = text.rstrip("\n").rsplit("\n", 1)[-1]
        assert json.loads(last)["type"] == "error"  # a bare JSON line, no event:/data:
        assert "event: error" not in text
        text = healed(broken).post(MESSAGES, json=body, headers=claude()).text
        assert text.endswith("\n\n") and "event: error\ndata: " in text


@covers("unstable-chunk-id")
def test_unstable_chunk_id(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "unstable-chunk-id") as broken:
        ids = [c["id"] for c in chat_chunks(broken) if c != "[DONE]"]
        assert ids[0] == ids[1] != ids[2]
        assert len(set(ids)) == len(ids) - 1
        ids = [c["id"] for c in chat_chunks(healed(broken)) if c != "[DONE]"]
        assert len(set(ids)) == 1


@covers("no-role-in-first-delta")
def test_no_role_in_first_delta(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "no-role-in-first-delta") as broken:
        first = chat_chunks(broken)[0]["choices"][0]["delta"]
        assert "role" not in first
        assert chat_chunks(healed(broken))[0]["choices"][0]["delta"]["role"] == "assistant"


@covers("finish-reason-on-every-chunk")
def test_finish_reason_on_every_chunk(mock_factory: Callable[..., MockServer]) -> None:
    def finishes(client: httpx.Client) -> list[Any]:
        return [c["choices"][0]["finish_reason"] for c in chat_chunks(client) if c != "[DONE]"]

    with started(mock_factory, "finish-reason-on-every-chunk") as broken:
        assert all(f is not None for f in finishes(broken))
        reasons = finishes(healed(broken))
        assert reasons[-1] is not None and all(f is None for f in reasons[:-1])


@covers("usage-chunk-without-include-usage")
def test_usage_chunk_without_include_usage(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "usage-chunk-without-include-usage") as broken:
        chunks = chat_chunks(broken)
        assert chunks[-1] == "[DONE]"
        assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] > 0
        chunks = chat_chunks(healed(broken))
        assert not any(c.get("usage") for c in chunks if c != "[DONE]")


def responses_events(client: httpx.Client) -> list[tuple[str | None, dict[str, Any]]]:
    return [(n, json.loads(d)) for n, d in frames(client, RESPONSES, RESPONSES_BODY, bearer())]


@covers("responses-sequence-repeats")
def test_responses_sequence_repeats(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "responses-sequence-repeats") as broken:
        numbers = [data["sequence_number"] for _, data in responses_events(broken)]
        assert numbers[:4] == [0, 1, 2, 2]
        numbers = [data["sequence_number"] for _, data in responses_events(healed(broken))]
        assert numbers == list(range(len(numbers)))


@covers("responses-no-terminal-event")
def test_responses_no_terminal_event(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "responses-no-terminal-event") as broken:
        kinds = [name for name, _ in responses_events(broken)]
        assert kinds[-1] == "response.output_item.done"
        assert "response.completed" not in kinds
        assert [name for name, _ in responses_events(healed(broken))][-1] == "response.completed"


@covers("responses-empty-output")
def test_responses_empty_output(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "responses-empty-output") as broken:
        name, last = responses_events(broken)[-1]
        assert name == "response.completed" and last["response"]["output"] == []
        _, last = responses_events(healed(broken))[-1]
        assert last["response"]["output"]


def claude_events(client: httpx.Client, body: dict[str, Any]) -> list[Any]:
    sent = body | {"stream": True}
    return [(n, json.loads(d)) for n, d in frames(client, MESSAGES, sent, claude())]


@covers("anthropic-event-name-mismatch")
def test_anthropic_event_name_mismatch(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "anthropic-event-name-mismatch") as broken:
        pairs = {(n, d["type"]) for n, d in claude_events(broken, CLAUDE_BODY)}
        assert ("delta", "content_block_delta") in pairs
        assert all(n == d["type"] for n, d in claude_events(healed(broken), CLAUDE_BODY))


@covers("anthropic-usage-not-cumulative")
def test_anthropic_usage_not_cumulative(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(CLAUDE_BODY, "--chunks-6")

    def output_tokens(client: httpx.Client) -> list[int]:
        events = claude_events(client, body)
        return [d["usage"]["output_tokens"] for _, d in events if d["type"] == "message_delta"]

    with started(mock_factory, "anthropic-usage-not-cumulative") as broken:
        assert output_tokens(broken) == [5, 1]
        assert output_tokens(healed(broken)) == [6]


@covers("gemini-usage-decreasing")
def test_gemini_usage_decreasing(mock_factory: Callable[..., MockServer]) -> None:
    path = GEMINI_SSE.replace("gemini-2.5-flash", "gemini-2.5-flash--chunks-4")

    def counts(client: httpx.Client) -> list[int]:
        events = frames(client, path, GEMINI_BODY, goog())
        return [json.loads(d)["usageMetadata"]["candidatesTokenCount"] for _, d in events]

    with started(mock_factory, "gemini-usage-decreasing") as broken:
        assert counts(broken) == [1, 2, 3, 4, 0]
        array = broken.post(
            GEMINI_ARRAY.replace("flash", "flash--chunks-4"), json=GEMINI_BODY, headers=goog()
        )
        assert [e["usageMetadata"]["candidatesTokenCount"] for e in array.json()][-2:] == [4, 0]
        assert counts(healed(broken)) == [1, 2, 3, 4]


@covers("stream-drops-chunk")
def test_stream_drops_chunk(mock_factory: Callable[..., MockServer]) -> None:
    def joined(client: httpx.Client) -> str:
        return "".join(
            c["choices"][0]["delta"].get("content") or ""
            for c in chat_chunks(client)
            if c != "[DONE]" and c["choices"]
        )

    with started(mock_factory, "stream-drops-chunk") as broken:
        plain = broken.post(CHAT, json=OPENAI_BODY, headers=bearer()).json()
        text = plain["choices"][0]["message"]["content"]
        streamed = joined(broken)
        assert streamed != text and len(streamed) < len(text)
        assert text.startswith(streamed[:3])  # the first piece is there, the second is not
        assert joined(healed(broken)) == text


def streamed_usages(client: httpx.Client) -> dict[str, Any]:
    """The usage each protocol's stream reports: OpenAI's usage chunk, Responses'
    ``response.completed``, Claude's message_start and last message_delta, Gemini's last
    usageMetadata."""
    chat = chat_chunks(client, OPENAI_BODY | {"stream_options": {"include_usage": True}})
    claude_events = [
        json.loads(d) for _, d in frames(client, MESSAGES, CLAUDE_BODY | {"stream": True}, claude())
    ]
    gemini = [json.loads(d) for _, d in frames(client, GEMINI_SSE, GEMINI_BODY, goog())]
    responses = [json.loads(d) for _, d in frames(client, RESPONSES, RESPONSES_BODY, bearer())]
    return {
        "openai": chat[-2]["usage"],
        "responses": responses[-1]["response"]["usage"],
        "anthropic": (
            claude_events[0]["message"]["usage"]["input_tokens"],
            [e for e in claude_events if e["type"] == "message_delta"][-1]["usage"],
        ),
        "gemini": gemini[-1]["usageMetadata"],
    }


@covers("stream-usage-zero")
def test_stream_usage_zero(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "stream-usage-zero") as broken:
        zeroed = streamed_usages(broken)
        assert zeroed["openai"]["prompt_tokens"] == zeroed["openai"]["completion_tokens"] == 0
        assert zeroed["responses"]["input_tokens"] == zeroed["responses"]["output_tokens"] == 0
        assert zeroed["anthropic"] == (0, {"output_tokens": 0})
        assert zeroed["gemini"]["candidatesTokenCount"] == zeroed["gemini"]["promptTokenCount"] == 0
        # the plain answer keeps its real counts
        plain = broken.post(CHAT, json=OPENAI_BODY, headers=bearer()).json()["usage"]
        assert plain["completion_tokens"] > 0 and plain["prompt_tokens"] > 0
        real = streamed_usages(healed(broken))
        assert real["openai"]["completion_tokens"] == plain["completion_tokens"]
        assert real["anthropic"][0] > 0 and real["anthropic"][1]["output_tokens"] > 0
        assert real["gemini"]["candidatesTokenCount"] > 0 and real["responses"]["output_tokens"] > 0


@covers("cumulative-deltas")
def test_cumulative_deltas(mock_factory: Callable[..., MockServer]) -> None:
    def deltas(client: httpx.Client) -> list[str]:
        return [
            c["choices"][0]["delta"]["content"]
            for c in chat_chunks(client)
            if c != "[DONE]" and c["choices"] and c["choices"][0]["delta"].get("content")
        ]

    with started(mock_factory, "cumulative-deltas") as broken:
        text = broken.post(CHAT, json=OPENAI_BODY, headers=bearer()).json()["choices"][0][
            "message"
        ]["content"]
        sent = deltas(broken)
        assert len(sent) > 2 and sent[-1] == text  # the last delta is the whole answer
        assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(sent))
        assert "".join(deltas(healed(broken))) == text


def usage_record(client: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        records = client.get("/_gateprobe/usage", headers=ADMIN).json()["records"]
        for record in records:
            if record["request_id"] == request_id:
                return dict(record)
        time.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


@covers("ignores-client-disconnect")
def test_ignores_client_disconnect(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(OPENAI_BODY, "--chunks-20--itl-30") | {"stream": True, "max_tokens": 64}

    def hang_up(client: httpx.Client) -> dict[str, Any]:
        with client.stream("POST", CHAT, json=body, headers=bearer()) as response:
            request_id = response.headers["x-request-id"]
            for _ in response.iter_raw():
                break  # the first chunk, then hang up
        return usage_record(client, request_id)

    with started(mock_factory, "ignores-client-disconnect") as broken:
        record = hang_up(broken)
        assert record["status"] == 200 and "end" not in record
        assert record["completion_tokens"] == 20
        record = hang_up(healed(broken))
        assert record["status"] == 499 and record["end"] == "client gone"
        assert record["completion_tokens"] < 20


@covers("no-cache-control")
def test_no_cache_control(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "no-cache-control") as broken:
        response = broken.post(CHAT, json=OPENAI_BODY | {"stream": True}, headers=bearer())
        assert response.status_code == 200 and "cache-control" not in response.headers
        response = healed(broken).post(CHAT, json=OPENAI_BODY | {"stream": True}, headers=bearer())
        assert response.headers["cache-control"] == "no-cache"


# -- a cut or failed upstream stream, hidden or left hanging -------------------------------

CUT = "--chunks-8--cut-after-3"
# route, body, headers, how the stream's payloads are read
CUT_STREAMS: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    (CHAT, with_model(OPENAI_BODY, CUT) | {"stream": True}, bearer()),
    (MESSAGES, with_model(CLAUDE_BODY, CUT) | {"stream": True}, claude()),
    (RESPONSES, with_model(RESPONSES_BODY, CUT), bearer()),
    (GEMINI_SSE.replace("gemini-2.5-flash", f"gemini-2.5-flash{CUT}"), GEMINI_BODY, goog()),
]


def payloads(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return [
        (name, json.loads(d) if d != "[DONE]" else d)
        for name, d in frames(client, path, body, headers)
    ]


def completion_claims(path: str, events: list[tuple[str | None, Any]]) -> list[str]:
    """What in a stream tells the client the answer is complete."""
    claims = []
    for name, data in events:
        if data == "[DONE]":
            claims.append("[DONE]")
        elif path == CHAT:
            claims += [
                f"finish {c['finish_reason']}" for c in data["choices"] if c["finish_reason"]
            ]
        elif path == MESSAGES:
            if name == "message_stop" or (data.get("delta") or {}).get("stop_reason"):
                claims.append(str(name))
        elif path == RESPONSES:
            if name == "response.completed":
                claims.append(name)
        else:
            claims += [c["finishReason"] for c in data["candidates"] if c.get("finishReason")]
    return claims


@covers("fabricated-finish-on-cut")
def test_fabricated_finish_on_cut(mock_factory: Callable[..., MockServer]) -> None:
    expected = {
        CHAT: ["finish stop", "[DONE]"],
        MESSAGES: ["message_delta", "message_stop"],
        RESPONSES: ["response.completed"],
    }
    with started(mock_factory, "fabricated-finish-on-cut") as broken:
        for path, body, headers in CUT_STREAMS:
            events = payloads(broken, path, body, headers)
            assert completion_claims(path, events) == expected.get(path, ["STOP"]), path
        # OpenAI with include_usage: a usage chunk too, of the tokens that came
        body = with_model(OPENAI_BODY, CUT) | {
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        chunks = [data for _, data in payloads(broken, CHAT, body, bearer())]
        assert chunks[-1] == "[DONE]" and chunks[-2]["usage"]["completion_tokens"] == 3
        # Anthropic: the open text block is closed before the fabricated end
        events = payloads(broken, *CUT_STREAMS[1])
        assert [name for name, _ in events][-3:] == [
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        # Gemini's array is closed as a complete one is
        array = GEMINI_ARRAY.replace("gemini-2.5-flash", f"gemini-2.5-flash{CUT}")
        elements = broken.post(array, json=GEMINI_BODY, headers=goog()).json()
        assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
        assert sum(1 for e in elements if e["candidates"][0]["content"]["parts"][0]["text"]) == 3
        clean = healed(broken)
        for path, body, headers in CUT_STREAMS:
            assert completion_claims(path, payloads(clean, path, body, headers)) == [], path
        cut_array = clean.post(array, json=GEMINI_BODY, headers=goog())
        assert not cut_array.content.endswith(b"]")


@covers("hang-after-midstream-failure")
def test_hang_after_midstream_failure(mock_factory: Callable[..., MockServer]) -> None:
    body = with_model(OPENAI_BODY, "--chunks-8--fail-after-3") | {"stream": True}

    def read(client: httpx.Client) -> tuple[bytes, bool, str]:
        """What arrived, whether the read timed out, and the request id."""
        got = b""
        timeout = httpx.Timeout(10.0, read=1.0)
        with client.stream("POST", CHAT, json=body, headers=bearer(), timeout=timeout) as answer:
            request_id = answer.headers["x-request-id"]
            try:
                for data in answer.iter_raw():
                    got += data
            except httpx.ReadTimeout:
                return got, True, request_id  # leaving the block hangs up
        return got, False, request_id

    with started(mock_factory, "hang-after-midstream-failure") as broken:
        started_at = time.monotonic()
        got, timed_out, request_id = read(broken)
        assert timed_out and time.monotonic() - started_at >= 1.0
        chunks = [json.loads(d) for _, d in sse_frames(got)]
        assert (
            sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) == 3
        )
        assert not any("error" in c for c in chunks)  # the failure was swallowed
        # the mock saw the hang-up: the call ended (its record is written when it returns)
        record = usage_record(broken, request_id)
        assert record["end"] == "upstream cut, client gone"
        state = broken.get("/_gateprobe/state", headers=ADMIN).json()
        assert state["open_reservations"] == 0
        got, timed_out, request_id = read(healed(broken))
        assert not timed_out
        assert "error" in json.loads(sse_frames(got)[-1][1])
        assert usage_record(broken, request_id)["end"] == "upstream cut"
