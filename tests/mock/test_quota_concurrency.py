"""Quota stays exact under concurrency: the acceptance test over real HTTP.

500 concurrent requests on one mock mix successes (plain and streamed, on the OpenAI, Claude
and Gemini routes), upstream failures before the first byte, mid-stream failures, client
disconnects and requests refused before any reservation. Afterwards every account's balance
drop equals the sum charged in the ledger, nothing went negative, every failure was rolled
back in full and every disconnect was charged at most its prompt plus the tokens delivered.
A second test races 50 requests for a quota that fits only a few.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, SECRETS

from gateprobe.mock import MockServer
from gateprobe.mock.settle import cost_of
from gateprobe.mock.upstream import prompt_tokens

PROTOCOLS = ("openai", "anthropic", "gemini")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
KEYS = {"valid": "main", "valid2": "second"}  # key -> account
MAX_TOKENS = 100
DISCONNECT_CHUNKS = 90  # a full disconnect-case answer: 90 tokens at 20 ms each
KINDS = {  # kind -> weight in the mix
    "ok": 30,
    "ok_stream": 24,
    "error": 16,
    "fail_mid": 12,
    "disconnect": 12,
    "refused": 6,
}
REACHES_RESERVATION = {"ok", "ok_stream", "error", "fail_mid", "disconnect"}
MODEL_CONFIGS = {m.id: m for m in DEFAULT.models}
CHANNELS = {c.id: c for c in DEFAULT.channels}


@dataclass
class Plan:
    index: int
    kind: str
    protocol: str
    key: str
    text: str
    suffix: str = ""  # directives appended to the model name
    stream: bool = False
    read_chunks: int = 0  # disconnect: content chunks read before closing
    refusal: str = ""  # refused: bad-key | bad-model | bad-json


@dataclass
class Outcome:
    plan: Plan
    status: int
    request_id: str | None
    content_chunks: int = 0
    body: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def make_plans(n: int, seed: int = 20240607) -> list[Plan]:
    rng = random.Random(seed)
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=n)
    plans = []
    for i, kind in enumerate(kinds):
        protocol = PROTOCOLS[i % 3]
        key = "valid" if i % 2 else "valid2"
        words = " ".join(
            rng.choice(["quota", "ledger", "exact", "stream", "key"]) for _ in range(5)
        )
        plan = Plan(i, kind, protocol, key, f"request {i} {words}")
        if kind == "ok_stream":
            plan.stream = True
        elif kind == "error":
            plan.suffix = "--error-500" if i % 4 < 2 else "--error-503"
            plan.stream = i % 4 in (1, 3)
        elif kind == "fail_mid":
            plan.suffix, plan.stream = "--fail-after-3", True
        elif kind == "disconnect":
            plan.suffix = f"--itl-20--chunks-{DISCONNECT_CHUNKS}"
            plan.stream, plan.read_chunks = True, 1 + i % 5
        elif kind == "refused":
            plan.refusal = ("bad-key", "bad-model", "bad-json")[i % 3]
        plans.append(plan)
    return plans


def build(plan: Plan) -> tuple[str, dict[str, str], bytes]:
    """URL path, headers and body of ``plan``'s request."""
    secret = SECRETS[plan.key]
    if plan.refusal == "bad-key":
        secret = "sk-gp-not-a-key-000000000000"
    model = MODELS[plan.protocol] + plan.suffix
    if plan.refusal == "bad-model":
        model = "no-such-model"
    if plan.protocol == "openai":
        path = "/v1/chat/completions"
        headers = {"Authorization": f"Bearer {secret}"}
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": plan.text}],
            "max_tokens": MAX_TOKENS,
        }
        if plan.stream:
            body["stream"] = True
    elif plan.protocol == "anthropic":
        path = "/v1/messages"
        headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        body = {
            "model": model,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": plan.text}],
            "stream": plan.stream,
        }
    else:
        action = "streamGenerateContent?alt=sse" if plan.stream else "generateContent"
        path = f"/v1beta/models/{model}:{action}"
        headers = {"x-goog-api-key": secret}
        body = {
            "contents": [{"role": "user", "parts": [{"text": plan.text}]}],
            "generationConfig": {"maxOutputTokens": MAX_TOKENS},
        }
    headers["content-type"] = "application/json"
    raw = b'{"model": ' if plan.refusal == "bad-json" else json.dumps(body).encode()
    return path, headers, raw


