"""``gateprobe demo``: the mock on a loopback port, real calls of each protocol, a report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gateprobe._redact import mask_secret
from gateprobe.mock.config import MockConfig
from gateprobe.mock.server import MockServer

__all__ = ["run_demo"]


@dataclass
class Outcome:
    name: str
    expected: int
    status: int
    detail: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == self.expected


def _secret(config: MockConfig, name: str) -> str:
    for key in config.keys:
        if key.name == name:
            return key.secret
    raise LookupError(name)


def _stream_summary(response: httpx.Response, started: float) -> str:
    first: float | None = None
    events = 0
    for line in response.iter_lines():
        if line.startswith("data:") or line.lstrip("[,").startswith("{"):
            events += 1
            if first is None:
                first = time.perf_counter() - started
    ttfb = f"{first * 1000:.1f} ms" if first is not None else "-"
    return f"{events} events, first after {ttfb}, {response.headers.get('content-type', '?')}"


def _calls(config: MockConfig) -> list[tuple[str, int, Callable[[httpx.Client], tuple[int, str]]]]:
    valid = _secret(config, "valid")
    bearer = {"Authorization": f"Bearer {valid}"}
    claude = {"x-api-key": valid, "anthropic-version": "2023-06-01"}
    goog = {"x-goog-api-key": valid}
    chat_body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
    claude_body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Draft a product update note"}],
    }
    gemini_body = {"contents": [{"parts": [{"text": "Write a welcome email"}]}]}
    claude_path = "/claude/v1/messages" if config.path_style == "prefixed" else "/v1/messages"
    gemini = "/gemini/v1beta" if config.path_style == "prefixed" else "/v1beta"

    def post(
        path: str, headers: dict[str, str], body: dict[str, Any], describe: Callable[[Any], str]
    ) -> Callable[[httpx.Client], tuple[int, str]]:
        def call(client: httpx.Client) -> tuple[int, str]:
            r = client.post(path, headers=headers, json=body)
            try:
                data = r.json()
            except ValueError:
                return (
                    0,
                    f"HTTP {r.status_code} with a non-JSON body ({r.headers.get('content-type')})",
                )
            if r.status_code >= 400 or (isinstance(data, dict) and data.get("error")):
                message = (
                    (data.get("error") or {}).get("message", "") if isinstance(data, dict) else ""
                )
                return r.status_code, f"error: {message}"
            return r.status_code, describe(data)

        return call

    def stream(
        path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> Callable[[httpx.Client], tuple[int, str]]:
        def call(client: httpx.Client) -> tuple[int, str]:
            started = time.perf_counter()
            with client.stream("POST", path, headers=headers, json=body) as r:
                return r.status_code, _stream_summary(r, started)

        return call

    def get(
        path: str, headers: dict[str, str], describe: Callable[[Any], str]
    ) -> Callable[[httpx.Client], tuple[int, str]]:
        def call(client: httpx.Client) -> tuple[int, str]:
            r = client.get(path, headers=headers)
            return r.status_code, describe(r.json())

        return call

    def text_of(d: Any) -> str:
        content = d["choices"][0]["message"]["content"]
        return f"{d['usage']['completion_tokens']} tokens: {content[:48]}…"

    return [
        (
            "openai  GET  /v1/models",
            200,
            get("/v1/models", bearer, lambda d: ", ".join(m["id"] for m in d["data"])),
        ),
        (
            "openai  POST /v1/chat/completions",
            200,
            post("/v1/chat/completions", bearer, chat_body, text_of),
        ),
        (
            "openai  POST /v1/chat/completions stream",
            200,
            stream(
                "/v1/chat/completions",
                bearer,
                {**chat_body, "stream": True, "stream_options": {"include_usage": True}},
            ),
        ),
        (
            "openai  POST /v1/responses",
            200,
            post(
                "/v1/responses",
                bearer,
                {"model": "gpt-4o-mini", "input": "Say hello"},
                lambda d: f"{d['status']}, {d['usage']['output_tokens']} output tokens",
            ),
        ),
        (
            "openai  POST /v1/responses stream",
            200,
            stream(
                "/v1/responses",
                bearer,
                {"model": "gpt-4o-mini", "input": "Say hello", "stream": True},
            ),
        ),
        (
            "openai  POST /v1/embeddings",
            200,
            post(
                "/v1/embeddings",
                bearer,
                {"model": "text-embedding-3-small", "input": "The quick brown fox"},
                lambda d: f"{len(d['data'][0]['embedding'])} dimensions",
            ),
        ),
        (
            "openai  POST /v1/images/generations",
            200,
            post(
                "/v1/images/generations",
                bearer,
                {"model": "gpt-image-1", "prompt": "a cat reading"},
                lambda d: f"{len(d['data'][0]['b64_json'])} base64 chars of PNG",
            ),
        ),
        (
            "openai  POST /v1/rerank",
            200,
            post(
                "/v1/rerank",
                bearer,
                {
                    "model": "bge-reranker-v2-m3",
                    "query": "quota ledger",
                    "documents": ["the quota ledger", "a cat"],
                },
                lambda d: f"best document #{d['results'][0]['index']}",
            ),
        ),
        (
            "claude  POST /v1/messages",
            200,
            post(
                claude_path,
                claude,
                claude_body,
                lambda d: f"{d['usage']['output_tokens']} tokens, stop_reason {d['stop_reason']}",
            ),
        ),
        (
            "claude  POST /v1/messages stream",
            200,
            stream(claude_path, claude, {**claude_body, "stream": True}),
        ),
        (
            "gemini  POST :generateContent",
            200,
            post(
                f"{gemini}/models/gemini-2.5-flash:generateContent",
                goog,
                gemini_body,
                lambda d: (
                    f"{d['usageMetadata']['candidatesTokenCount']} tokens"
                    if "usageMetadata" in d
                    else "no usageMetadata"
                ),
            ),
        ),
        (
            "gemini  POST :streamGenerateContent (array)",
            200,
            stream(f"{gemini}/models/gemini-2.5-flash:streamGenerateContent", goog, gemini_body),
        ),
        (
            "gemini  POST :streamGenerateContent?alt=sse",
            200,
            stream(
                f"{gemini}/models/gemini-2.5-flash:streamGenerateContent?alt=sse", goog, gemini_body
            ),
        ),
        (
            "billing GET  /v1/dashboard/billing/subscription",
            200,
            get(
                "/v1/dashboard/billing/subscription",
                bearer,
                lambda d: f"hard limit ${d['hard_limit_usd']}",
            ),
        ),
        (
            "error   unknown key",
            401,
            post(
                "/v1/chat/completions",
                {"Authorization": "Bearer sk-unknown-key-123456"},
                chat_body,
                str,
            ),
        ),
        (
            "error   key quota exhausted",
            config.insufficient_quota_status,
            post(
                "/v1/chat/completions",
                {"Authorization": f"Bearer {_secret(config, 'low_quota')}"},
                chat_body,
                str,
            ),
        ),
        (
            "error   upstream 503 (model gpt-4o-mini--error-503)",
            503,
            post(
                "/v1/chat/completions",
                bearer,
                {**chat_body, "model": "gpt-4o-mini--error-503"},
                str,
            ),
        ),
    ]


def run_demo(config: MockConfig) -> int:
    outcomes: list[Outcome] = []
    with MockServer(config) as mock:
        print(f"gateprobe demo: mock gateway ({config.mode} mode) on {mock.url}")
        if config.defects:
            print(f"defects on: {', '.join(sorted(config.defects))}")
        print(f"calling with key 'valid' = {mask_secret(_secret(config, 'valid'))}\n")
        with httpx.Client(base_url=mock.url, timeout=30.0) as client:
            for name, expected, call in _calls(config):
                started = time.perf_counter()
                try:
                    status, detail = call(client)
                except (
                    httpx.HTTPError,
                    KeyError,
                    TypeError,
                    ValueError,
                    json.JSONDecodeError,
                ) as exc:
                    status, detail = 0, f"{type(exc).__name__}: {exc}"
                outcomes.append(
                    Outcome(name, expected, status, detail, time.perf_counter() - started)
                )
        snapshot = mock.state.ledger.snapshot()
    width = max(len(o.name) for o in outcomes)
    for o in outcomes:
        mark = "ok  " if o.ok else "FAIL"
        print(
            f"{mark} {o.name.ljust(width)}  {o.status:>3}  "
            f"{o.seconds * 1000:6.1f} ms  {o.detail[:90]}"
        )
    failed = [o for o in outcomes if not o.ok]
    print(
        f"\nquota settled: {snapshot['totals']['settled']} units over "
        f"{snapshot['totals']['requests']} charged or refunded calls; "
        f"open reservations: {snapshot['open_reservations']}"
    )
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
