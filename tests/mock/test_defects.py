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
from support import ADMIN, SECRETS, bearer, claude, goog, sse_frames

from gateprobe.mock import DEFECTS, MockServer
from gateprobe.mock.defects import PHANTOM_MODEL, UPSTREAM_SECRET

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


@covers("overdraft")
def test_overdraft(mock_factory: Callable[..., MockServer]) -> None:
    def spend(client: httpx.Client) -> tuple[list[int], int]:
        """Calls on a key with a quota of 10 until one is refused; statuses and what is left."""
        key = {"secret": "sk-gp-overdraft-0123456789", "account": "main", "quota": 10}
        assert client.put("/_gateprobe/keys/small", json=key, headers=ADMIN).status_code == 200
        small = {"Authorization": f"Bearer {key['secret']}"}
        body = OPENAI_BODY | {"max_tokens": 8}
        statuses = [client.post(CHAT, json=body, headers=small).status_code for _ in range(6)]
        left: int = client.get("/_gateprobe/state", headers=ADMIN).json()["keys"]["small"][
            "remaining"
        ]
        return statuses, left

    with started(mock_factory, "overdraft") as broken:
        statuses, left = spend(broken)
        assert left < 0  # admitted while anything was left, charged with no floor
        assert statuses.count(200) >= 4 and 402 in statuses
        statuses, left = spend(healed(broken))
        assert left >= 0
        assert statuses.count(200) == 3  # each call reserves 3 of the 10


@covers("model-budget-ignored")
def test_model_budget_ignored(mock_factory: Callable[..., MockServer]) -> None:
    body = OPENAI_BODY | {"model": "gpt-4o-mini-budget"}

    def spend(client: httpx.Client) -> tuple[list[int], dict[str, int]]:
        """12 calls to the model with a budget of 150: statuses, and its budget after them."""
        answers = [client.post(CHAT, json=body, headers=bearer()).status_code for _ in range(12)]
        state = client.get("/_gateprobe/state", headers=ADMIN).json()
        return answers, state["model_budgets"]["gpt-4o-mini-budget"]

    with started(mock_factory, "model-budget-ignored") as broken:
        answers, budget = spend(broken)
        assert answers == [200] * 12
        assert budget["spent"] > budget["budget"]  # still counted, never enforced
        answers, budget = spend(healed(broken))
        refused = answers.index(429)
        assert refused > 0 and answers[refused:] == [429] * (12 - refused)
        assert budget["spent"] <= budget["budget"]


@covers("double-charge-on-retry")
def test_double_charge_on_retry(mock_factory: Callable[..., MockServer]) -> None:
    retried = bearer() | {"x-gateprobe-directives": "fail-attempts-1"}

    def charge(client: httpx.Client) -> tuple[list[int], int]:
        """What each ledger entry charged, and what the balance lost, for one retried call."""
        before = balance(client)
        assert client.post(CHAT, json=OPENAI_BODY, headers=retried).status_code == 200
        return [entry["charged"] for entry in ledger(client)], before - balance(client)

    with started(mock_factory, "double-charge-on-retry") as broken:
        charged, taken = charge(broken)
        assert len(charged) == 2 and charged[0] == charged[1] > 0  # the call and its failed try
        assert taken == 2 * charged[0]
        charged, taken = charge(healed(broken))
        assert len(charged) == 1 and taken == charged[0] > 0