def content_tokens(protocol: str, line: str) -> int:
    """How many output tokens one SSE line carries (0 for anything but content)."""
    if not line.startswith("data:"):
        return 0
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return 0
    event = json.loads(payload)
    if protocol == "openai":
        choices = event.get("choices") or []
        return 1 if choices and choices[0].get("delta", {}).get("content") else 0
    if protocol == "anthropic":
        return 1 if event.get("type") == "content_block_delta" else 0
    parts = (event.get("candidates") or [{}])[0].get("content", {}).get("parts", [])
    return 1 if any(p.get("text") for p in parts) else 0


async def send(client: httpx.AsyncClient, plan: Plan) -> Outcome:
    path, headers, raw = build(plan)
    if not plan.stream:
        response = await client.post(path, headers=headers, content=raw)
        return Outcome(
            plan, response.status_code, response.headers.get("x-request-id"), 0, response.text
        )
    async with client.stream("POST", path, headers=headers, content=raw) as response:
        outcome = Outcome(plan, response.status_code, response.headers.get("x-request-id"))
        if response.status_code != 200:
            outcome.body = (await response.aread()).decode()
            return outcome
        lines = []
        async for line in response.aiter_lines():
            lines.append(line)
            outcome.content_chunks += content_tokens(plan.protocol, line)
            if plan.kind == "disconnect" and outcome.content_chunks >= plan.read_chunks:
                break  # leaving the block closes the connection mid-stream
        outcome.body = "\n".join(lines)
        return outcome


async def fire(
    url: str, plans: list[Plan], connections: int = 150, pools: int = 10
) -> list[Outcome]:
    """Send every plan at once over ``connections`` concurrent connections.

    The connections are spread over several clients: one httpcore pool juggling 150
    connections and 500 queued requests spends seconds in its own bookkeeping (it is
    quadratic in the queue), which would measure the client instead of the mock.
    """
    per_pool = connections // pools
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    timeout = httpx.Timeout(30.0, pool=60.0)
    clients = [
        httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) for _ in range(pools)
    ]
    try:
        return list(await asyncio.gather(*(send(clients[p.index % pools], p) for p in plans)))
    finally:
        for client in clients:
            await client.aclose()


