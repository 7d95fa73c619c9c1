"""The ``mark-<n>`` directive: the answer's visible text begins with ``gateprobe-mark-<n>``.

A harness sends ``mark-<n>`` the way it will send a fault (in the model name or the
``x-gateprobe-directives`` header) and looks for the word in the answer, to confirm the
directives reach the upstream through a gateway. Every generating route, plain and streamed,
in both modes; the rest of the answer is the unmarked one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import DEFAULT, bearer, claude, goog, sse_frames

from gateprobe.mock import MockServer

PROMPT = [{"role": "user", "content": "mark this answer"}]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "mark this answer"}]}]}
MODEL = {"chat": "gpt-4o-mini", "responses": "gpt-4o-mini"}
MODEL |= {"messages": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
# route, streamed, and for Gemini streams the framing
SHAPES = [
    ("chat", False, None),
    ("chat", True, None),
    ("responses", False, None),
    ("responses", True, None),
    ("messages", False, None),
    ("messages", True, None),
    ("gemini", False, None),
    ("gemini", True, "sse"),
    ("gemini", True, "array"),
]


def send(
    client: httpx.Client,
    route: str,
    model: str,
    *,
    stream: bool,
    framing: str | None = None,
    headers: dict[str, str] | None = None,
    gateway: bool = True,
) -> httpx.Response:
    auth: dict[str, str] = {}
    if gateway:
        auth = claude() if route == "messages" else goog() if route == "gemini" else bearer()
    if route == "messages":
        auth.setdefault("anthropic-version", "2023-06-01")
    all_headers = auth | (headers or {})
    if route == "chat":
        body: dict[str, Any] = {"model": model, "messages": PROMPT, "stream": stream}
        return client.post("/v1/chat/completions", json=body, headers=all_headers)
    if route == "responses":
        body = {"model": model, "input": "mark this answer", "stream": stream}
        return client.post("/v1/responses", json=body, headers=all_headers)
    if route == "messages":
        body = {"model": model, "max_tokens": 256, "messages": PROMPT, "stream": stream}
        return client.post("/v1/messages", json=body, headers=all_headers)
    action = "streamGenerateContent" if stream else "generateContent"
    params = {"alt": "sse"} if framing == "sse" else None
    return client.post(
        f"/v1beta/models/{model}:{action}", json=GEMINI_BODY, headers=all_headers, params=params
    )


def text_of(route: str, response: httpx.Response, *, stream: bool, framing: str | None) -> str:
    """The visible output text of a plain answer or a stream, joined."""
    assert response.status_code == 200, response.text
    if not stream:
        body = response.json()
        if route == "chat":
            return str(body["choices"][0]["message"]["content"])
        if route == "responses":
            return "".join(
                part["text"]
                for item in body["output"]
                if item["type"] == "message"
                for part in item["content"]
            )
        if route == "messages":
            return "".join(b["text"] for b in body["content"] if b["type"] == "text")
        return "".join(p.get("text", "") for p in body["candidates"][0]["content"]["parts"])
    if route == "gemini" and framing == "array":
        elements = json.loads(response.content)
    else:
        elements = [json.loads(d) for _, d in sse_frames(response.content) if d != "[DONE]"]
    pieces: list[str] = []
    for data in elements:
        if route == "chat":
            for choice in data.get("choices") or []:
                pieces.append(choice["delta"].get("content") or "")
        elif route == "responses":
            if data["type"] == "response.output_text.delta":
                pieces.append(data["delta"])
        elif route == "messages":
            if data["type"] == "content_block_delta" and data["delta"]["type"] == "text_delta":
                pieces.append(data["delta"]["text"])
        else:
            for part in data["candidates"][0]["content"]["parts"]:
                pieces.append(part.get("text", ""))
    return "".join(pieces)


@pytest.fixture(params=["gateway", "upstream"])
def mode(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, bool]]:
    server = MockServer(DEFAULT.replace(mode=request.param)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client, request.param == "gateway"
    finally:
        server.stop()


@pytest.mark.parametrize(("route", "stream", "framing"), SHAPES)
def test_the_mark_leads_the_visible_text_in_the_name_and_in_the_header(
    mode: tuple[httpx.Client, bool], route: str, stream: bool, framing: str | None
) -> None:
    client, gateway = mode
    model = MODEL[route]

    def text(name: str, headers: dict[str, str] | None = None) -> str:
        answer = send(
            client, route, name, stream=stream, framing=framing, headers=headers, gateway=gateway
        )
        return text_of(route, answer, stream=stream, framing=framing)

    plain = text(model)
    assert "gateprobe-mark" not in plain
    streamed = "-streamed" if stream else ""  # a streamed answer says it was streamed
    in_name = text(f"{model}--mark-7")
    assert in_name == f"gateprobe-mark-7{streamed} " + plain
    in_header = text(model, {"x-gateprobe-directives": "mark-42"})
    assert in_header == f"gateprobe-mark-42{streamed} " + plain


@pytest.mark.parametrize(("route", "stream", "framing"), SHAPES)
def test_the_mark_combines_with_chunks_and_a_cut(
    client: httpx.Client, route: str, stream: bool, framing: str | None
) -> None:
    model = MODEL[route]
    # name and header together: chunks from the name, the mark from the header
    answer = send(
        client,
        route,
        f"{model}--chunks-5",
        stream=stream,
        framing=framing,
        headers={"x-gateprobe-directives": "mark-3"},
    )
    text = text_of(route, answer, stream=stream, framing=framing)
    assert text.startswith("gateprobe-mark-3-streamed " if stream else "gateprobe-mark-3 ")
    assert len(text.split()) == 6  # the mark, then the five words chunks-5 asks for
    if stream:
        cut = send(client, route, f"{model}--mark-9--cut-after-2", stream=True, framing=framing)
        if route == "gemini" and framing == "array":
            # a cut array is not closed: parse the elements that came
            elements = json.loads(cut.content + b"]")
            first = elements[0]["candidates"][0]["content"]["parts"][0]["text"]
            assert first == "gateprobe-mark-9-streamed "
        else:
            assert b"gateprobe-mark-9-streamed " in cut.content


def test_the_mark_is_counted_as_one_output_token(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini--chunks-4", "messages": PROMPT}
    plain = client.post("/v1/chat/completions", json=body, headers=bearer()).json()
    marked = client.post(
        "/v1/chat/completions",
        json=body,
        headers=bearer() | {"x-gateprobe-directives": "mark-1"},
    ).json()
    assert marked["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"] + 1
    assert marked["choices"][0]["message"]["content"].startswith("gateprobe-mark-1 ")


def test_a_mark_that_is_not_a_whole_number_is_refused(
    mock_factory: Callable[..., MockServer],
) -> None:
    with httpx.Client(base_url=mock_factory().url, timeout=10.0) as client:
        for model in ("gpt-4o-mini--mark-1.5", "gpt-4o-mini--mark-x"):
            body = {"model": model, "messages": PROMPT}
            answer = client.post("/v1/chat/completions", json=body, headers=bearer())
            assert answer.status_code == 400, model
            assert answer.json()["error"]["code"] == "invalid_directive"
