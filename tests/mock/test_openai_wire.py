"""Raw-HTTP wire tests of the mock's OpenAI-compatible routes (httpx only, no SDK).

Framing is checked on the bytes the mock writes: ``client.stream`` + ``iter_bytes``.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
from collections.abc import Callable
from typing import Any

import httpx
from support import bearer, sse_frames

from gateprobe.mock import MockServer

CHAT = "/v1/chat/completions"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def chat_body(text: str = "hello there world", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def stream_raw(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, bytes]:
    with client.stream("POST", path, json=body, headers=headers or bearer()) as response:
        raw = b"".join(response.iter_bytes())
    return response, raw


def chat_chunks(raw: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON chunks of a chat stream and the list of every data payload (for [DONE])."""
    payloads = [data for _, data in sse_frames(raw)]
    chunks = [json.loads(p) for p in payloads if p != "[DONE]"]
    return chunks, payloads


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


# -- chat completions: streaming -----------------------------------------------------------


def test_chat_stream_headers_and_framing(client: httpx.Client) -> None:
    response, raw = stream_raw(client, CHAT, chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in response.headers
    assert response.headers["cache-control"] == "no-cache"
    assert raw.endswith(b"data: [DONE]\n\n")
    frames = sse_frames(raw)
    assert all(event is None for event, _ in frames)  # chat streams use bare data: frames
    chunks, payloads = chat_chunks(raw)
    assert payloads.count("[DONE]") == 1
    assert payloads[-1] == "[DONE]"
    assert len(chunks) == len(payloads) - 1 >= 3
    for key in ("id", "created", "model", "object"):
        assert len({json.dumps(c[key]) for c in chunks}) == 1, key
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["model"] == "gpt-4o-mini"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert [f for f in finishes if f is not None] == ["stop"]
    assert finishes[-1] == "stop"
    # without stream_options there is no usage field at all
    assert all("usage" not in c for c in chunks)
    assert content_of(chunks)


def test_chat_stream_include_usage_chunk(client: httpx.Client) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    _, raw = stream_raw(client, CHAT, body)
    chunks, payloads = chat_chunks(raw)
    assert payloads[-1] == "[DONE]"
    assert all("usage" in c for c in chunks)
    with_usage = [i for i, c in enumerate(chunks) if c["usage"] is not None]
    assert with_usage == [len(chunks) - 1]  # exactly one, right before [DONE]
    last = chunks[-1]
    assert last["choices"] == []
    content_chunks = [c for c in chunks[:-1] if c["choices"][0]["delta"].get("content")]
    usage = last["usage"]
    assert usage["completion_tokens"] == len(content_chunks)
    assert usage["prompt_tokens"] == 3 + 3  # three words, one message
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    plain = client.post(CHAT, json=chat_body(), headers=bearer()).json()
    assert plain["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert plain["usage"]["prompt_tokens"] == usage["prompt_tokens"]


def test_chat_stream_include_usage_false_has_no_usage(client: httpx.Client) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": False})
    _, raw = stream_raw(client, CHAT, body)
    chunks, _ = chat_chunks(raw)
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_chat_stream_content_equals_non_stream(client: httpx.Client) -> None:
    body = chat_body("determinism check across modes")
    plain = client.post(CHAT, json=body, headers=bearer()).json()
    _, raw = stream_raw(client, CHAT, {**body, "stream": True})
    chunks, _ = chat_chunks(raw)
    assert content_of(chunks) == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert chunks[0]["id"] == plain["id"]


def test_chat_same_request_twice_is_identical(client: httpx.Client) -> None:
    body = chat_body("repeat me exactly")
    first = client.post(CHAT, json=body, headers=bearer()).json()
    second = client.post(CHAT, json=body, headers=bearer()).json()
    for key in ("id", "model", "choices", "usage"):
        assert first[key] == second[key]
    _, raw1 = stream_raw(client, CHAT, {**body, "stream": True})
    _, raw2 = stream_raw(client, CHAT, {**body, "stream": True})
    chunks1, _ = chat_chunks(raw1)
    chunks2, _ = chat_chunks(raw2)
    assert [c["choices"] for c in chunks1] == [c["choices"] for c in chunks2]
    # a different prompt gives a different answer
    other = client.post(CHAT, json=chat_body("something else entirely"), headers=bearer()).json()
    assert other["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]


def test_chat_different_seed_changes_output(
    mock_factory: Callable[..., MockServer], client: httpx.Client
) -> None:
    reseeded = mock_factory(seed=1)
    body = chat_body("same words different seed")
    base = client.post(CHAT, json=body, headers=bearer()).json()
    with httpx.Client(base_url=reseeded.url, timeout=10.0) as other:
        changed = other.post(CHAT, json=body, headers=bearer()).json()
        again = other.post(CHAT, json=body, headers=bearer()).json()
    assert changed["choices"][0]["message"]["content"] != base["choices"][0]["message"]["content"]
    assert changed["id"] != base["id"]
    assert again["choices"] == changed["choices"]


def test_chat_stream_tool_call_deltas_reassemble(client: httpx.Client) -> None:
    body = chat_body("what is the weather in Paris", tools=[WEATHER_TOOL])
    plain = client.post(CHAT, json=body, headers=bearer()).json()
    message = plain["choices"][0]["message"]
    assert plain["choices"][0]["finish_reason"] == "tool_calls"
    assert len(message["tool_calls"]) == 1
    call = message["tool_calls"][0]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    assert isinstance(args["city"], str)
    assert 1 <= args["days"] <= 7
    assert args["unit"] == "celsius"

    _, raw = stream_raw(client, CHAT, {**body, "stream": True})
    chunks, payloads = chat_chunks(raw)
    assert payloads[-1] == "[DONE]"
    deltas = [tc for c in chunks for tc in (c["choices"][0]["delta"].get("tool_calls") or [])]
    assert len(deltas) >= 2
    assert {d["index"] for d in deltas} == {0}
    ids = [d["id"] for d in deltas if "id" in d]
    assert ids == [call["id"]]  # one stable id, sent once on the opening delta
    assert deltas[0]["function"]["name"] == "get_weather"
    joined = "".join(d["function"].get("arguments", "") for d in deltas)
    assert json.loads(joined) == args
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert [f for f in finishes if f] == ["tool_calls"]


# -- chat completions: non-stream ----------------------------------------------------------


def test_chat_non_stream_shape(client: httpx.Client) -> None:
    response = client.post(CHAT, json=chat_body(), headers=bearer())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"]
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-4o-mini"
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    usage = data["usage"]
    assert usage["prompt_tokens"] == 6
    assert usage["completion_tokens"] >= 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_max_tokens_truncates_with_length(client: httpx.Client) -> None:
    data = client.post(CHAT, json=chat_body(max_tokens=2), headers=bearer()).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 2


# -- responses -----------------------------------------------------------------------------


def test_responses_non_stream_shape(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini", "input": "tell me about gateways"}
    response = client.post("/v1/responses", json=body, headers=bearer())
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "response"
    assert data["id"].startswith("resp_")
    assert data["status"] == "completed"
    assert data["model"] == "gpt-4o-mini"
    messages = [item for item in data["output"] if item["type"] == "message"]
    assert len(messages) == 1
    assert messages[0]["role"] == "assistant"
    text = messages[0]["content"][0]
    assert text["type"] == "output_text" and text["text"]
    usage = data["usage"]
    assert usage["input_tokens"] == 4 + 3
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_responses_stream_events(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini", "input": "stream me some events", "stream": True}
    response, raw = stream_raw(client, "/v1/responses", body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in raw
    frames = sse_frames(raw)
    events = [json.loads(data) for _, data in frames]
    for (name, _), event in zip(frames, events, strict=True):
        assert name == event["type"]
    sequence = [e["sequence_number"] for e in events]
    assert sequence[0] == 0
    assert all(b > a for a, b in itertools.pairwise(sequence))
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types.count("response.completed") == 1
    assert types[-1] == "response.completed"
    assert not {"response.failed", "response.incomplete", "error"} & set(types)
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"]
    assert final["usage"]["output_tokens"] >= 1
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == final["output"][-1]["content"][0]["text"]
    assert final["usage"]["output_tokens"] == types.count("response.output_text.delta")
    plain = client.post("/v1/responses", json={**body, "stream": False}, headers=bearer()).json()
    assert plain["output"] == final["output"]
    assert plain["usage"] == final["usage"]


def test_responses_stream_incomplete_on_small_max_output_tokens(client: httpx.Client) -> None:
    body = {
        "model": "gpt-4o-mini",
        "input": "a long answer please",
        "stream": True,
        "max_output_tokens": 2,
    }
    _, raw = stream_raw(client, "/v1/responses", body)
    events = [json.loads(data) for _, data in sse_frames(raw)]
    types = [e["type"] for e in events]
    assert types[-1] == "response.incomplete"
    assert "response.completed" not in types
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["usage"]["output_tokens"] == 2


def test_responses_compact_shape(client: httpx.Client) -> None:
    body = {
        "model": "gpt-4o-mini",
        "input": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "input_text", "text": "second question"}]},
        ],
    }
    response = client.post("/v1/responses/compact", json=body, headers=bearer())
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "response.compaction"
    assert data["id"]
    output = data["output"]
    assert [item["type"] for item in output] == ["message", "message", "compaction"]
    assert all(item["role"] == "user" for item in output[:2])
    assert output[0]["content"] == [{"type": "input_text", "text": "first question"}]
    assert output[1]["content"] == [{"type": "input_text", "text": "second question"}]
    assert isinstance(output[2]["encrypted_content"], str) and output[2]["encrypted_content"]
    assert data["usage"]["input_tokens"] == 6 + 3 * 3
    assert data["usage"]["output_tokens"] == 0


# -- embeddings, images, rerank ------------------------------------------------------------


def test_embeddings_float_and_base64_agree(client: httpx.Client) -> None:
    body = {"model": "text-embedding-3-small", "input": ["alpha beta", "gamma"]}
    floats = client.post("/v1/embeddings", json=body, headers=bearer()).json()
    encoded = client.post(
        "/v1/embeddings", json={**body, "encoding_format": "base64"}, headers=bearer()
    ).json()
    assert floats["object"] == "list"
    assert floats["model"] == "text-embedding-3-small"
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in floats["data"])
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    for plain, packed in zip(floats["data"], encoded["data"], strict=True):
        vector = plain["embedding"]
        assert len(vector) == 16  # the configured default dimension
        raw = base64.b64decode(packed["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert len(decoded) == len(vector)
        assert all(abs(a - b) < 1e-6 for a, b in zip(decoded, vector, strict=True))
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-3
    assert floats["data"][0]["embedding"] != floats["data"][1]["embedding"]


def test_embeddings_dimensions(client: httpx.Client) -> None:
    body = {"model": "text-embedding-3-small", "input": "alpha", "dimensions": 8}
    data = client.post("/v1/embeddings", json=body, headers=bearer()).json()
    assert len(data["data"]) == 1
    assert len(data["data"][0]["embedding"]) == 8


def test_images_b64_and_url(client: httpx.Client) -> None:
    body = {"model": "gpt-image-1", "prompt": "a red square"}
    b64 = client.post("/v1/images/generations", json=body, headers=bearer()).json()
    assert isinstance(b64["created"], int)
    (item,) = b64["data"]
    png = base64.b64decode(item["b64_json"])
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    url = client.post(
        "/v1/images/generations", json={**body, "response_format": "url"}, headers=bearer()
    ).json()
    (linked,) = url["data"]
    assert "b64_json" not in linked
    assert linked["url"].startswith(str(client.base_url).rstrip("/"))
    served = client.get(linked["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == png  # the same prompt and index give the same image
    two = client.post("/v1/images/generations", json={**body, "n": 2}, headers=bearer()).json()
    assert len(two["data"]) == 2


def test_rerank_sorted_top_n_and_documents(client: httpx.Client) -> None:
    docs = [
        "bananas are yellow fruit",
        "the gateway ledger settles quota",
        "quota ledger",
        "weather is sunny today",
    ]
    body = {"model": "bge-reranker-v2-m3", "query": "quota ledger", "documents": docs}
    data = client.post("/v1/rerank", json=body, headers=bearer()).json()
    results = data["results"]
    assert len(results) == len(docs)
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert results[0]["index"] == 2  # the exact match ranks first
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert all(r["document"] == {"text": docs[r["index"]]} for r in results)
    top = client.post(
        "/v1/rerank", json={**body, "top_n": 2, "return_documents": False}, headers=bearer()
    ).json()
    assert [r["index"] for r in top["results"]] == [r["index"] for r in results[:2]]
    assert all("document" not in r for r in top["results"])


# -- models --------------------------------------------------------------------------------


def test_models_list_and_retrieve(client: httpx.Client) -> None:
    listing = client.get("/v1/models", headers=bearer())
    assert listing.status_code == 200
    data = listing.json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    assert "gpt-4o-mini" in ids
    assert "text-embedding-3-small" in ids
    assert "gpt-4o-pro" not in ids  # a pro-variant model, hidden from a default key
    assert all(m["object"] == "model" and m["owned_by"] for m in data["data"])
    one = client.get("/v1/models/gpt-4o-mini", headers=bearer())
    assert one.status_code == 200
    assert one.json()["id"] == "gpt-4o-mini"
    assert one.json()["object"] == "model"
    missing = client.get("/v1/models/no-such-model", headers=bearer())
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "model_not_found"
    assert "request id:" in error["message"]
    assert client.get("/v1/models").status_code == 401
