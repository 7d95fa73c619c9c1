"""ChunkTemplate (learned on one stream's frames, recalled on the next stream's) and
ArraySplitter, each against the complete parsers."""

from __future__ import annotations

import functools
import itertools
import json
import random

import pytest

from gateprobe import protocols
from gateprobe.load.classify import classify_event
from gateprobe.load.framing import ChunkTemplate, ElementTemplate
from gateprobe.load.metrics import RequestTimer
from gateprobe.sse import JsonArrayParser, SSEParser


def frame(ident: str, created: int, content: str, *, model: str = "m", index: int = 0) -> bytes:
    body = {
        "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": None}],
    }  # fmt: skip
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def learned() -> ChunkTemplate:
    template = ChunkTemplate.learn(
        frame("chatcmpl-1", 1700000000, "a") * 3, protocols.api("openai", "chat")
    )
    assert template is not None
    return template


def test_the_next_stream_is_recalled_with_its_own_id_and_created() -> None:
    template = learned()
    block = frame("chatcmpl-2a", 1700000009, "x") + frame("chatcmpl-2a", 1700000009, "y")
    recalled = template.recall(block)
    assert recalled is not None and recalled is not template
    assert b'"id":"chatcmpl-2a"' in recalled.prefix and b"1700000009" in recalled.prefix
    assert recalled.suffix == template.suffix
    assert recalled.span(block) == (0, len(block), 2)
    assert template.recall(frame("chatcmpl-1", 1700000000, "z")) is template  # the same stream


def test_anything_but_id_and_created_must_match_to_recall() -> None:
    template = learned()
    assert template.recall(frame("chatcmpl-2", 5, "x", model="other")) is None
    assert template.recall(frame("chatcmpl-2", 5, "x", index=1)) is None  # a second choice
    assert template.recall(frame('chat"cmpl', 5, "x")) is None  # an escaped quote in the id
    assert template.recall(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n') is None


def test_a_run_with_another_frame_is_not_counted() -> None:
    template = learned()
    run = frame("chatcmpl-1", 1700000000, "a") + frame("chatcmpl-9", 1700000000, "b")
    assert template.count(run) is None  # the second frame's id differs: decode, not count
    assert template.count(frame("chatcmpl-1", 1700000000, 'say "hi"')) is None
    empty = frame("chatcmpl-1", 1700000000, "")
    assert template.count(empty + frame("chatcmpl-1", 1700000000, "b")) == 1


def gemini_element(
    rng: random.Random, last: bool, count: int = 3, response_id: str = "r"
) -> dict[str, object]:
    text = rng.choice(["a", "b c", 'q "}", ', "}]", "\\", "", "{[", "é", "\u2028x"])
    candidate: dict[str, object] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if rng.random() < 0.1:
        candidate["content"] = {"parts": [{"text": "t", "thought": True}]}
    if last:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 8, "candidatesTokenCount": count}
    return {"candidates": [candidate], "usageMetadata": usage, "responseId": response_id}


