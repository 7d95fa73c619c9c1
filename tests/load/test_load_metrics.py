"""Per-request timings from timed streams: synthetic frames, then the mock's real wire formats."""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import httpx
import pytest
from support import SECRETS

from gateprobe.load.classify import classify_event
from gateprobe.load.framing import ChunkTemplate
from gateprobe.load.metrics import RequestTimer
from gateprobe.load.profile import RequestSpec
from gateprobe.mock import MockServer
from gateprobe.request import build_request
from gateprobe.sse import SSEParser
from gateprobe.target import Target


def chunk(delta: dict[str, object], **extra: object) -> bytes:
    body = {"choices": [{"index": 0, "delta": delta}], **extra}
    return f"data: {json.dumps(body)}\n\n".encode()


def test_openai_stream_ttft_ttst_itl_tpot_and_usage() -> None:
    timer = RequestTimer("openai", "chat", "sse", start=10.0)
    timer.feed(chunk({"role": "assistant", "content": ""}), 10.05)  # role only: not a token
    timer.feed(chunk({"content": "Hel"}), 10.2)
    timer.feed(chunk({"content": "lo"}) + chunk({"content": " there"}), 10.25)  # one read
    timer.feed(chunk({"content": "!"}), 10.3)
    usage = {"choices": [], "usage": {"completion_tokens": 4}}
    timer.feed(f"data: {json.dumps(usage)}\n\n".encode(), 10.31)
    timer.feed(b"data: [DONE]\n\n", 10.32)
    record = timer.finish(10.33, 200)
    assert record["ok"] and record["error_class"] is None
    assert record["ttft_ms"] == pytest.approx(200.0)
    assert record["ttst_ms"] == pytest.approx(250.0)
    assert record["itl_ms"] == pytest.approx([50.0, 0.0, 50.0])  # coalesced chunks: a 0 gap
    assert record["tpot_ms"] == pytest.approx(100.0 / 3, abs=0.001)  # stored to 1 µs
    assert record["e2e_ms"] == pytest.approx(330.0)
    assert (record["output_tokens"], record["output_tokens_source"]) == (4, "usage")
    assert record["chunks"] == 4


def test_reasoning_is_timed_apart_and_estimate_without_usage() -> None:
    timer = RequestTimer("openai", "chat", "sse", start=0.0)
    timer.feed(chunk({"reasoning_content": "think"}), 0.1)
    timer.feed(chunk({"reasoning_content": "more"}), 0.2)
    timer.feed(chunk({"content": "A"}), 0.5)
    timer.feed(chunk({"content": "B"}), 0.6)
    timer.feed(b"data: [DONE]\n\n", 0.7)
    record = timer.finish(0.7, 200)
    assert record["reasoning_ttft_ms"] == pytest.approx(100.0)
    assert record["ttft_ms"] == pytest.approx(500.0)  # visible output, not reasoning
    assert record["itl_ms"] == pytest.approx([100.0])
    assert (record["output_tokens"], record["output_tokens_source"]) == (4, "estimate")


@pytest.mark.parametrize(
    ("frames", "status", "error_class"),
    [
        ([chunk({"content": "A"})], 200, "truncated"),
        ([chunk({"content": "A"}), b'data: {"error": {"message": "upstream failed"}}\n\n'],
         200, "in_band_error"),
        ([b'{"error": {"message": "no"}}'], 429, "http_429"),
        ([b"data: not json\n\n", b"data: [DONE]\n\n"], 200, "in_band_error"),
    ],
)  # fmt: skip
def test_failures_are_classified(frames: list[bytes], status: int, error_class: str) -> None:
    timer = RequestTimer("openai", "chat", "sse", start=0.0)
    for i, frame in enumerate(frames):
        timer.feed(frame, 0.1 * (i + 1))
    record = timer.finish(1.0, status)
    assert not record["ok"] and record["error_class"] == error_class


def test_anthropic_thinking_text_and_usage() -> None:
    def event(name: str, data: dict[str, object]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    timer = RequestTimer("anthropic", "chat", "sse", start=0.0)
    timer.feed(event("message_start", {"message": {"usage": {"input_tokens": 5}}}), 0.01)
    timer.feed(event("ping", {}), 0.02)
    thinking = {"delta": {"type": "thinking_delta", "thinking": "h"}}
    timer.feed(event("content_block_delta", thinking), 0.1)
    timer.feed(event("content_block_delta", {"delta": {"type": "text_delta", "text": "Hi"}}), 0.3)
    timer.feed(event("content_block_delta", {"delta": {"type": "text_delta", "text": "!"}}), 0.32)
    timer.feed(event("message_delta", {"usage": {"output_tokens": 3}}), 0.33)
    timer.feed(event("message_stop", {}), 0.34)
    record = timer.finish(0.35, 200)
    assert record["ok"]
    assert record["ttft_ms"] == pytest.approx(300.0)
    assert record["reasoning_ttft_ms"] == pytest.approx(100.0)
    assert record["itl_ms"] == pytest.approx([20.0])
    assert record["output_tokens"] == 3


def test_gemini_array_and_missing_finish_reason() -> None:
    part = {"candidates": [{"content": {"parts": [{"text": "a"}]}}]}
    last = {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"candidatesTokenCount": 2}}  # fmt: skip
    timer = RequestTimer("gemini", "chat", "array", start=0.0)
    timer.feed(b"[" + json.dumps(part).encode(), 0.2)
    timer.feed(b"\r\n," + json.dumps(last).encode() + b"]", 0.25)
    record = timer.finish(0.25, 200)
    assert record["ok"] and record["ttft_ms"] == pytest.approx(200.0)
    assert record["itl_ms"] == pytest.approx([50.0]) and record["output_tokens"] == 2
    cut = RequestTimer("gemini", "chat", "array", start=0.0)
    cut.feed(b"[" + json.dumps(part).encode(), 0.2)
    assert cut.finish(0.3, 200)["error_class"] == "truncated"


