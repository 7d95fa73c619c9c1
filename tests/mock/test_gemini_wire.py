"""Raw-HTTP wire tests of the mock's Gemini routes and of its path styles (httpx, no SDK)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from support import SECRETS, claude, goog

from gateprobe.mock import MockServer

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"


def gemini_body(text: str = "hello there gemini", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def stream_raw(
    client: httpx.Client,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[httpx.Response, bytes]:
    with client.stream(
        "POST", path, json=body, headers=headers or goog(), params=params
    ) as response:
        raw = b"".join(response.iter_bytes())
    return response, raw


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """Events of a CRLF-framed ``alt=sse`` stream; asserts every frame is one data: line."""
    assert raw.endswith(b"\r\n\r\n")
    events = []
    for block in raw.split(b"\r\n\r\n")[:-1]:
        assert block.startswith(b"data: ")
        assert b"\n" not in block
        events.append(json.loads(block[len(b"data: ") :]))
    return events


def text_of(elements: list[dict[str, Any]], *, thoughts: bool = False) -> str:
    return "".join(
        part.get("text", "")
        for element in elements
        for part in element["candidates"][0]["content"]["parts"]
        if bool(part.get("thought")) == thoughts
    )


def test_generate_content_shape(client: httpx.Client) -> None:
    response = client.post(GENERATE, json=gemini_body(), headers=goog())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    (candidate,) = data["candidates"]
    assert candidate["index"] == 0
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    (part,) = candidate["content"]["parts"]
    assert isinstance(part["text"], str) and part["text"]
    usage = data["usageMetadata"]
    assert usage["promptTokenCount"] == 3 + 3
    assert usage["candidatesTokenCount"] >= 1
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert data["modelVersion"] == MODEL
    assert data["responseId"]
    assert "choices" not in data


def test_generate_content_is_deterministic(client: httpx.Client) -> None:
    first = client.post(GENERATE, json=gemini_body("same again"), headers=goog()).json()
    second = client.post(GENERATE, json=gemini_body("same again"), headers=goog()).json()
    assert first == second


def test_stream_without_alt_is_one_json_array(client: httpx.Client) -> None:
    body = gemini_body("array please")
    response, raw = stream_raw(client, STREAM, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "content-length" not in response.headers
    elements = json.loads(raw)
    assert isinstance(elements, list)
    assert len(elements) >= 2
    assert raw.startswith(b"[") and raw.endswith(b"]")
    assert b"data:" not in raw
    assert all(len(e["candidates"]) == 1 for e in elements)
    finishes = [e["candidates"][0].get("finishReason") for e in elements]
    assert finishes[-1] == "STOP"
    assert all(f is None for f in finishes[:-1])
    plain = client.post(GENERATE, json=body, headers=goog()).json()
    assert text_of(elements) == plain["candidates"][0]["content"]["parts"][0]["text"]
    assert elements[-1]["usageMetadata"] == plain["usageMetadata"]


def test_stream_without_alt_arrives_incrementally(client: httpx.Client) -> None:
    path = f"/v1beta/models/{MODEL}--chunks-8:streamGenerateContent"
    headers = {**goog(), "x-gateprobe-itl-ms": "60"}
    decoder = json.JSONDecoder()
    buffer = b""
    first_element_at: float | None = None
    started = time.perf_counter()
    with client.stream("POST", path, json=gemini_body("slowly"), headers=headers) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            buffer += chunk
            if first_element_at is None:
                try:
                    decoder.raw_decode(buffer.decode(), 1)
                except ValueError:
                    continue
                first_element_at = time.perf_counter() - started
    ended = time.perf_counter() - started
    assert first_element_at is not None
    elements = json.loads(buffer)
    assert len(elements) == 8
    # 7 gaps of 60 ms: the first element must be readable long before the array closes
    assert ended - first_element_at >= 0.2, (first_element_at, ended)


def test_stream_alt_sse_framing_and_usage(client: httpx.Client) -> None:
    body = gemini_body("server sent events")
    response, raw = stream_raw(client, STREAM, body, params={"alt": "sse"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert b"[DONE]" not in raw
    assert b"\n\n" not in raw  # every separator is CRLF CRLF
    assert b"event:" not in raw
    events = sse_events(raw)
    assert len(events) >= 2
    candidates = [e["usageMetadata"]["candidatesTokenCount"] for e in events]
    totals = [e["usageMetadata"]["totalTokenCount"] for e in events]
    assert candidates == sorted(candidates)
    assert totals == sorted(totals)
    assert len({e["usageMetadata"]["promptTokenCount"] for e in events}) == 1
    plain = client.post(GENERATE, json=body, headers=goog()).json()
    assert events[-1]["usageMetadata"] == plain["usageMetadata"]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert text_of(events) == plain["candidates"][0]["content"]["parts"][0]["text"]


def test_stream_with_thoughts_usage(client: httpx.Client) -> None:
    body = gemini_body(
        "think about it", generationConfig={"thinkingConfig": {"includeThoughts": True}}
    )
    _, raw = stream_raw(client, STREAM, body, params={"alt": "sse"})
    events = sse_events(raw)
    plain = client.post(GENERATE, json=body, headers=goog()).json()
    parts = plain["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True
    usage = plain["usageMetadata"]
    assert usage["thoughtsTokenCount"] >= 1
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    assert text_of(events, thoughts=True) == parts[0]["text"]
    assert text_of(events) == parts[1]["text"]
    totals = [e["usageMetadata"]["totalTokenCount"] for e in events]
    assert totals == sorted(totals)
    assert events[-1]["usageMetadata"] == usage


def test_stream_function_call(client: httpx.Client) -> None:
    tool = {
        "name": "set_alarm",
        "parameters": {
            "type": "object",
            "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23}},
        },
    }
    body = gemini_body("wake me up", tools=[{"functionDeclarations": [tool]}])
    plain = client.post(GENERATE, json=body, headers=goog()).json()
    (part,) = plain["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["name"] == "set_alarm"
    assert 0 <= part["functionCall"]["args"]["hour"] <= 23
    _, raw = stream_raw(client, STREAM, body, params={"alt": "sse"})
    events = sse_events(raw)
    calls = [
        p["functionCall"]
        for e in events
        for p in e["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls == [part["functionCall"]]
    assert events[-1]["usageMetadata"] == plain["usageMetadata"]


def test_key_in_query_and_header_both_accepted(client: httpx.Client) -> None:
    secret = SECRETS["valid"]
    by_header = client.post(GENERATE, json=gemini_body(), headers={"x-goog-api-key": secret})
    by_query = client.post(GENERATE, json=gemini_body(), params={"key": secret})
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json() == by_query.json()
    bad = client.post(GENERATE, json=gemini_body(), params={"key": "not-a-key"})
    assert bad.status_code == 401
    error = bad.json()["error"]
    assert error["code"] == 401
    assert error["status"] == "UNAUTHENTICATED"
    missing = client.post(GENERATE, json=gemini_body())
    assert missing.status_code == 401


def test_models_list_shape(client: httpx.Client) -> None:
    response = client.get("/v1beta/models", headers=goog())
    assert response.status_code == 200
    data = response.json()
    names = [m["name"] for m in data["models"]]
    assert f"models/{MODEL}" in names
    assert all(name.startswith("models/") for name in names)
    assert "models/o3-mini" not in names  # an OpenAI-only model
    for model in data["models"]:
        assert model["displayName"]
        assert isinstance(model["supportedGenerationMethods"], list)
    flash = next(m for m in data["models"] if m["name"] == f"models/{MODEL}")
    assert "generateContent" in flash["supportedGenerationMethods"]
    one = client.get(f"/v1beta/models/{MODEL}", params={"key": SECRETS["valid"]})
    assert one.status_code == 200
    assert one.json()["name"] == f"models/{MODEL}"
    unknown = client.get("/v1beta/models/no-such-model", headers=goog())
    assert unknown.status_code == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"


def _route_statuses(url: str) -> dict[str, int]:
    claude_body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.Client(base_url=url, timeout=10.0) as c:
        return {
            "/v1/messages": c.post("/v1/messages", json=claude_body, headers=claude()).status_code,
            "/claude/v1/messages": c.post(
                "/claude/v1/messages", json=claude_body, headers=claude()
            ).status_code,
            "/v1beta": c.post(GENERATE, json=gemini_body(), headers=goog()).status_code,
            "/gemini/v1beta": c.post(
                "/gemini" + GENERATE, json=gemini_body(), headers=goog()
            ).status_code,
        }


def test_path_style_prefixed(mock_factory: Callable[..., MockServer]) -> None:
    server = mock_factory(path_style="prefixed")
    assert _route_statuses(server.url) == {
        "/v1/messages": 404,
        "/claude/v1/messages": 200,
        "/v1beta": 404,
        "/gemini/v1beta": 200,
    }
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        stream = c.post(
            f"/gemini/v1beta/models/{MODEL}:streamGenerateContent",
            params={"alt": "sse"},
            json=gemini_body(),
            headers=goog(),
        )
        assert stream.status_code == 200
        assert sse_events(stream.content)
        listing = c.get("/gemini/v1beta/models", headers=goog())
        assert listing.status_code == 200
        assert f"models/{MODEL}" in [m["name"] for m in listing.json()["models"]]
        missing = c.post("/v1/messages", json={}, headers=claude())
        assert missing.json()["type"] == "error"  # still the Anthropic envelope
        # OpenAI routes are not moved
        assert c.get(
            "/v1/models", headers={"Authorization": "Bearer " + SECRETS["valid"]}
        ).is_success


def test_path_style_standard_and_both(mock_factory: Callable[..., MockServer]) -> None:
    standard = mock_factory()
    assert _route_statuses(standard.url) == {
        "/v1/messages": 200,
        "/claude/v1/messages": 404,
        "/v1beta": 200,
        "/gemini/v1beta": 404,
    }
    both = mock_factory(path_style="both")
    assert set(_route_statuses(both.url).values()) == {200}
