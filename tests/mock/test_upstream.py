"""The simulated upstream model: directives, deterministic generation, embeddings, PNG, rerank."""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib
from typing import Any

import pytest

from gateprobe.mock.upstream import (
    REASONING_PIECES,
    Completion,
    DirectiveError,
    Directives,
    GenRequest,
    ToolSpec,
    embedding,
    embedding_base64,
    generate,
    png_image,
    prompt_tokens,
    rerank_scores,
    sample_value,
    split_model,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def request(**changes: Any) -> GenRequest:
    fields: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "texts": ["Say something about gateways", "You are terse"],
        "messages": 2,
        "fingerprint": "fingerprint-1",
    }
    fields.update(changes)
    return GenRequest(**fields)


def run(req: GenRequest, seed: int = 0, **kwargs: Any) -> Completion:
    kwargs.setdefault("min_tokens", 8)
    kwargs.setdefault("max_tokens", 32)
    return generate(req, seed=seed, **kwargs)


# -- directives -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("error-503", Directives(error_status=503)),
        ("error-400", Directives(error_status=400)),
        ("error-599", Directives(error_status=599)),
        ("ERROR-500", Directives(error_status=500)),
        ("  error-429 ", Directives(error_status=429)),
        ("fail-after-3", Directives(fail_after=3)),
        ("fail-after-0", Directives(fail_after=0)),
        ("cut-after-2", Directives(cut_after=2)),
        ("hang", Directives(hang=True)),
        ("HANG", Directives(hang=True)),
        ("ttft-200", Directives(ttft_ms=200.0)),
        ("slow-first-150", Directives(ttft_ms=150.0)),
        ("itl-20", Directives(itl_ms=20.0)),
        ("itl-2.5", Directives(itl_ms=2.5)),
        ("chunks-1", Directives(chunks=1)),
        ("chunks-4096", Directives(chunks=4096)),
        ("mark-7", Directives(mark=7)),
        ("mark-0", Directives(mark=0)),
        ("MARK-123456789", Directives(mark=123456789)),
    ],
)
def test_parse_each_directive(token: str, expected: Directives) -> None:
    assert Directives.parse([token]) == expected


def test_parse_combines_and_skips_empty_tokens() -> None:
    parsed = Directives.parse(["ttft-100", "", " ", "itl-5", "chunks-7", "fail-after-2"])
    assert parsed == Directives(ttft_ms=100.0, itl_ms=5.0, chunks=7, fail_after=2)
    assert Directives.parse([]) == Directives()


@pytest.mark.parametrize(
    "token",
    [
        "bogus",
        "bogus-3",
        "error",
        "error-",
        "error-abc",
        "error-1.2.3",
        "error-200",
        "error-399",
        "error-600",
        "chunks-0",
        "chunks-4097",
        "itl--5",
        "-5",
        "hang-5",
        "ttft",
        "fail_after-3",
        "mark",
        "mark-1.5",
        "mark-1234567890123456789",
    ],
)
def test_parse_rejects_bad_directives(token: str) -> None:
    with pytest.raises(DirectiveError) as info:
        Directives.parse([token])
    assert token.strip() in str(info.value)


def test_directive_error_is_a_value_error() -> None:
    assert issubclass(DirectiveError, ValueError)


def test_merged_lets_set_fields_override() -> None:
    base = Directives(error_status=503, ttft_ms=100.0, itl_ms=5.0)
    other = Directives(ttft_ms=300.0, hang=True)
    merged = base.merged(other)
    assert merged == Directives(error_status=503, ttft_ms=300.0, itl_ms=5.0, hang=True)
    assert base.merged(Directives()) == base
    assert Directives().merged(base) == base


def test_merged_keeps_a_zero_that_was_set() -> None:
    # 0 == False: a header's fail-after-0 or mark-0 must still override the name's
    assert Directives(fail_after=3).merged(Directives(fail_after=0)).fail_after == 0
    assert Directives().merged(Directives(mark=0)).mark == 0
    assert Directives(mark=4).merged(Directives(chunks=2)) == Directives(mark=4, chunks=2)


