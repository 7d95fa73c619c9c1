"""The stream parsers: SSE framing rules, chunk boundaries anywhere, JSON-array streams."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from support import bearer, claude, goog

from gateprobe.sse import JsonArrayParser, SSEParser


def parse_in_chunks(data: bytes, size: int) -> SSEParser:
    parser = SSEParser()
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size], time=float(i))
    return parser


OPENAI = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
ANTHROPIC_CRLF = (
    b'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n'
    b'event: ping\r\ndata: {"type":"ping"}\r\n\r\n\r\n'
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_events_are_the_same_whatever_the_chunk_boundaries(size: int) -> None:
    parser = parse_in_chunks(OPENAI, size)
    assert [e.data for e in parser.events] == ['{"a":1}', '{"a":2}', "[DONE]"]
    assert parser.close(time=1e9) is None


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_crlf_framing_and_extra_blank_lines(size: int) -> None:
    parser = parse_in_chunks(ANTHROPIC_CRLF, size)
    assert [(e.event, json.loads(e.data)["type"]) for e in parser.events] == [
        ("message_start", "message_start"),
        ("ping", "ping"),
    ]
    assert parser.line_endings == {"\r\n"}


def test_bare_cr_line_endings() -> None:
    parser = SSEParser()
    parser.feed(b"data: one\r\rdata: two\r\r", 0.0)
    parser.close(1.0)
    assert [e.data for e in parser.events] == ["one", "two"]
    assert parser.line_endings == {"\r"}


def test_comments_are_kept_apart_from_events() -> None:
    parser = SSEParser()
    parser.feed(b": PING\n\ndata: x\n\n:keep-alive\n\n", 0.5)
    assert [e.data for e in parser.events] == ["x"]
    assert [c.text for c in parser.comments] == ["PING", "keep-alive"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    parser = SSEParser()
    events = parser.feed(b"data: first\ndata:second\ndata\n\n", 2.0)
    assert events[0].data == "first\nsecond\n"
    assert events[0].raw == "data: first\ndata:second\ndata"


def test_fields_event_id_retry_and_unknown() -> None:
    parser = SSEParser()
    parser.feed(b"event: e\nid: 7\nretry: 300\nfoo: bar\ndata: d\n\n", 0.0)
    event = parser.events[0]
    assert (event.event, event.id, event.retry, event.data) == ("e", "7", 300, "d")


def test_retry_takes_ascii_digits_only() -> None:
    """``str.isdigit`` also takes a superscript two (which ``int`` refuses: the parser raised)
    and an Arabic-Indic one (which ``int`` reads as 1); the spec takes ASCII digits only."""
    parser = SSEParser()
    parser.feed(
        b"retry: \xc2\xb2\ndata: a\n\nretry: \xd9\xa1\ndata: b\n\nretry: 7\ndata: c\n\n", 0.0
    )
    assert [(e.data, e.retry) for e in parser.events] == [("a", None), ("b", None), ("c", 7)]


def test_a_frame_without_data_dispatches_nothing() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: lonely\n\ndata: real\n\n", 0.0)[0].event is None


def test_timestamps_are_those_of_the_dispatching_chunk() -> None:
    parser = SSEParser()
    parser.feed(b"data: a", 1.0)
    parser.feed(b"\n", 2.0)
    parser.feed(b"\n", 3.0)
    assert parser.events[0].time == 3.0


def test_an_unterminated_last_frame_is_reported_not_dispatched() -> None:
    parser = SSEParser()
    parser.feed(b'data: {"a":1}\n\ndata: {"cut', 0.0)
    leftover = parser.close(1.0)
    assert [e.data for e in parser.events] == ['{"a":1}']
    assert leftover == 'data: {"cut'


def test_utf8_split_across_chunks_and_bom() -> None:
    data = "\ufeffdata: héllo ✓\n\n".encode()
    parser = parse_in_chunks(data, 1)
    assert parser.events[0].data == "héllo ✓"


ARRAY = b'[{"candidates":[{"t":"a]"}]}\r\n,{"b":"x\\"}"}\r\n,{"c":[1,{"d":2}]}]'


@pytest.mark.parametrize("size", [1, 3, 8, 1000])
def test_json_array_elements_complete_one_by_one(size: int) -> None:
    parser = JsonArrayParser()
    seen = []
    for i in range(0, len(ARRAY), size):
        seen += parser.feed(ARRAY[i : i + size], float(i))
    assert parser.close(1e9) is None
    assert [json.loads(e.text) for e in seen] == [
        {"candidates": [{"t": "a]"}]},
        {"b": 'x"}'},
        {"c": [1, {"d": 2}]},
    ]
    assert seen[0].time < seen[-1].time or size >= len(ARRAY)


def test_json_array_strings_with_escapes_and_brackets_at_every_split() -> None:
    """Element text is copied in runs between quotes, backslashes and brackets: escaped
    quotes, backslashes before a closing quote and brackets inside strings stay text."""
    elements = [
        {"text": 'say "hi" [ok] {x}', "n": [1, {"m": "\\"}]},
        {"a": '\\"', "b": "é☃ ]}"},
        ["x", {"y": "\\u005d"}],
    ]
    data = ("[" + ",\r\n".join(json.dumps(e, ensure_ascii=False) for e in elements) + "]").encode()
    for cut in range(1, len(data)):
        parser = JsonArrayParser()
        parsed = parser.feed(data[:cut], 1.0) + parser.feed(data[cut:], 2.0)
        assert [json.loads(e.text) for e in parsed] == elements, cut
        assert parser.close(3.0) is None


def test_json_array_empty_and_whitespace() -> None:
    parser = JsonArrayParser()
    parser.feed(b" [ ] ", 0.0)
    assert parser.close(1.0) is None
    assert parser.elements == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b'data: {"a":1}\n\n', "expected '['"),
        (b'[{"a":1}', "not closed"),
        (b'[{"a":1},{"b":', "cut after"),
        (b'[{"a":1}{"b":2}]', "between array elements"),
        (b'[{"a":1}] trailing', "after the closing bracket"),
        (b'[{"a":1},]', "between array elements"),
    ],
)
def test_json_array_framing_errors_are_described(data: bytes, problem: str) -> None:
    parser = JsonArrayParser()
    parser.feed(data, 0.0)
    error = parser.close(1.0)
    assert error is not None and problem in error


def _stream(
    client: httpx.Client, path: str, headers: dict[str, str], body: dict[str, Any]
) -> list[tuple[bytes, float]]:
    chunks = []
    started = time.perf_counter()
    with client.stream("POST", path, headers=headers, json=body) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            chunks.append((chunk, time.perf_counter() - started))
    return chunks


def test_real_mock_streams_parse_cleanly(client: httpx.Client) -> None:
    chat = {
        "model": "gpt-4o-mini--itl-5",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    parser = SSEParser()
    for chunk, at in _stream(client, "/v1/chat/completions", bearer(), chat):
        parser.feed(chunk, at)
    assert parser.close(9.0) is None
    assert parser.events[-1].data == "[DONE]"
    assert parser.events[0].time < parser.events[-1].time

    claude_body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    parser = SSEParser()
    for chunk, at in _stream(client, "/v1/messages", claude(), claude_body):
        parser.feed(chunk, at)
    assert parser.close(9.0) is None
    assert all(e.event == json.loads(e.data)["type"] for e in parser.events)

    gemini_body = {"contents": [{"parts": [{"text": "hi"}]}]}
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    array = JsonArrayParser()
    for chunk, at in _stream(client, path, goog(), gemini_body):
        array.feed(chunk, at)
    assert array.close(9.0) is None and len(array.elements) > 1
    sse = SSEParser()
    for chunk, at in _stream(client, path + "?alt=sse", goog(), gemini_body):
        sse.feed(chunk, at)
    assert sse.close(9.0) is None
    assert [json.loads(e.data) for e in sse.events] == [json.loads(e.text) for e in array.elements]