def test_non_streamed_answer_has_e2e_and_tokens_but_no_ttft() -> None:
    timer = RequestTimer("openai", "chat", None, start=0.0)
    timer.feed(json.dumps({"choices": [], "usage": {"completion_tokens": 9}}).encode(), 0.4)
    record = timer.finish(0.5, 200)
    assert record["ok"] and record["ttft_ms"] is None and record["itl_ms"] == []
    assert record["e2e_ms"] == pytest.approx(500.0) and record["output_tokens"] == 9


MOCK_MODELS = {"chat": {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5",
                        "gemini": "gemini-2.5-flash"}, "responses": "gpt-4o-mini",
               "embeddings": "text-embedding-3-small"}  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "operation", "stream"),
    [("openai", "chat", True), ("openai", "responses", True), ("anthropic", "chat", True),
     ("gemini", "chat", True), ("gemini", "chat", "array"), ("openai", "chat", False),
     ("openai", "embeddings", False)],
)  # fmt: skip
def test_the_mocks_real_streams_give_complete_records(
    mock: MockServer, protocol: str, operation: str, stream: bool | str
) -> None:
    target = Target(name="mock", base_url=mock.url, keys={"valid": SECRETS["valid"]},
                    models=MOCK_MODELS)  # fmt: skip
    spec = RequestSpec("x", protocol, operation, stream, body={}).spec()
    spec["headers"]["x-gateprobe-directives"] = "chunks-6"
    built = build_request(spec, target)
    timer = RequestTimer(protocol, operation, built.stream, time.perf_counter())
    with (
        httpx.Client(base_url=mock.url) as client,
        client.stream(built.method, built.url, headers=built.headers, json=built.json_body) as r,
    ):
        for data in r.iter_raw():
            timer.feed(data, time.perf_counter())
        record = timer.finish(time.perf_counter(), r.status_code)
    assert record["ok"], record
    if stream:
        assert record["ttft_ms"] is not None and len(record["itl_ms"]) == 5
        assert record["output_tokens"] == 6 and record["output_tokens_source"] == "usage"
    else:
        assert record["ttft_ms"] is None and record["e2e_ms"] > 0


def reference_visible_times(stream: bytes, cuts: list[int]) -> tuple[list[float], bool, int | None]:
    """What the complete parser (gateprobe.sse.SSEParser) and a JSON decode per event say."""
    parser = SSEParser()
    times: list[float] = []
    done = False
    tokens: int | None = None
    for index, piece in enumerate(split_at(stream, cuts)):
        for event in parser.feed(piece, float(index)):
            delta = classify_event("openai", "chat", event.event, event.data)
            if delta.visible:
                times.append(float(index))
            done = done or delta.done
            tokens = delta.output_tokens if delta.output_tokens is not None else tokens
    return times, done, tokens


def agrees_with_the_reference(
    stream: bytes, cuts: list[int], template: ChunkTemplate | None = None
) -> RequestTimer:
    """Feeds an OpenAI chat stream cut at ``cuts`` and checks it against the reference."""
    timer = RequestTimer("openai", "chat", "sse", start=0.0, template=template)
    for index, piece in enumerate(split_at(stream, cuts)):
        timer.feed(piece, float(index))
    expected_times, expected_done, expected_tokens = reference_visible_times(stream, cuts)
    assert timer.visible_times == expected_times, (stream, cuts)
    assert timer.done == expected_done
    assert timer.output_tokens == expected_tokens
    return timer