def test_mark_puts_its_word_first_and_keeps_the_normal_words() -> None:
    plain = run(request())
    marked = run(request(), directives=Directives(mark=7))
    assert marked.pieces[0] == "gateprobe-mark-7 "
    assert marked.pieces[1:] == plain.pieces
    assert marked.text.startswith("gateprobe-mark-7 ") and marked.text.endswith(plain.text)
    assert marked.completion_tokens == plain.completion_tokens + 1
    assert marked.finish_reason == "stop"
    with_chunks = run(request(), directives=Directives(mark=7, chunks=3))
    assert len(with_chunks.pieces) == 4 and with_chunks.pieces[0] == "gateprobe-mark-7 "


def test_mark_survives_max_tokens_and_leads_tool_and_json_answers() -> None:
    short = run(request(max_tokens=2), directives=Directives(mark=1))
    assert short.pieces[0] == "gateprobe-mark-1 " and len(short.pieces) == 2
    assert short.finish_reason == "length"
    tool = run(request(tools=[WEATHER]), directives=Directives(mark=2))
    assert tool.pieces == ["gateprobe-mark-2"] and tool.finish_reason == "tool_calls"
    assert [t.name for t in tool.tool_calls] == ["get_weather"]
    json_answer = run(request(json_mode=True), directives=Directives(mark=3))
    assert json_answer.text.startswith("gateprobe-mark-3 {")


def test_split_model() -> None:
    assert split_model("gpt-4o-mini") == ("gpt-4o-mini", Directives())
    assert split_model("gpt-4o-mini--error-503") == ("gpt-4o-mini", Directives(error_status=503))
    assert split_model("claude-sonnet-4-5--ttft-200--itl-20") == (
        "claude-sonnet-4-5",
        Directives(ttft_ms=200.0, itl_ms=20.0),
    )
    assert split_model("m--hang--chunks-3") == ("m", Directives(hang=True, chunks=3))
    assert split_model("gpt-4o-mini--mark-7--cut-after-2") == (
        "gpt-4o-mini",
        Directives(mark=7, cut_after=2),
    )
    # A single dash belongs to the model name.
    assert split_model("gemini-2.5-flash") == ("gemini-2.5-flash", Directives())


@pytest.mark.parametrize("name", ["gpt-4o-mini--nope", "gpt-4o-mini--error-200", "m--itl-x"])
def test_split_model_rejects_bad_directives(name: str) -> None:
    with pytest.raises(DirectiveError):
        split_model(name)


# -- generation -----------------------------------------------------------------------------


def test_generate_is_deterministic_for_same_seed_and_request() -> None:
    first, second = run(request()), run(request())
    assert first == second
    assert first.text and first.finish_reason == "stop"
    assert 8 <= len(first.pieces) <= 32
    assert first.tool_calls == [] and first.reasoning == []


def test_generate_differs_for_another_seed_or_request() -> None:
    base = run(request())
    other_seed = run(request(), seed=1)
    assert other_seed.digest != base.digest
    assert other_seed.pieces != base.pieces
    other_request = run(request(fingerprint="fingerprint-2"))
    assert other_request.digest != base.digest
    assert other_request.pieces != base.pieces
    other_model = run(request(model="o3-mini"))
    assert other_model.digest != base.digest


def test_output_length_stays_within_bounds_across_requests() -> None:
    lengths = {len(run(request(fingerprint=f"fp-{i}")).pieces) for i in range(60)}
    assert min(lengths) >= 8 and max(lengths) <= 32
    assert len(lengths) > 5  # the length really varies with the request


def test_each_piece_is_one_token_and_text_reads_as_a_sentence() -> None:
    c = run(request())
    assert c.text == "".join(c.pieces)
    assert all(p for p in c.pieces)
    assert c.text[0].isupper() and c.text.endswith(".")
    assert c.completion_tokens == len(c.pieces)