@covers("stream-usage-summed")
def test_stream_usage_summed(mock_factory: Callable[..., MockServer]) -> None:
    gemini_sse = GEMINI_SSE.replace("flash", "flash--chunks-4")
    gemini_array = gemini_sse.replace("?alt=sse", "")
    claude_body = CLAUDE_BODY | {"model": "claude-sonnet-4-5--chunks-6", "stream": True}
    openai_body = OPENAI_BODY | {
        "model": "gpt-4o-mini--chunks-6",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    calls = [
        (gemini_sse, GEMINI_BODY, goog()),
        (gemini_array, GEMINI_BODY, goog()),
        (MESSAGES, claude_body, claude()),
        (CHAT, openai_body, bearer()),
    ]

    def billed(client: httpx.Client) -> list[tuple[int, int]]:
        """(prompt, completion) tokens the ledger settled for each call."""
        for path, body, headers in calls:
            assert client.post(path, json=body, headers=headers).status_code == 200
        return [(e["prompt_tokens"], e["completion_tokens"]) for e in ledger(client)]

    with started(mock_factory, "stream-usage-summed") as broken:
        summed = billed(broken)
        clean = billed(healed(broken))
    (gp, gc), array, (cp, cc), (op, oc) = clean
    assert (gc, cc, oc) == (4, 6, 6) and array == (gp, gc)
    # Gemini repeats usageMetadata on each of its 4 chunks (1, 2, 3, 4 candidates tokens)
    assert summed[0] == summed[1] == (4 * gp, 1 + 2 + 3 + 4)
    assert summed[2] == (cp, 1 + 6)  # message_start's output_tokens 1 + message_delta's 6
    assert summed[3] == (op, oc)  # one usage chunk: nothing to add up


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


# -- conformance defects: models, auth order, credentials, error framing, pass-through -------


@covers("model-callable-not-listed")
def test_model_callable_not_listed(mock_factory: Callable[..., MockServer]) -> None:
    embed = {"model": "text-embedding-3-small", "input": "hello"}

    def listed(client: httpx.Client) -> set[str]:
        return {m["id"] for m in client.get("/v1/models", headers=bearer()).json()["data"]}

    with started(mock_factory, "model-callable-not-listed") as broken:
        assert "text-embedding-3-small" not in listed(broken)
        assert broken.post("/v1/embeddings", json=embed, headers=bearer()).status_code == 200
        clean = healed(broken)
        assert "text-embedding-3-small" in listed(clean)


@covers("variant-not-honoured")
def test_variant_not_honoured(mock_factory: Callable[..., MockServer]) -> None:
    pro = OPENAI_BODY | {"model": "gpt-4o-pro"}
    with started(mock_factory, "variant-not-honoured") as broken:
        assert broken.post(CHAT, json=pro, headers=bearer()).status_code == 200
        ids = {m["id"] for m in broken.get("/v1/models", headers=bearer()).json()["data"]}
        assert "gpt-4o-pro" in ids
        clean = healed(broken)
        assert clean.post(CHAT, json=pro, headers=bearer()).status_code == 404
        assert clean.post(CHAT, json=pro, headers=bearer("variant_pro")).status_code == 200


@covers("auth-after-validation")
def test_auth_after_validation(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"Authorization": f"Bearer {UNKNOWN_SECRET}", "content-type": "application/json"}
    with started(mock_factory, "auth-after-validation") as broken:
        assert broken.post(CHAT, content=b"{not json", headers=bad).status_code == 400
        assert broken.post(CHAT, json=OPENAI_BODY, headers=bad).status_code == 401
        clean = healed(broken)
        assert clean.post(CHAT, content=b"{not json", headers=bad).status_code == 401


@covers("lowercase-bearer-rejected")
def test_lowercase_bearer_rejected(mock_factory: Callable[..., MockServer]) -> None:
    lower = {"Authorization": f"bearer {SECRETS['valid']}"}
    with started(mock_factory, "lowercase-bearer-rejected") as broken:
        response = broken.post(CHAT, json=OPENAI_BODY, headers=lower)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "malformed_api_key"
        assert broken.post(CHAT, json=OPENAI_BODY, headers=bearer()).status_code == 200
        clean = healed(broken)
        assert clean.post(CHAT, json=OPENAI_BODY, headers=lower).status_code == 200


@covers("stream-auth-error-as-sse")
def test_stream_auth_error_as_sse(mock_factory: Callable[..., MockServer]) -> None:
    bad = {"Authorization": f"Bearer {UNKNOWN_SECRET}"}
    body = OPENAI_BODY | {"stream": True}
    with started(mock_factory, "stream-auth-error-as-sse") as broken:
        response = broken.post(CHAT, json=body, headers=bad)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/event-stream")
        ((event, data),) = sse_frames(response.content)
        assert event == "error" and json.loads(data)["error"]["code"] == "invalid_api_key"
        plain = broken.post(CHAT, json=OPENAI_BODY, headers=bad)
        assert plain.headers["content-type"].startswith("application/json")
        clean = healed(broken)
        assert (
            clean.post(CHAT, json=body, headers=bad)
            .headers["content-type"]
            .startswith("application/json")
        )


@covers("upstream-secret-in-error")
def test_upstream_secret_in_error(mock_factory: Callable[..., MockServer]) -> None:
    failing = OPENAI_BODY | {"model": "gpt-4o-mini--error-503"}
    with started(mock_factory, "upstream-secret-in-error") as broken:
        response = broken.post(CHAT, json=failing, headers=bearer())
        assert response.status_code == 503
        assert UPSTREAM_SECRET in response.json()["error"]["message"]
        clean = healed(broken)
        assert UPSTREAM_SECRET not in clean.post(CHAT, json=failing, headers=bearer()).text


@covers("reasoning-dropped")
def test_reasoning_dropped(mock_factory: Callable[..., MockServer]) -> None:
    asked = OPENAI_BODY | {"model": "o3-mini", "reasoning_effort": "high"}
    thinking = CLAUDE_BODY | {
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }

    def reasoning_tokens(client: httpx.Client) -> int:
        usage = client.post(CHAT, json=asked, headers=bearer()).json()["usage"]
        tokens: int = usage["completion_tokens_details"]["reasoning_tokens"]
        return tokens

    def blocks(client: httpx.Client) -> list[str]:
        content = client.post(MESSAGES, json=thinking, headers=claude()).json()["content"]
        return [block["type"] for block in content]

    with started(mock_factory, "reasoning-dropped") as broken:
        assert reasoning_tokens(broken) == 0
        assert "thinking" not in blocks(broken)
        clean = healed(broken)
        assert reasoning_tokens(clean) > 0
        assert "thinking" in blocks(clean)


@covers("tools-dropped")
def test_tools_dropped(mock_factory: Callable[..., MockServer]) -> None:
    tools = {
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
                ]
            }
        ]
    }

    def parts(client: httpx.Client) -> list[dict[str, Any]]:
        answer = client.post(GEMINI, json=GEMINI_BODY | tools, headers=goog()).json()
        found: list[dict[str, Any]] = answer["candidates"][0]["content"]["parts"]
        return found

    with started(mock_factory, "tools-dropped") as broken:
        assert not any("functionCall" in part for part in parts(broken))
        clean = healed(broken)
        assert parts(clean)[0]["functionCall"]["name"] == "get_weather"


@covers("json-mode-dropped")
def test_json_mode_dropped(mock_factory: Callable[..., MockServer]) -> None:
    asked = OPENAI_BODY | {"response_format": {"type": "json_object"}, "max_tokens": 256}

    def content(client: httpx.Client) -> str:
        text: str = client.post(CHAT, json=asked, headers=bearer()).json()["choices"][0]["message"][
            "content"
        ]
        return text

    with started(mock_factory, "json-mode-dropped") as broken:
        assert not content(broken).startswith("{")
        clean = healed(broken)
        assert isinstance(json.loads(content(clean)), dict)


# The streaming defects' tests live beside this module and register through ``covers``.
import test_stream_defects  # noqa: E402, F401
