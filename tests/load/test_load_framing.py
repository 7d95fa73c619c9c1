"""ChunkTemplate: learned on one stream's frames, recalled on the next stream's."""

from __future__ import annotations

import json

from gateprobe.load.framing import ChunkTemplate


def frame(ident: str, created: int, content: str, *, model: str = "m", index: int = 0) -> bytes:
    body = {
        "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": None}],
    }  # fmt: skip
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def learned() -> ChunkTemplate:
    template = ChunkTemplate.learn(frame("chatcmpl-1", 1700000000, "a") * 3, "openai", "chat")
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