def test_chunks_directive_fixes_the_output_length() -> None:
    for n in (1, 5, 40):
        c = run(request(), directives=Directives(chunks=n))
        assert len(c.pieces) == n
        assert c.completion_tokens == n


def test_max_tokens_truncates_with_finish_length() -> None:
    full = run(request())
    short = run(request(max_tokens=3))
    assert short.pieces == full.pieces[:3]
    assert short.finish_reason == "length"
    assert short.completion_tokens == 3
    roomy = run(request(max_tokens=len(full.pieces)))
    assert roomy.finish_reason == "stop"
    assert roomy.pieces == full.pieces


def test_prompt_tokens_counting() -> None:
    assert prompt_tokens([], 0) == 0
    assert prompt_tokens(["hello"], 1) == 4
    assert prompt_tokens(["hello world", "a  b\tc\n d"], 2) == 2 + 4 + 6
    assert prompt_tokens(["", "   "], 3) == 9
    c = run(request(texts=["one two three", "four"], messages=2))
    assert c.prompt_tokens == 4 + 6


WEATHER = ToolSpec(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
)
TIME = ToolSpec("get_time", {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}})


def test_tool_choice_picks_the_named_tool() -> None:
    c = run(request(tools=[WEATHER, TIME], tool_choice="get_time"))
    assert c.finish_reason == "tool_calls"
    assert c.pieces == []
    assert [t.name for t in c.tool_calls] == ["get_time"]
    call = c.tool_calls[0]
    assert json.loads(call.arguments) == {"zone": "UTC"}
    assert "".join(call.pieces) == call.arguments
    assert call.id.startswith("call_")
    assert c.completion_tokens == len(call.pieces)


@pytest.mark.parametrize("choice", ["auto", "required", "any"])
def test_auto_and_required_call_the_first_tool(choice: str) -> None:
    c = run(request(tools=[WEATHER, TIME], tool_choice=choice))
    assert [t.name for t in c.tool_calls] == ["get_weather"]
    args = json.loads(c.tool_calls[0].arguments)
    assert set(args) == {"city", "days"}
    assert isinstance(args["city"], str) and isinstance(args["days"], int)


def test_tool_choice_none_answers_in_text() -> None:
    c = run(request(tools=[WEATHER], tool_choice="none"))
    assert c.tool_calls == []
    assert c.text and c.finish_reason == "stop"


def test_tool_arguments_are_deterministic() -> None:
    a = run(request(tools=[WEATHER], tool_choice="get_weather"))
    b = run(request(tools=[WEATHER], tool_choice="get_weather"))
    assert a.tool_calls == b.tool_calls


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "number", "minimum": -10, "maximum": 40},
        "count": {"type": "integer", "minimum": 5, "maximum": 9},
        "sunny": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "nested": {"type": "object", "properties": {"inner": {"type": ["null", "string"]}}},
    },
    "required": ["city"],
}


def test_json_schema_output_parses_and_matches_property_names() -> None:
    c = run(request(json_schema=SCHEMA, json_mode=True))
    value = json.loads(c.text)
    assert set(value) == set(SCHEMA["properties"])  # type: ignore[arg-type]
    assert isinstance(value["city"], str)
    assert -10 <= value["temperature"] <= 40
    assert isinstance(value["count"], int) and 5 <= value["count"] <= 9
    assert isinstance(value["sunny"], bool)
    assert isinstance(value["tags"], list) and all(isinstance(t, str) for t in value["tags"])
    assert value["unit"] == "celsius"
    assert set(value["nested"]) == {"inner"} and isinstance(value["nested"]["inner"], str)
    assert c.finish_reason == "stop"


def test_json_mode_without_schema_gives_an_object() -> None:
    c = run(request(json_mode=True))
    value = json.loads(c.text)
    assert isinstance(value, dict) and isinstance(value.get("answer"), str)