def reference_array(
    body: bytes, cuts: list[int]
) -> tuple[list[float], bool, str | None, int | None]:
    """What JsonArrayParser and a JSON decode per element say."""
    parser = JsonArrayParser()
    times: list[float] = []
    done = False
    tokens: int | None = None
    pieces = split(body, cuts)
    for index, piece in enumerate(pieces):
        for element in parser.feed(piece, float(index)):
            delta = classify_event("gemini", "chat", None, element.text)
            if delta.visible:
                times.append(float(index))
            done = done or delta.done
            tokens = delta.output_tokens if delta.output_tokens is not None else tokens
    return times, done, parser.close(float(len(pieces))), tokens


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_the_array_splitter_agrees_with_the_complete_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compact and pretty-printed Gemini arrays, cut anywhere, and broken ones (unclosed,
    stray bytes, an element that is not an object or not JSON): the same visible events at
    the same reads, and the same verdict at the end."""
    rng = random.Random(5)
    carried = None
    counted: list[bool] = []  # elements matched by a template, so never decoded
    match = ElementTemplate.match

    def counting_match(self: ElementTemplate, raw: bytearray, at: int) -> object:
        found = match(self, raw, at)
        counted.append(found is not None)
        return found

    monkeypatch.setattr(ElementTemplate, "match", counting_match)
    for trial in range(500):
        count = rng.randint(0, 12)
        ident = f"resp-{trial}"
        elements = [gemini_element(rng, i == count - 1, i + 1, ident) for i in range(count)]
        indent = rng.choice([None, 2])
        texts = [json.dumps(e, indent=indent).encode() for e in elements]
        body = b"[" + rng.choice([b",", b"\r\n,", b",\n"]).join(texts) + b"]"
        if rng.random() < 0.5:
            body = rng.choice([b"", b"\xef\xbb\xbf", b"\n"]) + body
        damage = rng.random()
        if damage < 0.1:
            body = body[: rng.randint(0, len(body))]  # cut anywhere
        elif damage < 0.15:
            body += b" x"
        elif damage < 0.2:
            body = body.replace(b"[{", b"[1, {", 1)
        elif damage < 0.25 and count:
            body = body.replace(b'"STOP"', b"STOP")
        cuts = rng.sample(range(1, len(body)), k=min(max(0, len(body) - 1), rng.randint(0, 8)))
        timer = RequestTimer("gemini", "chat", "array", start=0.0, template=carried)
        pieces = split(body, cuts)
        for index, piece in enumerate(pieces):
            timer.feed(piece, float(index))
        record = timer.finish(float(len(pieces)), 200)
        times, done, problem, tokens = reference_array(body, cuts)
        assert timer.visible_times == times, (trial, body, cuts)
        assert timer.done == done and timer.output_tokens == tokens, (trial, body)
        carried = timer.template or carried
        if problem is None and not done:
            assert record["error_class"] in (None, "in_band_error"), (trial, body)
        elif problem is not None and record["error_class"] != "in_band_error":
            assert record["error"] == problem, (trial, body, record)
    assert sum(counted) > 500  # the template path was taken, across streams


def anthropic_event(kind: str, body: dict[str, object]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def test_anthropic_streams_counted_by_template_agree_with_the_complete_parser() -> None:
    """Claude Messages streams (text, thinking and tool deltas, pings, a second block, an
    error event, odd text), cut anywhere, with the template carried from stream to stream:
    the same visible events at the same reads, tokens and end as SSEParser says."""
    rng = random.Random(3)
    texts = ["a", "b c", 'q "x"', "", "x\\", "\n", "}}", "é"]

    def delta(index: int, payload: dict[str, object]) -> bytes:
        body = {"type": "content_block_delta", "index": index, "delta": payload}
        return anthropic_event("content_block_delta", body)

    kinds = [
        lambda: delta(0, {"type": "text_delta", "text": rng.choice(texts)}),
        lambda: delta(0, {"type": "text_delta", "text": rng.choice(texts)}),
        lambda: delta(0, {"type": "text_delta", "text": rng.choice(texts)}),
        lambda: delta(0, {"type": "thinking_delta", "thinking": "hm"}),
        lambda: delta(1, {"type": "input_json_delta", "partial_json": '{"a'}),
        lambda: delta(1, {"type": "text_delta", "text": "other block"}),
        lambda: anthropic_event("ping", {"type": "ping"}),
        lambda: anthropic_event("error", {"type": "error", "error": {"message": "overloaded"}}),
        lambda: b": comment\n\n",
    ]
    carried = None
    for trial in range(400):
        start = anthropic_event("message_start", {"type": "message_start", "message": {}})
        frames = [start] + [rng.choice(kinds)() for _ in range(rng.randint(0, 25))]
        usage = {"type": "message_delta", "usage": {"output_tokens": trial}}
        frames += [anthropic_event("message_delta", usage)]
        if rng.random() < 0.9:
            frames.append(anthropic_event("message_stop", {"type": "message_stop"}))
        stream = b"".join(frames)
        if trial % 4 == 0:
            stream = stream.replace(b"\n", b"\r\n")
        cuts = rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 6)))
        timer = agrees_with_the_complete_parser("anthropic", stream, cuts, carried)
        assert timer.output_tokens == trial
        carried = timer.template or carried
    assert carried is not None  # the template path was taken


def agrees_with_the_complete_parser(
    protocol: str,
    stream: bytes,
    cuts: list[int],
    template: ChunkTemplate | None,
    operation: str = "chat",
) -> RequestTimer:
    """Feeds a stream cut at ``cuts`` and checks the events, tokens and verdict against
    SSEParser with a JSON decode per event."""
    timer = RequestTimer(protocol, operation, "sse", start=0.0, template=template)
    pieces = split(stream, cuts)
    for index, piece in enumerate(pieces):
        timer.feed(piece, float(index))
    record = timer.finish(float(len(pieces)), 200)
    parser, times, done, error, tokens = SSEParser(), [], False, None, None
    for index, piece in enumerate(pieces):
        for event in parser.feed(piece, float(index)):
            found = classify_event(protocol, operation, event.event, event.data)
            times += [float(index)] if found.visible else []
            done = done or found.done
            error = error or found.error
            tokens = found.output_tokens if found.output_tokens is not None else tokens
    assert timer.visible_times == times, (stream, cuts)
    assert timer.done == done and timer.output_tokens == tokens, (stream, cuts)
    assert record["error"] == error or (error is None and not done), (stream, record)
    return timer


def test_gemini_sse_counted_by_template_agrees_with_the_complete_parser() -> None:
    """Gemini SSE chunks carry usage counts that change with every chunk and a response id
    that changes with every stream; the last text chunk also ends the stream. Thought and
    function-call parts, a second candidate, an error object and odd text are mixed in."""
    rng = random.Random(8)
    texts = ["a", "b c", 'q "x"', "", "x\\", "\n", "}]", "é"]
    carried = None
    learned = 0
    for trial in range(400):
        response_id = f"resp{trial}" * rng.randint(1, 3)

        separators = (", ", ": ") if trial % 2 else (",", ":")  # the real API spaces them

        def chunk(
            part: dict[str, object],
            count: int,
            response_id: str = response_id,
            separators: tuple[str, str] = separators,
            **candidate: object,
        ) -> bytes:
            body = {
                "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0,
                                **candidate}],
                "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": count,
                                  "totalTokenCount": 8 + count},
                "modelVersion": "gemini-x", "responseId": response_id,
            }  # fmt: skip
            return f"data: {json.dumps(body, separators=separators)}\n\n".encode()

        frames = []
        for count in range(1, rng.randint(1, 25)):
            roll = rng.random()
            if roll < 0.7:
                frames.append(chunk({"text": rng.choice(texts)}, count))
            elif roll < 0.78:
                frames.append(chunk({"text": "t", "thought": True}, count))
            elif roll < 0.84:
                frames.append(chunk({"functionCall": {"name": "f", "args": {}}}, count))
            elif roll < 0.9:
                frames.append(chunk({"text": "x"}, count, index=1))
            elif roll < 0.93:
                frames.append(b'data: {"error":{"code":500,"message":"boom"}}\n\n')
            else:
                frames.append(b": keep-alive\n\n")
        if rng.random() < 0.9:
            frames.append(chunk({"text": rng.choice(texts)}, 99, finishReason="STOP"))
        stream = b"".join(frames)
        if trial % 3 == 0:
            stream = stream.replace(b"\n", b"\r\n")
        cuts = rng.sample(range(1, len(stream)), k=min(max(0, len(stream) - 1), rng.randint(0, 5)))
        timer = agrees_with_the_complete_parser("gemini", stream, cuts, carried)
        learned += timer.template is not None and timer.template is not carried
        carried = timer.template or carried
    assert carried is not None and carried.varies  # counted, usage read from the last one
    assert learned < 200  # mostly recalled: the response id is not part of the template


def responses_event(events: list[bytes], kind: str, **fields: object) -> None:
    body = {"type": kind, "sequence_number": len(events), **fields}
    data = json.dumps(body, separators=(",", ":"))
    events.append(f"event: {kind}\ndata: {data}\n\n".encode())


def test_responses_streams_counted_by_template_agree_with_the_complete_parser() -> None:
    """OpenAI Responses streams: every event has its own sequence number (before the text)
    and a stream its own item id; text, reasoning and function-call deltas, padding
    (``obfuscation``), a failure and odd text are mixed in."""
    rng = random.Random(13)
    texts = ["a", "b c", 'q "x"', "", "x\\", "\n", "é"]
    carried = None
    for trial in range(300):
        item = f"msg_{trial:x}" * rng.randint(1, 2)
        events: list[bytes] = []

        event = functools.partial(responses_event, events)
        event("response.created", response={"id": "resp_1", "status": "in_progress"})
        where = {"item_id": item, "output_index": 0, "content_index": 0}
        for _ in range(rng.randint(0, 25)):
            roll = rng.random()
            if roll < 0.7:
                padding = {"obfuscation": "x" * rng.randint(0, 9)} if trial % 2 else {}
                event("response.output_text.delta", **where, delta=rng.choice(texts),
                      logprobs=[], **padding)  # fmt: skip
            elif roll < 0.8:
                event("response.reasoning_text.delta", **where, delta="r")
            elif roll < 0.9:
                event("response.function_call_arguments.delta", item_id=item, delta='{"a')
            elif roll < 0.93:
                event("response.failed", response={"error": {"message": "boom"}})
            else:
                event("response.output_text.done", **where, text="all")
        usage = {"output_tokens": trial, "output_tokens_details": {"reasoning_tokens": 0}}
        if rng.random() < 0.9:
            event("response.completed", response={"id": "resp_1", "usage": usage})
        stream = b"".join(events)
        if trial % 4 == 0:
            stream = stream.replace(b"\n", b"\r\n")
        cuts = rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 5)))
        timer = agrees_with_the_complete_parser("openai", stream, cuts, carried, "responses")
        carried = timer.template or carried
    assert carried is not None and carried.varies