def wait_settled(admin: httpx.Client, limit: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        state: dict[str, Any] = admin.get("/_gateprobe/state").json()
        if state["open_reservations"] == 0:
            return state
        assert time.monotonic() < deadline, f"reservations still open: {state}"
        time.sleep(0.05)


@pytest.fixture
def admin(mock: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, headers=ADMIN, timeout=10.0) as client:
        yield client


def test_500_concurrent_requests_keep_quota_exact(mock: MockServer, admin: httpx.Client) -> None:
    plans = make_plans(500)
    mix = Counter((p.kind, p.protocol) for p in plans)
    assert all(mix[(kind, protocol)] >= 3 for kind in KINDS for protocol in PROTOCOLS), mix
    before = admin.get("/_gateprobe/state").json()

    started = time.monotonic()
    outcomes = asyncio.run(fire(mock.url, plans))
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"the concurrent batch took {elapsed:.1f}s"

    state = wait_settled(admin)
    entries: list[dict[str, Any]] = admin.get("/_gateprobe/ledger").json()["entries"]
    records = {r["request_id"]: r for r in admin.get("/_gateprobe/usage").json()["records"]}
    by_id = {e["request_id"]: e for e in entries}
    assert len(by_id) == len(entries), "a request has two ledger entries"

    # What each client saw.
    for o in outcomes:
        assert o.request_id, o
        kind = o.plan.kind
        if kind in ("ok", "ok_stream", "fail_mid", "disconnect"):
            assert o.status == 200, (o.plan, o.status, o.body[:300])
        if kind == "error":
            assert o.status == (500 if "500" in o.plan.suffix else 503), (o.plan, o.body[:300])
        if kind == "fail_mid":
            assert o.content_chunks == 3, o
            assert '"error"' in o.body, o.body[-300:]  # told in-band
        if kind == "disconnect":
            assert o.content_chunks == o.plan.read_chunks
        if kind == "refused":
            expected = {"bad-key": 401, "bad-model": 404, "bad-json": 400}[o.plan.refusal]
            assert o.status == expected, (o.plan, o.body[:300])

    # One ledger entry per request that reached the reservation, and none for the others.
    reached = {o.request_id for o in outcomes if o.plan.kind in REACHES_RESERVATION}
    refused = {o.request_id for o in outcomes if o.plan.kind == "refused"}
    assert len(entries) == len(reached) == mix_count(plans, *REACHES_RESERVATION)
    assert set(by_id) == reached
    assert not refused & set(by_id)
    assert state["totals"]["requests"] == len(entries)

    # Balances dropped by exactly what the ledger says was charged, per account and per key.
    for account in ("main", "second"):
        charged = sum(
            e["charged"] for e in entries if e["account"] == account and e["state"] == "settled"
        )
        drop = before["accounts"][account] - state["accounts"][account]
        assert drop == charged > 0, account
    for key in KEYS:
        used = sum(e["charged"] for e in entries if e["key"] == key)
        assert state["keys"][key]["used"] - before["keys"][key]["used"] == used
    untouched = set(before["accounts"]) - {"main", "second"}
    assert {a: state["accounts"][a] for a in untouched} == {
        a: before["accounts"][a] for a in untouched
    }
    assert all(balance >= 0 for balance in state["accounts"].values())
    assert all(k["remaining"] is None or k["remaining"] >= 0 for k in state["keys"].values())
    assert state["totals"]["settled"] == sum(e["charged"] for e in entries)
    assert state["totals"]["refunded"] == sum(
        e["reserved"] for e in entries if e["state"] == "rolled_back"
    )

    disconnects_cut_short = 0
    for o in outcomes:
        entry = by_id.get(o.request_id)
        kind = o.plan.kind
        if kind in ("error", "fail_mid"):
            # Every failed call is rolled back in full.
            assert entry is not None and entry["state"] == "rolled_back", (o.plan, entry)
            assert entry["charged"] == 0
            assert entry["reason"] == ("error" if kind == "error" else "upstream cut")
        elif kind in ("ok", "ok_stream"):
            assert entry is not None and entry["state"] == "settled", (o.plan, entry)
            model = MODEL_CONFIGS[entry["model"]]
            channel = CHANNELS[entry["channel"]]
            expected_prompt = prompt_tokens([o.plan.text], 1)
            assert entry["prompt_tokens"] == expected_prompt
            assert 0 < entry["completion_tokens"] <= MAX_TOKENS
            assert entry["charged"] == cost_of(
                model, channel, expected_prompt, entry["completion_tokens"]
            )
            assert entry["charged"] <= entry["reserved"]
            if kind == "ok_stream":
                assert o.content_chunks == entry["completion_tokens"]
            else:
                assert _reported_completion(o) == entry["completion_tokens"]
        elif kind == "disconnect":
            assert entry is not None and entry["state"] == "settled", (o.plan, entry)
            model = MODEL_CONFIGS[entry["model"]]
            channel = CHANNELS[entry["channel"]]
            prompt = prompt_tokens([o.plan.text], 1)
            delivered = entry["completion_tokens"]
            # At least what the client read was delivered; never more than the full answer.
            assert o.plan.read_chunks <= delivered <= DISCONNECT_CHUNKS, (o.plan, entry)
            assert entry["prompt_tokens"] == prompt
            assert entry["charged"] == cost_of(model, channel, prompt, delivered)
            assert entry["charged"] <= cost_of(model, channel, prompt, DISCONNECT_CHUNKS)
            record = records[o.request_id]
            if record["status"] == 499:
                assert record["end"] == "client gone"
                assert delivered < DISCONNECT_CHUNKS
                disconnects_cut_short += 1
            else:  # the stream finished before the mock noticed: billed as a full answer
                assert record["status"] == 200 and delivered == DISCONNECT_CHUNKS
    # The disconnects really were noticed mid-stream (not merely streamed to the end).
    assert disconnects_cut_short >= mix_count(plans, "disconnect") // 2


def mix_count(plans: list[Plan], *kinds: str) -> int:
    return sum(1 for p in plans if p.kind in kinds)


def _reported_completion(o: Outcome) -> int:
    body = json.loads(o.body)
    if o.plan.protocol == "openai":
        return int(body["usage"]["completion_tokens"])
    if o.plan.protocol == "anthropic":
        return int(body["usage"]["output_tokens"])
    return int(body["usageMetadata"]["candidatesTokenCount"])


# -- a race for the last units of a quota ----------------------------------------------------

RACE_MODEL = "claude-sonnet-4-5"
RACE_TOKENS = 10  # max_tokens == chunks: the settled cost equals the reservation exactly
RACE_TEXT = "race for the quota"


def race_cost() -> int:
    model = MODEL_CONFIGS[RACE_MODEL]
    return cost_of(model, DEFAULT.channels[0], prompt_tokens([RACE_TEXT], 1), RACE_TOKENS)


async def race(url: str, secret: str, n: int, admin_poll: Callable[[], None]) -> list[int]:
    body = {
        # ttft-300 holds every reservation open while the others arrive.
        "model": f"{RACE_MODEL}--chunks-{RACE_TOKENS}--ttft-300",
        "messages": [{"role": "user", "content": RACE_TEXT}],
        "max_tokens": RACE_TOKENS,
    }
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def one() -> httpx.Response:
            return await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
            )

        stop = asyncio.Event()

        async def poll() -> None:
            while not stop.is_set():
                await asyncio.to_thread(admin_poll)
                await asyncio.sleep(0.01)

        poller = asyncio.create_task(poll())
        try:
            responses = await asyncio.gather(*(one() for _ in range(n)))
        finally:
            stop.set()
            await poller
    codes = []
    for r in responses:
        codes.append(r.status_code)
        if r.status_code == 200:
            assert r.json()["usage"]["completion_tokens"] == RACE_TOKENS
    return codes