def test_sample_value_keywords() -> None:
    rng = random.Random(0)
    assert sample_value({"const": 3}, rng) == 3
    assert sample_value({"enum": ["a", "b"]}, rng) == "a"
    assert sample_value({"anyOf": [{"type": "integer", "minimum": 7, "maximum": 7}]}, rng) == 7
    assert sample_value({"type": "null"}, rng) is None
    assert sample_value({"type": ["null", "boolean"]}, rng) in (True, False)
    assert set(sample_value({"properties": {"x": {}, "y": {}}}, rng)) == {"x", "y"}
    assert isinstance(sample_value("not a schema", rng), str)
    deep: dict[str, Any] = {"type": "object"}
    deep["properties"] = {"again": deep}
    assert isinstance(sample_value(deep, rng), dict)  # recursion is bounded


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high", "xhigh"])
def test_reasoning_adds_pieces(effort: str) -> None:
    plain = run(request())
    reasoning = run(request(reasoning=effort))
    assert len(reasoning.reasoning) == REASONING_PIECES[effort]
    # The visible length is drawn before the reasoning, so only the words may change.
    assert len(reasoning.pieces) == len(plain.pieces)
    assert reasoning.reasoning[0][0].isupper() and reasoning.reasoning[-1].endswith(".")
    assert reasoning.completion_tokens == len(plain.pieces) + REASONING_PIECES[effort]


def test_reasoning_counts_against_max_tokens() -> None:
    c = run(request(reasoning="low", max_tokens=6))
    assert len(c.reasoning) == 4
    assert len(c.pieces) == 2
    assert c.finish_reason == "length"
    assert c.completion_tokens == 6


def test_no_reasoning_when_not_asked() -> None:
    assert run(request(reasoning=None)).reasoning == []
    assert run(request(reasoning="none")).reasoning == []


# -- embeddings, images, rerank -------------------------------------------------------------


def test_embedding_is_unit_norm_and_deterministic() -> None:
    vector = embedding(0, "text-embedding-3-small", "hello world", 16)
    assert len(vector) == 16
    assert abs(sum(v * v for v in vector) ** 0.5 - 1.0) < 1e-4
    assert vector == embedding(0, "text-embedding-3-small", "hello world", 16)
    assert vector != embedding(0, "text-embedding-3-small", "hello there", 16)
    assert vector != embedding(1, "text-embedding-3-small", "hello world", 16)
    assert len(embedding(0, "m", "x", 256)) == 256


def test_embedding_base64_decodes_back() -> None:
    vector = embedding(3, "m", "some text", 24)
    raw = base64.b64decode(embedding_base64(vector))
    assert len(raw) == 24 * 4
    decoded = struct.unpack("<24f", raw)
    assert decoded == pytest.approx(vector, abs=1e-6)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == PNG_SIGNATURE
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("size", [1, 8, 32])
def test_png_image_is_a_valid_png(size: int) -> None:
    png = png_image(0, "a red square", size)
    chunks = _png_chunks(png)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (width, height) == (size, size)
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == size * (1 + 3 * size)
    rows = [raw[i * (1 + 3 * size) : (i + 1) * (1 + 3 * size)] for i in range(size)]
    assert all(row[0] == 0 for row in rows)  # filter type None on every scanline
    assert chunks[2][1] == b""


def test_png_colour_depends_on_prompt_and_seed() -> None:
    assert png_image(0, "cat") == png_image(0, "cat")
    pixel = {
        (seed, prompt): zlib.decompress(_png_chunks(png_image(seed, prompt))[1][1])[1:4]
        for seed in (0, 1)
        for prompt in ("cat", "dog", "bird")
    }
    assert len(set(pixel.values())) > 1


def test_rerank_scores_favour_overlapping_documents() -> None:
    query = "quota ledger exact"
    documents = [
        "bananas are a yellow fruit",
        "the quota ledger stays exact under load",
        "quota is counted per key",
        "completely unrelated text",
    ]
    scores = rerank_scores(0, "bge-reranker-v2-m3", query, documents)
    assert len(scores) == len(documents)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[1] > scores[2] > max(scores[0], scores[3])
    assert scores == rerank_scores(0, "bge-reranker-v2-m3", query, documents)
    exact = rerank_scores(0, "m", query, [query])[0]
    assert exact >= 0.9