def data_frame(body: dict[str, object], *, compact: bool = False) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    return f"data: {json.dumps(body, separators=separators)}\n\n".encode()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_the_fast_paths_agree_with_the_complete_parser() -> None:
    """The byte-counting path and the lean splitter give the same visible events, at the
    same reads, as SSEParser with a JSON decode per event, on randomized streams."""
    rng = random.Random(7)
    kinds = [
        lambda: chunk({"content": rng.choice(["a", "b c", 'say "hi"\n', ""])}),
        lambda: chunk({"role": "assistant", "content": ""}),
        lambda: chunk({"reasoning_content": "hm"}),
        lambda: chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        lambda: data_frame({"choices": [], "usage": {"completion_tokens": 3}}),
        lambda: data_frame({"choices": [{"delta": {"content": "x"}}]}, compact=True),
        lambda: data_frame(
            {"choices": [{"delta": {"content": rng.choice(["", "q\"t", "b\\", "n\nl", "w"])}}]},
            compact=True,
        ),
        lambda: data_frame(
            {"choices": [{"delta": {"content": "a", "reasoning_content": "r"}}]}, compact=True
        ),
        lambda: data_frame({"choices": [{"delta": {"content": None}}]}, compact=True),
        lambda: data_frame({"choices": [], "usage": {"completion_tokens": 5}}, compact=True),
        lambda: b'data: {"choices":[{"index":0,"delta":{"content":"z"}}],"usage":null}\n\n',
        lambda: b": keep-alive\n\n",
        lambda: b'data: {"choices":[{"index":1,"delta":{"content":"q"}}]}\n\n',
    ]  # fmt: skip
    for trial in range(600):
        frames = [rng.choice(kinds)() for _ in range(rng.randint(1, 12))] + [b"data: [DONE]\n\n"]
        stream = b"".join(frames)
        if trial % 3 == 0:
            stream = stream.replace(b"\n", b"\r\n")
        cuts = rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 6)))
        agrees_with_the_reference(stream, cuts)


def gateway_chunk(ident: str, created: int, delta: dict[str, object], **extra: object) -> bytes:
    """An OpenAI chunk as gateways send it: id, created and model around the choices."""
    body = {
        "id": ident, "object": "chat.completion.chunk", "created": created, "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}], "usage": None, **extra,
    }  # fmt: skip
    return data_frame(body, compact=True)


def test_templates_recalled_across_streams_agree_with_the_complete_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each stream has its own id and created; the template learned on one stream is recalled
    on the next (as a user does from one request to the next) and must still count exactly,
    also when a stream changes its id mid-way, has another model or carries odd text."""
    rng = random.Random(11)
    learned: list[bytes] = []
    learn = ChunkTemplate.learn.__func__  # type: ignore[attr-defined]

    def counting_learn(cls: type[ChunkTemplate], block: bytes, *args: Any) -> object:
        template = learn(cls, block, *args)
        if template is not None:
            learned.append(template.prefix)
        return template

    monkeypatch.setattr(ChunkTemplate, "learn", classmethod(counting_learn))
    recalled: list[bytes] = []
    recall = ChunkTemplate.recall

    def counting_recall(self: ChunkTemplate, block: bytes) -> ChunkTemplate | None:
        template = recall(self, block)
        if template is not None:
            recalled.append(template.prefix)
        return template

    monkeypatch.setattr(ChunkTemplate, "recall", counting_recall)
    carried = None
    for trial in range(400):
        ident = rng.choice(["chatcmpl-", "gen-", "", "x" * 40]) + f"{trial:x}"
        created = rng.choice([1_700_000_000 + trial, trial, 0])
        texts = ["a", "b c", "é", 'say "hi"', "", "x\\", "\n", "</s>"]
        # (id suffix, delta, extra fields): plain text mostly, and what must not be counted
        kinds: list[tuple[str, dict[str, object] | None, dict[str, object]]] = [
            ("", None, {}), ("", None, {}), ("", None, {}),
            ("", {"role": "assistant", "content": ""}, {}),
            ("", {"reasoning_content": "r"}, {}),
            ("-other", {"content": "u"}, {}),  # an unstable id
            ("", {"content": "m"}, {"model": "other"}),
            ("", {"content": "t"}, {"usage": {"completion_tokens": 2}}),
        ]  # fmt: skip
        frames = []
        for _ in range(rng.randint(1, 30)):
            suffix, delta, extra = rng.choice(kinds)
            if rng.random() < 0.05:
                frames.append(b": keep-alive\n\n")
                continue
            delta = delta or {"content": rng.choice(texts)}
            frames.append(gateway_chunk(ident + suffix, created, delta, **extra))
        stream = b"".join([*frames, b"data: [DONE]\n\n"])
        cuts = rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 4)))
        timer = agrees_with_the_reference(stream, cuts, carried)
        carried = timer.template or carried
    # streams recalled the last stream's template (with their own id) instead of decoding
    # a frame again; learning is left for streams whose shape changed
    assert len(recalled) > 2 * len(learned) > 0, (len(recalled), len(learned))
    assert len(set(recalled)) > 100  # other ids and created values, not one prefix


def test_the_splitter_hands_lone_cr_streams_to_the_complete_parser() -> None:
    stream = chunk({"content": "a"}).replace(b"\n", b"\r") + b"data: [DONE]\r\r"
    timer = RequestTimer("openai", "chat", "sse", start=0.0)
    timer.feed(stream[:10], 0.1)
    timer.feed(stream[10:], 0.2)
    record = timer.finish(0.3, 200)
    assert record["ok"] and record["ttft_ms"] == pytest.approx(200.0)
