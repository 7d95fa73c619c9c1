"""Per-request faults and timing of the mock: directives, timing headers, scheduled faults, hang.

Timing assertions are lower bounds (sleeps only get longer on a busy machine) or compare two
moments of the same response, with wide margins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import ADMIN, bearer, claude, goog, sse_frames

from gateprobe.mock import MockServer

CHAT = "/v1/chat/completions"


def chat_body(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "fault injection"}], **extra}


def claude_body(model: str = "claude-sonnet-4-5", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "fault injection"}],
        **extra,
    }


def gemini_body() -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "fault injection"}]}]}


def gemini_path(model: str = "gemini-2.5-flash", stream: bool = False) -> str:
    action = "streamGenerateContent" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}"


def stream_raw(
    client: httpx.Client,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    params: dict[str, str] | None = None,
) -> tuple[httpx.Response, bytes]:
    with client.stream("POST", path, json=body, headers=headers, params=params) as response:
        raw = b"".join(response.iter_bytes())
    return response, raw


def openai_content_chunks(raw: bytes) -> list[str]:
    out = []
    for _, data in sse_frames(raw):
        if data == "[DONE]":
            continue
        chunk = json.loads(data)
        if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            out.append(chunk["choices"][0]["delta"]["content"])
    return out


def last_usage_record(client: httpx.Client) -> dict[str, Any]:
    records: list[dict[str, Any]] = client.get(
        "/_gateprobe/usage", params={"limit": 1}, headers=ADMIN
    ).json()["records"]
    return records[-1]


def ledger_view(client: httpx.Client) -> dict[str, Any]:
    state = client.get("/_gateprobe/state", headers=ADMIN).json()
    return {"accounts": state["accounts"], "totals": state["totals"], "keys": state["keys"]}


# -- upstream errors before the first byte --------------------------------------------------


def test_error_503_directive_on_each_protocol(client: httpx.Client) -> None:
    before = ledger_view(client)
    openai = client.post(CHAT, json=chat_body("gpt-4o-mini--error-503"), headers=bearer())
    assert openai.status_code == 503
    assert openai.json()["error"]["code"] == "upstream_error"
    anthropic = client.post(
        "/v1/messages", json=claude_body("claude-sonnet-4-5--error-503"), headers=claude()
    )
    assert anthropic.status_code == 503
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    gemini = client.post(
        gemini_path("gemini-2.5-flash--error-503"), json=gemini_body(), headers=goog()
    )
    assert gemini.status_code == 503
    assert gemini.json()["error"]["status"] == "UNAVAILABLE"
    stream = client.post(
        CHAT, json=chat_body("gpt-4o-mini--error-503", stream=True), headers=bearer()
    )
    assert stream.status_code == 503
    assert stream.headers["content-type"] == "application/json"
    # failed calls are rolled back: balances and key usage are unchanged
    after = ledger_view(client)
    assert after["accounts"] == before["accounts"]
    assert after["keys"] == before["keys"]
    assert after["totals"]["settled"] == before["totals"]["settled"]


def test_error_429_has_retry_after(client: httpx.Client) -> None:
    response = client.post(CHAT, json=chat_body("gpt-4o-mini--error-429"), headers=bearer())
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_unknown_directive_is_400_invalid_directive(client: httpx.Client) -> None:
    for model in ("gpt-4o-mini--explode-3", "gpt-4o-mini--error-abc", "gpt-4o-mini--error-200"):
        response = client.post(CHAT, json=chat_body(model), headers=bearer())
        assert response.status_code == 400, model
        assert response.json()["error"]["code"] == "invalid_directive"
    by_header = client.post(
        CHAT, json=chat_body(), headers={**bearer(), "x-gateprobe-directives": "sparkle"}
    )
    assert by_header.status_code == 400
    assert by_header.json()["error"]["code"] == "invalid_directive"
    bad_timing = client.post(
        CHAT, json=chat_body(), headers={**bearer(), "x-gateprobe-ttft-ms": "soon"}
    )
    assert bad_timing.status_code == 400
    assert bad_timing.json()["error"]["code"] == "invalid_directive"
    anthropic = client.post(
        "/v1/messages", json=claude_body("claude-sonnet-4-5--nope"), headers=claude()
    )
    assert anthropic.status_code == 400
    assert anthropic.json()["error"]["type"] == "invalid_request_error"


# -- mid-stream failures --------------------------------------------------------------------


def test_fail_after_3_openai_chat(client: httpx.Client) -> None:
    body = chat_body("gpt-4o-mini--fail-after-3--chunks-10", stream=True)
    response, raw = stream_raw(client, CHAT, body, bearer())
    assert response.status_code == 200
    assert b"[DONE]" not in raw
    payloads = [json.loads(data) for _, data in sse_frames(raw)]
    assert "error" in payloads[-1]
    assert payloads[-1]["error"]["message"]
    assert all("error" not in p for p in payloads[:-1])
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads[:-1])
    record = last_usage_record(client)
    assert record["model"] == "gpt-4o-mini--fail-after-3--chunks-10"
    assert record["cost"] == 0  # a failed upstream call is not charged
    assert record["status"] == 200
    state = client.get("/_gateprobe/state", headers=ADMIN).json()
    assert state["open_reservations"] == 0
    assert state["keys"]["valid"]["used"] == 0
    _, full = stream_raw(client, CHAT, chat_body("gpt-4o-mini--chunks-10", stream=True), bearer())
    assert openai_content_chunks(raw) == openai_content_chunks(full)[:3]


def test_fail_after_3_anthropic(client: httpx.Client) -> None:
    body = claude_body("claude-sonnet-4-5--fail-after-3--chunks-10", stream=True)
    _, raw = stream_raw(client, "/v1/messages", body, claude())
    frames = sse_frames(raw)
    names = [name for name, _ in frames]
    deltas = [json.loads(d) for n, d in frames if n == "content_block_delta"]
    assert [d["delta"]["type"] for d in deltas] == ["text_delta"] * 3
    assert names[-1] == "error"
    error = json.loads(frames[-1][1])
    assert error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    assert "message_stop" not in names
    assert "message_delta" not in names


def test_fail_after_3_responses(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini--fail-after-3--chunks-10", "input": "x", "stream": True}
    _, raw = stream_raw(client, "/v1/responses", body, bearer())
    events = [json.loads(data) for _, data in sse_frames(raw)]
    types = [e["type"] for e in events]
    assert types.count("response.output_text.delta") == 3
    assert types[-1] == "response.failed"
    assert "response.completed" not in types
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["id"] == events[0]["response"]["id"]  # the same response throughout
    assert failed["error"]["message"]
    sequence = [e["sequence_number"] for e in events]
    assert sequence == list(range(len(events)))


def test_fail_after_3_gemini_array(client: httpx.Client) -> None:
    path = gemini_path("gemini-2.5-flash--fail-after-3--chunks-10", stream=True)
    _, raw = stream_raw(client, path, gemini_body(), goog())
    elements = json.loads(raw)  # still one closed JSON array
    assert len(elements) == 4
    assert all("candidates" in e for e in elements[:3])
    assert elements[-1]["error"]["code"] == 502
    assert elements[-1]["error"]["status"] == "UNAVAILABLE"


def test_fail_after_3_gemini_sse(client: httpx.Client) -> None:
    path = gemini_path("gemini-2.5-flash--fail-after-3--chunks-10", stream=True)
    _, raw = stream_raw(client, path, gemini_body(), goog(), params={"alt": "sse"})
    events = [json.loads(data) for _, data in sse_frames(raw)]
    assert len(events) == 4
    assert all("candidates" in e for e in events[:3])
    assert "error" in events[-1]
    assert b"[DONE]" not in raw


def test_cut_after_3_ends_without_terminator(client: httpx.Client) -> None:
    _, raw = stream_raw(
        client, CHAT, chat_body("gpt-4o-mini--cut-after-3--chunks-10", stream=True), bearer()
    )
    assert len(openai_content_chunks(raw)) == 3
    assert b"[DONE]" not in raw
    assert b'"error"' not in raw
    assert b'"finish_reason":"' not in raw

    _, raw = stream_raw(
        client,
        "/v1/messages",
        claude_body("claude-sonnet-4-5--cut-after-3--chunks-10", stream=True),
        claude(),
    )
    names = [name for name, _ in sse_frames(raw)]
    assert names.count("content_block_delta") == 3
    assert not {"message_stop", "message_delta", "error"} & set(names)

    body = {"model": "gpt-4o-mini--cut-after-3--chunks-10", "input": "x", "stream": True}
    _, raw = stream_raw(client, "/v1/responses", body, bearer())
    types = [json.loads(data)["type"] for _, data in sse_frames(raw)]
    assert types.count("response.output_text.delta") == 3
    assert not {"response.completed", "response.failed", "response.incomplete"} & set(types)

    path = gemini_path("gemini-2.5-flash--cut-after-3--chunks-10", stream=True)
    _, raw = stream_raw(client, path, gemini_body(), goog())
    assert raw.startswith(b"[")
    assert not raw.endswith(b"]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert len(json.loads(raw + b"]")) == 3


def test_chunks_32_on_each_protocol(client: httpx.Client) -> None:
    _, raw = stream_raw(client, CHAT, chat_body("gpt-4o-mini--chunks-32", stream=True), bearer())
    assert len(openai_content_chunks(raw)) == 32
    plain = client.post(CHAT, json=chat_body("gpt-4o-mini--chunks-32"), headers=bearer()).json()
    assert plain["usage"]["completion_tokens"] == 32
    _, raw = stream_raw(
        client, "/v1/messages", claude_body("claude-sonnet-4-5--chunks-32", stream=True), claude()
    )
    assert [name for name, _ in sse_frames(raw)].count("content_block_delta") == 32
    path = gemini_path("gemini-2.5-flash--chunks-32", stream=True)
    _, raw = stream_raw(client, path, gemini_body(), goog())
    elements = json.loads(raw)
    assert len(elements) == 32
    assert elements[-1]["usageMetadata"]["candidatesTokenCount"] == 32


def test_directives_do_not_change_the_text(client: httpx.Client) -> None:
    plain = client.post(CHAT, json=chat_body(), headers=bearer()).json()
    slowed = client.post(CHAT, json=chat_body("gpt-4o-mini--itl-1"), headers=bearer()).json()
    assert slowed["choices"][0]["message"] == plain["choices"][0]["message"]
    assert slowed["model"] == "gpt-4o-mini--itl-1"  # the name is echoed as sent


# -- timing ---------------------------------------------------------------------------------


def timed_content(
    client: httpx.Client, body: dict[str, Any], headers: dict[str, str]
) -> tuple[float, list[float], float]:
    """Seconds from the request to the headers, to each content chunk, and to the end."""
    started = time.perf_counter()
    stamps: list[float] = []
    with client.stream("POST", CHAT, json=body, headers=headers) as response:
        assert response.status_code == 200
        headers_at = time.perf_counter() - started
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[len("data: ") :])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter() - started)
    return headers_at, stamps, time.perf_counter() - started


def test_ttft_directive_delays_first_content_not_headers(client: httpx.Client) -> None:
    body = chat_body("gpt-4o-mini--ttft-200--chunks-4", stream=True)
    headers_at, stamps, _ = timed_content(client, body, bearer())
    assert len(stamps) == 4
    assert stamps[0] >= 0.19
    assert stamps[0] - headers_at >= 0.1  # the headers came well before the first content


def test_ttft_header(client: httpx.Client) -> None:
    headers = {**bearer(), "x-gateprobe-ttft-ms": "200"}
    headers_at, stamps, _ = timed_content(client, chat_body(stream=True), headers)
    assert stamps[0] >= 0.19
    assert stamps[0] - headers_at >= 0.1
    started = time.perf_counter()
    plain = client.post(CHAT, json=chat_body(), headers=headers)
    assert plain.status_code == 200
    assert time.perf_counter() - started >= 0.19  # non-stream answers wait for the whole output


def test_itl_directive_spreads_chunks(client: httpx.Client) -> None:
    body = chat_body("gpt-4o-mini--itl-20--chunks-12", stream=True)
    _, stamps, ended = timed_content(client, body, bearer())
    assert len(stamps) == 12
    assert ended >= 11 * 0.02 * 0.9
    assert stamps[-1] - stamps[0] >= 0.1


def test_itl_header_and_directives_header(client: httpx.Client) -> None:
    headers = {**bearer(), "x-gateprobe-itl-ms": "40", "x-gateprobe-directives": "chunks-6"}
    _, stamps, ended = timed_content(client, chat_body(stream=True), headers)
    assert len(stamps) == 6
    assert ended >= 5 * 0.04 * 0.9
    failing = client.post(
        CHAT, json=chat_body(), headers={**bearer(), "x-gateprobe-directives": "error-502"}
    )
    assert failing.status_code == 502
    combined = {**bearer(), "x-gateprobe-directives": "chunks-5, cut-after-2"}
    _, raw = stream_raw(client, CHAT, chat_body(stream=True), combined)
    assert len(openai_content_chunks(raw)) == 2
    assert b"[DONE]" not in raw


def test_hang_until_client_gives_up_is_logged_499(client: httpx.Client) -> None:
    timeout = httpx.Timeout(10.0, read=0.5)
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        client.post(CHAT, json=chat_body("gpt-4o-mini--hang"), headers=bearer(), timeout=timeout)
    assert time.perf_counter() - started < 5.0
    record: dict[str, Any] | None = None
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        records = client.get("/_gateprobe/usage", headers=ADMIN).json()["records"]
        matches = [r for r in records if r.get("model") == "gpt-4o-mini--hang"]
        if matches:
            record = matches[-1]
            break
        time.sleep(0.05)
    assert record is not None, "the mock did not notice the client disconnect"
    assert record["status"] == 499
    assert record["cost"] == 0
    assert record["end"] == "client gone"
    state = client.get("/_gateprobe/state", headers=ADMIN).json()
    assert state["open_reservations"] == 0


def test_hang_via_header_on_anthropic(client: httpx.Client) -> None:
    timeout = httpx.Timeout(10.0, read=0.5)
    headers = {**claude(), "x-gateprobe-directives": "hang"}
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/messages", json=claude_body(), headers=headers, timeout=timeout)
    deadline = time.monotonic() + 5.0
    statuses: list[int] = []
    while time.monotonic() < deadline and 499 not in statuses:
        records = client.get("/_gateprobe/usage", headers=ADMIN).json()["records"]
        statuses = [r["status"] for r in records if r["path"] == "/v1/messages"]
        time.sleep(0.05)
    assert statuses == [499]


# -- scheduled faults -----------------------------------------------------------------------


def test_scheduled_faults_honour_count(client: httpx.Client) -> None:
    scheduled = client.post(
        "/_gateprobe/faults",
        json={"directives": "error-503", "count": 2, "model": "gpt-4o-mini"},
        headers=ADMIN,
    )
    assert scheduled.status_code == 200
    assert scheduled.json()["scheduled"] == 2
    # another model is not affected and does not use up the fault
    other = client.post(CHAT, json=chat_body("o3-mini"), headers=bearer())
    assert other.status_code == 200
    statuses = [client.post(CHAT, json=chat_body(), headers=bearer()).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]


def test_scheduled_fault_mid_stream_and_validation(client: httpx.Client) -> None:
    client.post(
        "/_gateprobe/faults",
        json={"directives": "fail-after-2", "path": "/v1/messages"},
        headers=ADMIN,
    ).raise_for_status()
    ok_chat = client.post(CHAT, json=chat_body(), headers=bearer())
    assert ok_chat.status_code == 200  # a different path
    _, raw = stream_raw(client, "/v1/messages", claude_body(stream=True), claude())
    names = [name for name, _ in sse_frames(raw)]
    assert names.count("content_block_delta") == 2
    assert names[-1] == "error"
    _, raw = stream_raw(client, "/v1/messages", claude_body(stream=True), claude())
    assert [name for name, _ in sse_frames(raw)][-1] == "message_stop"
    bad = client.post("/_gateprobe/faults", json={"directives": "wobble"}, headers=ADMIN)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_directive"
    unauthorized = client.post("/_gateprobe/faults", json={"directives": "error-500"})
    assert unauthorized.status_code == 401


# -- upstream mode --------------------------------------------------------------------------


def test_upstream_mode_accepts_any_key_and_serves_its_catalog(
    mock_factory: Callable[..., MockServer],
) -> None:
    server = mock_factory(mode="upstream")
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        before = ledger_view(c)
        no_key = c.post(CHAT, json=chat_body("o3-mini"))
        assert no_key.status_code == 200
        assert no_key.json()["model"] == "o3-mini"
        any_key = c.post(CHAT, json=chat_body(), headers={"Authorization": "Bearer sk-whatever"})
        assert any_key.status_code == 200
        # a chat model of the catalog on every protocol's route (test_upstream_mode.py)
        anthropic = c.post(
            "/v1/messages",
            json=claude_body("gemini-2.5-flash"),
            headers={"x-api-key": "junk", "anthropic-version": "2023-06-01"},
        )
        assert anthropic.status_code == 200
        assert anthropic.json()["model"] == "gemini-2.5-flash"
        gemini = c.post(gemini_path("claude-sonnet-4-5", stream=True), json=gemini_body())
        assert gemini.status_code == 200
        assert json.loads(gemini.content)[-1]["candidates"][0]["finishReason"] == "STOP"
        model = c.get("/v1/models/o3-mini")
        assert model.status_code == 200
        # directives still work in upstream mode
        failing = c.post(CHAT, json=chat_body("gpt-4o-mini--error-500"))
        assert failing.status_code == 500
        # a name outside the catalog is refused as a provider refuses it
        unknown = c.post(CHAT, json=chat_body("some-unknown-model"))
        assert unknown.status_code == 404
        after = ledger_view(c)
        assert after == before  # no quota charged anywhere
        records = c.get("/_gateprobe/usage", headers=ADMIN).json()["records"]
        calls = [r for r in records if r["path"] != "/v1/models/o3-mini"]
        assert len(calls) == 6
        assert all(r["key"] is None for r in calls)
        assert [r["status"] for r in calls] == [200, 200, 200, 200, 500, 404]
        state = c.get("/_gateprobe/state", headers=ADMIN).json()
        assert state["open_reservations"] == 0
