"""Each defect switch makes its bug observable on the wire (and the clean mock does not show it).

Each test starts the mock with its defect, checks the broken behaviour, then resets the same
mock to no defect (``healed``) and checks the clean behaviour. Every test is registered with
``@covers(<defect>)``; ``test_every_defect_has_a_test`` fails when a defect is added to
DEFECTS without a test here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from support import ADMIN, SECRETS, bearer, claude, goog

from gateprobe.mock import DEFECTS, MockServer
from gateprobe.mock.defects import PHANTOM_MODEL

F = TypeVar("F", bound=Callable[..., Any])
COVERED: set[str] = set()

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
GEMINI_SSE = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
UNKNOWN_SECRET = "sk-gp-unknown-abcdef0123456789"
OPENAI_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "tell me about defects"}],
    "max_tokens": 16,
}
CLAUDE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "tell me about defects"}],
}
GEMINI_BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "defects"}]}]}


def covers(name: str) -> Callable[[F], F]:
    assert name in DEFECTS, name

    def register(fn: F) -> F:
        COVERED.add(name)
        return fn

    return register


@contextmanager
def started(factory: Callable[..., MockServer], *defects: str) -> Iterator[httpx.Client]:
    server = factory(defects=frozenset(defects))
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def healed(client: httpx.Client) -> httpx.Client:
    """The same mock, reset to a fresh state with no defect: the clean comparison."""
    response = client.post("/_gateprobe/reset", json={"defects": []}, headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["defects"] == []
    return client


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    return [line[len("data:") :].strip() for line in text.splitlines() if line.startswith("data:")]


def anthropic_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(d) for d in sse_data(text)]


def balance(client: httpx.Client, account: str = "main") -> int:
    value: int = client.get("/_gateprobe/state", headers=ADMIN).json()["accounts"][account]
    return value


def ledger(client: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get("/_gateprobe/ledger", headers=ADMIN).json()[
        "entries"
    ]
    return entries


def test_every_defect_has_a_test() -> None:
    assert set(DEFECTS) == COVERED, f"defects without a test: {sorted(set(DEFECTS) - COVERED)}"


# -- streams -------------------------------------------------------------------------------


@covers("missing-done")
def test_missing_done(mock_factory: Callable[..., MockServer]) -> None:
    body = OPENAI_BODY | {"stream": True}
    with started(mock_factory, "missing-done") as broken:
        response = broken.post(CHAT, json=body, headers=bearer())
        assert response.status_code == 200
        data = sse_data(response.text)
        assert "[DONE]" not in data
        last = json.loads(data[-1])
        assert last["choices"][0]["finish_reason"] in ("stop", "length")
        clean = healed(broken)
        data = sse_data(clean.post(CHAT, json=body, headers=bearer()).text)
        assert data[-1] == "[DONE]"
        assert data.count("[DONE]") == 1


def _arrivals(client: httpx.Client) -> list[float]:
    """Seconds from the request to each body read of a paced stream."""
    headers = {**bearer(), "x-gateprobe-itl-ms": "40", "x-gateprobe-directives": "chunks-10"}
    started_at = time.perf_counter()
    times: list[float] = []
    with client.stream("POST", CHAT, json=OPENAI_BODY | {"stream": True}, headers=headers) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            if chunk:
                times.append(time.perf_counter() - started_at)
    return times


@covers("buffered-stream")
def test_buffered_stream(mock_factory: Callable[..., MockServer]) -> None:
    # 10 chunks 40 ms apart: at least 360 ms between the first and the last content chunk.
    with started(mock_factory, "buffered-stream") as broken:
        times = _arrivals(broken)
        assert times[0] >= 0.3  # nothing at all until the whole answer was generated
        clean = healed(broken)
        times = _arrivals(clean)
        assert len(times) >= 3
        assert times[-1] - times[0] >= 0.3  # incremental: bytes spread over the pacing


@covers("wrong-stream-content-type")
def test_wrong_stream_content_type(mock_factory: Callable[..., MockServer]) -> None:
    body = OPENAI_BODY | {"stream": True}
    with started(mock_factory, "wrong-stream-content-type") as broken:
        response = broken.post(CHAT, json=body, headers=bearer())
        assert response.headers["content-type"] == "application/json"
        assert response.text.startswith("data: ")  # the body is still an event stream
        stream = broken.post(MESSAGES, json=CLAUDE_BODY | {"stream": True}, headers=claude())
        assert stream.headers["content-type"] == "application/json"
        clean = healed(broken)
        assert (
            clean.post(CHAT, json=body, headers=bearer())
            .headers["content-type"]
            .startswith("text/event-stream")
        )


@covers("usage-chunk-with-choices")
def test_usage_chunk_with_choices(mock_factory: Callable[..., MockServer]) -> None:
    body = OPENAI_BODY | {"stream": True, "stream_options": {"include_usage": True}}

    def usage_chunks(client: httpx.Client) -> list[dict[str, Any]]:
        data = sse_data(client.post(CHAT, json=body, headers=bearer()).text)
        chunks = [json.loads(d) for d in data if d != "[DONE]"]
        return [c for c in chunks if c.get("usage")]

    with started(mock_factory, "usage-chunk-with-choices") as broken:
        (usage,) = usage_chunks(broken)
        assert usage["choices"], usage
        assert usage["usage"]["total_tokens"] > 0
        clean = healed(broken)
        (usage,) = usage_chunks(clean)
        assert usage["choices"] == []


@covers("anthropic-events-out-of-order")
def test_anthropic_events_out_of_order(mock_factory: Callable[..., MockServer]) -> None:
    body = CLAUDE_BODY | {"stream": True}

    def order(client: httpx.Client) -> list[str]:
        events = anthropic_events(client.post(MESSAGES, json=body, headers=claude()).text)
        return [e["type"] for e in events if e.get("index") == 0]

    with started(mock_factory, "anthropic-events-out-of-order") as broken:
        kinds = order(broken)
        stop = kinds.index("content_block_stop")
        first_delta = kinds.index("content_block_delta")
        assert stop < first_delta  # the block is closed before its deltas arrive
        clean = healed(broken)
        kinds = order(clean)
        assert kinds[0] == "content_block_start" and kinds[-1] == "content_block_stop"
        assert kinds.count("content_block_stop") == 1


@covers("gemini-no-usage-metadata")
def test_gemini_no_usage_metadata(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "gemini-no-usage-metadata") as broken:
        answer = broken.post(GEMINI, json=GEMINI_BODY, headers=goog())
        assert answer.status_code == 200
        assert "usageMetadata" not in answer.json()
        assert answer.json()["candidates"][0]["content"]["parts"]
        stream = broken.post(GEMINI_SSE, json=GEMINI_BODY, headers=goog())
        events = [json.loads(d) for d in sse_data(stream.text)]
        assert events
        assert not any("usageMetadata" in e for e in events)
        clean = healed(broken)
        assert "usageMetadata" in clean.post(GEMINI, json=GEMINI_BODY, headers=goog()).json()
        events = [
            json.loads(d)
            for d in sse_data(clean.post(GEMINI_SSE, json=GEMINI_BODY, headers=goog()).text)
        ]
        assert all("usageMetadata" in e for e in events)


# -- errors --------------------------------------------------------------------------------


@covers("html-error-page")
def test_html_error_page(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"Authorization": f"Bearer {UNKNOWN_SECRET}"}
    with started(mock_factory, "html-error-page") as broken:
        for path, body in ((CHAT, OPENAI_BODY), (MESSAGES, CLAUDE_BODY), (GEMINI, GEMINI_BODY)):
            response = broken.post(path, json=body, headers=bad)
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("text/html")
            assert "<html" in response.text.lower()
        assert broken.get("/v1/nowhere").headers["content-type"].startswith("text/html")
        clean = healed(broken)
        assert (
            clean.post(CHAT, json=OPENAI_BODY, headers=bad)
            .headers["content-type"]
            .startswith("application/json")
        )


@covers("openai-envelope-on-messages")
def test_openai_envelope_on_messages(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"x-api-key": UNKNOWN_SECRET, "anthropic-version": "2023-06-01"}
    with started(mock_factory, "openai-envelope-on-messages") as broken:
        response = broken.post(MESSAGES, json=CLAUDE_BODY, headers=bad)
        assert response.status_code == 401
        body = response.json()
        assert "type" not in body
        assert {"message", "type", "param", "code"} <= set(body["error"])
        assert body["error"]["code"] == "invalid_api_key"
        gemini = broken.post(GEMINI, json=GEMINI_BODY, headers={"x-goog-api-key": UNKNOWN_SECRET})
        assert gemini.json()["error"]["status"] == "UNAUTHENTICATED"  # other routes unchanged
        clean = healed(broken)
        body = clean.post(MESSAGES, json=CLAUDE_BODY, headers=bad).json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "authentication_error"


@covers("error-status-200")
def test_error_status_200(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"Authorization": f"Bearer {UNKNOWN_SECRET}"}
    with started(mock_factory, "error-status-200") as broken:
        response = broken.post(CHAT, json=OPENAI_BODY, headers=bad)
        assert response.status_code == 200
        assert response.json()["error"]["code"] == "invalid_api_key"
        missing = broken.post(CHAT, json=OPENAI_BODY | {"model": "no-such"}, headers=bearer())
        assert missing.status_code == 200
        assert missing.json()["error"]["code"] == "model_not_found"
        gemini = broken.post(GEMINI, json=GEMINI_BODY, headers={"x-goog-api-key": UNKNOWN_SECRET})
        assert gemini.status_code == 200
        assert gemini.json()["error"]["code"] == 401  # the body still says 401
        clean = healed(broken)
        assert clean.post(CHAT, json=OPENAI_BODY, headers=bad).status_code == 401


@covers("key-echoed-in-error")
def test_key_echoed_in_error(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"Authorization": f"Bearer {UNKNOWN_SECRET}"}
    with started(mock_factory, "key-echoed-in-error") as broken:
        response = broken.post(CHAT, json=OPENAI_BODY, headers=bad)
        assert response.status_code == 401
        assert UNKNOWN_SECRET in response.json()["error"]["message"]
        claude_bad = {"x-api-key": UNKNOWN_SECRET}
        assert UNKNOWN_SECRET in broken.post(MESSAGES, json=CLAUDE_BODY, headers=claude_bad).text
        clean = healed(broken)
        assert UNKNOWN_SECRET not in clean.post(CHAT, json=OPENAI_BODY, headers=bad).text


# -- authentication --------------------------------------------------------------------------


@covers("auth-bypass")
def test_auth_bypass(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "auth-bypass") as broken:
        assert broken.post(CHAT, json=OPENAI_BODY).status_code == 200
        unknown = {"Authorization": f"Bearer {UNKNOWN_SECRET}"}
        assert broken.post(CHAT, json=OPENAI_BODY, headers=unknown).status_code == 200
        assert broken.post(MESSAGES, json=CLAUDE_BODY).status_code == 200
        assert broken.post(GEMINI, json=GEMINI_BODY).status_code == 200
        disabled = {"Authorization": f"Bearer {SECRETS['disabled']}"}
        assert broken.post(CHAT, json=OPENAI_BODY, headers=disabled).status_code == 200
        assert broken.get("/v1/models").status_code == 200
        clean = healed(broken)
        assert clean.post(CHAT, json=OPENAI_BODY).status_code == 401


@covers("x-api-key-ignored")
def test_x_api_key_ignored(mock_factory: Callable[..., MockServer]) -> None:
    with started(mock_factory, "x-api-key-ignored") as broken:
        response = broken.post(MESSAGES, json=CLAUDE_BODY, headers=claude())
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        with_bearer = broken.post(MESSAGES, json=CLAUDE_BODY, headers=bearer())
        assert with_bearer.status_code == 200
        clean = healed(broken)
        assert clean.post(MESSAGES, json=CLAUDE_BODY, headers=claude()).status_code == 200


# -- billing -------------------------------------------------------------------------------


@covers("no-rollback")
def test_no_rollback(mock_factory: Callable[..., MockServer]) -> None:
    failing = OPENAI_BODY | {"model": "gpt-4o-mini--error-503"}
    with started(mock_factory, "no-rollback") as broken:
        before = balance(broken)
        assert broken.post(CHAT, json=failing, headers=bearer()).status_code == 503
        (entry,) = ledger(broken)
        assert entry["state"] == "rolled_back"
        assert entry["reserved"] > 0
        assert balance(broken) == before - entry["reserved"]  # the reservation was kept
        clean = healed(broken)
        before = balance(clean)
        assert clean.post(CHAT, json=failing, headers=bearer()).status_code == 503
        assert balance(clean) == before


@covers("double-charge")
def test_double_charge(mock_factory: Callable[..., MockServer]) -> None:
    def charge(client: httpx.Client) -> tuple[int, int, int]:
        before = balance(client)
        assert client.post(CHAT, json=OPENAI_BODY, headers=bearer()).status_code == 200
        (entry,) = ledger(client)
        used = client.get("/_gateprobe/state", headers=ADMIN).json()["keys"]["valid"]["used"]
        return entry["charged"], before - balance(client), used

    with started(mock_factory, "double-charge") as broken:
        cost, taken, used = charge(broken)
        assert cost > 0
        assert taken == used == 2 * cost
        clean = healed(broken)
        cost, taken, used = charge(clean)
        assert cost > 0
        assert taken == used == cost


# -- rate limits ---------------------------------------------------------------------------


@covers("429-without-retry-after")
def test_429_without_retry_after(mock_factory: Callable[..., MockServer]) -> None:
    upstream_429 = OPENAI_BODY | {"model": "gpt-4o-mini--error-429"}

    def fourth(client: httpx.Client) -> httpx.Response:
        for _ in range(3):
            assert client.post(CHAT, json=OPENAI_BODY, headers=bearer("limited_rate")).is_success
        return client.post(CHAT, json=OPENAI_BODY, headers=bearer("limited_rate"))

    with started(mock_factory, "429-without-retry-after") as broken:
        limited = fourth(broken)
        assert limited.status_code == 429
        assert "retry-after" not in limited.headers
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        upstream = broken.post(CHAT, json=upstream_429, headers=bearer())
        assert upstream.status_code == 429
        assert "retry-after" not in upstream.headers
        clean = healed(broken)
        limited = fourth(clean)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "retry-after" in clean.post(CHAT, json=upstream_429, headers=bearer()).headers


# -- model lists ---------------------------------------------------------------------------


@covers("model-listed-not-callable")
def test_model_listed_not_callable(mock_factory: Callable[..., MockServer]) -> None:
    def listed(client: httpx.Client) -> set[str]:
        return {m["id"] for m in client.get("/v1/models", headers=bearer()).json()["data"]}

    with started(mock_factory, "model-listed-not-callable") as broken:
        assert PHANTOM_MODEL in listed(broken)
        gemini = broken.get("/v1beta/models", headers=goog()).json()["models"]
        assert f"models/{PHANTOM_MODEL}" in {m["name"] for m in gemini}
        response = broken.post(CHAT, json=OPENAI_BODY | {"model": PHANTOM_MODEL}, headers=bearer())
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"
        claude_call = broken.post(
            MESSAGES, json=CLAUDE_BODY | {"model": PHANTOM_MODEL}, headers=claude()
        )
        assert claude_call.status_code == 404
        clean = healed(broken)
        assert PHANTOM_MODEL not in listed(clean)