@pytest.mark.parametrize("scope", ["key", "account"])
def test_quota_race_admits_exactly_what_fits(
    mock: MockServer, admin: httpx.Client, scope: str
) -> None:
    cost = race_cost()
    fits = 4
    limit = fits * cost + cost - 1  # room for four calls, one unit short of a fifth
    secret = f"sk-gp-race-{scope}-000000000000"
    if scope == "key":
        r = admin.put(
            "/_gateprobe/keys/racer", json={"secret": secret, "account": "main", "quota": limit}
        )
    else:
        assert admin.put("/_gateprobe/accounts/racing", json={"balance": limit}).status_code == 200
        r = admin.put("/_gateprobe/keys/racer", json={"secret": secret, "account": "racing"})
    assert r.status_code == 200, r.text
    account = "main" if scope == "key" else "racing"
    before = admin.get("/_gateprobe/state").json()

    lows: list[int] = []

    def sample() -> None:
        with httpx.Client(base_url=mock.url, headers=ADMIN, timeout=10.0) as c:
            snap = c.get("/_gateprobe/state").json()
        remaining = snap["keys"]["racer"]["remaining"]
        lows.append(min(snap["accounts"][account], limit if remaining is None else remaining))

    codes = asyncio.run(race(mock.url, secret, 50, sample))
    state = wait_settled(admin)

    assert codes.count(200) == fits, Counter(codes)
    assert codes.count(402) == 50 - fits, Counter(codes)
    assert lows and min(lows) >= 0
    key_state = state["keys"]["racer"]
    assert key_state["used"] == fits * cost
    if scope == "key":
        assert key_state["remaining"] == limit - fits * cost == cost - 1
        assert before["accounts"]["main"] - state["accounts"]["main"] == fits * cost
    else:
        assert key_state["remaining"] is None
        assert state["accounts"]["racing"] == limit - fits * cost == cost - 1
    entries = [e for e in admin.get("/_gateprobe/ledger").json()["entries"] if e["key"] == "racer"]
    assert len(entries) == fits  # refused calls never reached a reservation
    assert all(e["state"] == "settled" and e["charged"] == cost for e in entries)
    # The refusal names the right budget.
    r = httpx.post(
        mock.url + "/v1/chat/completions",
        json={
            "model": RACE_MODEL,
            "messages": [{"role": "user", "content": RACE_TEXT}],
            "max_tokens": RACE_TOKENS,
        },
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10.0,
    )
    assert r.status_code == 402
    code = "insufficient_key_quota" if scope == "key" else "insufficient_balance"
    assert r.json()["error"]["code"] == code
