"""Bad input on each protocol's route: status, envelope, request id, never a 5xx.

Most checks here only read the mock (every request is refused before it is charged), so the
parametrized garbage cases share one mock per module instead of paying a server start and
stop for each of several hundred cases; that server is stopped when the module ends.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import DEFAULT, bearer, claude, goog

from gateprobe.mock import MockServer
from gateprobe.protocols.anthropic import ANTHROPIC_ERROR_TYPES as ANTHROPIC_TYPES

PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
AUTH: dict[str, Callable[[], dict[str, str]]] = {
    "openai": bearer,
    "anthropic": claude,
    "gemini": goog,
}
PROTOCOLS = tuple(PATHS)
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', '.py", line ')


def good_body(protocol: str) -> dict[str, Any]:
    if protocol == "openai":
        return {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 16,
        }
    if protocol == "anthropic":
        return {
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hello there"}],
        }
    return {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


def post(
    client: httpx.Client,
    protocol: str,
    content: bytes,
    *,
    path: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {**AUTH[protocol](), "content-type": "application/json", **(headers or {})}
    return client.post(path or PATHS[protocol], content=content, headers=sent)


def check_error(response: httpx.Response, protocol: str, status: int) -> dict[str, Any]:
    """Assert ``response`` is a ``status`` error in ``protocol``'s envelope; its error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    request_id = response.headers["x-request-id"]
    assert request_id
    body = response.json()
    if protocol == "openai":
        error = body["error"]
        assert {"message", "type", "param", "code"} <= set(error), error
        assert isinstance(error["type"], str) and error["type"]
    elif protocol == "anthropic":
        assert body["type"] == "error", body
        error = body["error"]
        assert error["type"] in ANTHROPIC_TYPES, error
        assert response.headers["request-id"] == request_id
    else:
        error = body["error"]
        assert error["code"] == status, error
        assert isinstance(error["status"], str) and error["status"].isupper(), error
    assert isinstance(error["message"], str)
    assert error["message"].endswith(f"(request id: {request_id})"), error["message"]
    assert not any(mark in response.text for mark in TRACEBACK_MARKS)
    return dict(error)


@pytest.fixture(scope="module")
def shared() -> Iterator[httpx.Client]:
    """One default mock for the read-only checks of this module, stopped at its end."""
    with MockServer(DEFAULT) as server, httpx.Client(base_url=server.url, timeout=10.0) as c:
        yield c


# -- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "content", [b"{", b'{"model": "gpt-4o-mini",}', b"not json", b"{'a': 1}", b'{"a": 1} x']
)
def test_malformed_json_is_400(shared: httpx.Client, protocol: str, content: bytes) -> None:
    error = check_error(post(shared, protocol, content), protocol, 400)
    assert "JSON" in error["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("content", [b"[]", b"[1, 2]", b'"text"', b"42", b"true", b"null"])
def test_json_that_is_not_an_object_is_400(
    shared: httpx.Client, protocol: str, content: bytes
) -> None:
    error = check_error(post(shared, protocol, content), protocol, 400)
    assert "object" in error["message"]


# (protocol, field to change or remove, new value or MISSING, the field the error must name)
MISSING = object()
FIELD_CASES: list[tuple[str, str, Any, str]] = [
    ("openai", "model", MISSING, "model"),
    ("openai", "model", 5, "model"),
    ("openai", "model", "", "model"),
    ("openai", "model", ["gpt-4o-mini"], "model"),
    ("openai", "messages", MISSING, "messages"),
    ("openai", "messages", "hello", "messages"),
    ("openai", "messages", [], "messages"),
    ("openai", "messages", {"role": "user"}, "messages"),
    ("openai", "messages", [5], "messages[0]"),
    ("openai", "messages", [{"content": "no role"}], "messages[0]"),
    ("openai", "messages", [{"role": "user", "content": 5}], "messages[0].content"),
    ("openai", "max_tokens", "16", "max_tokens"),
    ("openai", "max_tokens", 0, "max_tokens"),
    ("openai", "max_tokens", -1, "max_tokens"),
    ("openai", "max_tokens", 1.5, "max_tokens"),
    ("openai", "max_tokens", True, "max_tokens"),
    ("openai", "max_completion_tokens", "x", "max_completion_tokens"),
    ("openai", "stream", "yes", "stream"),
    ("openai", "stream", 1, "stream"),
    ("openai", "stream_options", "x", "stream_options"),
    ("openai", "tools", "x", "tools"),
    ("openai", "tools", [5], "tools[0]"),
    ("openai", "tools", [{"function": 5}], "tools[0]"),
    ("openai", "tool_choice", 5, "tool_choice"),
    ("openai", "tool_choice", "sometimes", "tool_choice"),
    ("openai", "tool_choice", {"function": "f"}, "tool_choice"),
    ("openai", "tool_choice", {}, "tool_choice"),
    ("openai", "response_format", "json", "response_format"),
    ("openai", "response_format", {"type": "yaml"}, "response_format"),
    ("openai", "response_format", {"type": "json_schema"}, "response_format"),
    ("openai", "response_format", {"type": "json_schema", "json_schema": "x"}, "response_format"),
    ("openai", "reasoning_effort", 5, "reasoning_effort"),
    ("openai", "reasoning_effort", "enormous", "reasoning_effort"),
    ("anthropic", "model", MISSING, "model"),
    ("anthropic", "model", 5, "model"),
    ("anthropic", "max_tokens", MISSING, "max_tokens"),
    ("anthropic", "max_tokens", "16", "max_tokens"),
    ("anthropic", "max_tokens", 0, "max_tokens"),
    ("anthropic", "max_tokens", True, "max_tokens"),
    ("anthropic", "messages", MISSING, "messages"),
    ("anthropic", "messages", "hello", "messages"),
    ("anthropic", "messages", [], "messages"),
    ("anthropic", "messages", [{"role": "system", "content": "x"}], "messages[0]"),
    ("anthropic", "messages", [{"role": "user", "content": 5}], "messages[0].content"),
    ("anthropic", "system", 5, "system"),
    ("anthropic", "tools", 5, "tools"),
    ("anthropic", "tools", [5], "tools[0]"),
    ("anthropic", "tool_choice", "auto", "tool_choice"),
    ("anthropic", "tool_choice", {"type": "sometimes"}, "tool_choice"),
    ("anthropic", "thinking", "on", "thinking"),
    ("anthropic", "thinking", {"type": "enabled", "budget_tokens": 10}, "budget_tokens"),
    ("anthropic", "stream", "yes", "stream"),
    ("gemini", "contents", MISSING, "contents"),
    ("gemini", "contents", "hello", "contents"),
    ("gemini", "contents", [], "contents"),
    ("gemini", "contents", [5], "contents[0]"),
    ("gemini", "contents", [{"parts": "hello"}], "contents[0].parts"),
    ("gemini", "generationConfig", "x", "generationConfig"),
    ("gemini", "generationConfig", {"maxOutputTokens": "9"}, "maxOutputTokens"),
    ("gemini", "generationConfig", {"maxOutputTokens": 0}, "maxOutputTokens"),
    ("gemini", "tools", "x", "tools"),
    ("gemini", "tools", [5], "tools[0]"),
    ("gemini", "toolConfig", "x", "toolConfig"),
]


@pytest.mark.parametrize(
    ("protocol", "field", "value", "named"),
    FIELD_CASES,
    ids=[f"{p}-{f}-{'missing' if v is MISSING else json.dumps(v)}" for p, f, v, _ in FIELD_CASES],
)
def test_missing_or_wrong_field_is_400_naming_it(
    shared: httpx.Client, protocol: str, field: str, value: Any, named: str
) -> None:
    body = good_body(protocol)
    if value is MISSING:
        body.pop(field)
    else:
        body[field] = value
    error = check_error(post(shared, protocol, json.dumps(body).encode()), protocol, 400)
    assert named in error["message"]
    if protocol == "openai":
        assert error["param"] == named


# -- sizes, methods, paths, models -------------------------------------------------------------


def test_body_over_max_body_bytes_is_413(mock_factory: Callable[..., MockServer]) -> None:
    server = mock_factory(max_body_bytes=1024)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for protocol in PROTOCOLS:
            small = good_body(protocol)
            assert post(client, protocol, json.dumps(small).encode()).status_code == 200
            big = good_body(protocol)
            big["padding"] = "x" * 2000
            content = json.dumps(big).encode()
            error = check_error(post(client, protocol, content), protocol, 413)
            assert "1024" in error["message"]

            def chunks(data: bytes = content) -> Iterator[bytes]:  # chunked: no Content-Length
                for i in range(0, len(data), 256):
                    yield data[i : i + 256]

            check_error(post(client, protocol, b"", headers={}), protocol, 400)
            response = client.post(
                PATHS[protocol],
                content=chunks(),
                headers={**AUTH[protocol](), "content-type": "application/json"},
            )
            check_error(response, protocol, 413)


def _raw_request(url: str, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send only ``head`` (request line and headers) and read one response off the socket."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        raw_head, _, body = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk
            body += chunk
        return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_huge_content_length_is_413_before_the_body_is_read(
    mock: MockServer, protocol: str
) -> None:
    auth = "".join(f"{k}: {v}\r\n" for k, v in AUTH[protocol]().items())
    head = (
        f"POST {PATHS[protocol]} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        "Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
    )
    status, headers, body = _raw_request(mock.url, head)
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    request_id = headers["x-request-id"]
    data = json.loads(body)
    if protocol == "anthropic":
        assert data["error"]["type"] == "request_too_large"
        message = data["error"]["message"]
    else:
        message = data["error"]["message"]
        assert data["error"]["code"] == (413 if protocol == "gemini" else "request_too_large")
    assert message.endswith(f"(request id: {request_id})")


METHOD_CASES = [
    ("openai", "GET", "/v1/chat/completions", "POST"),
    ("openai", "PUT", "/v1/chat/completions", "POST"),
    ("openai", "DELETE", "/v1/chat/completions", "POST"),
    ("anthropic", "GET", "/v1/messages", "POST"),
    ("anthropic", "PATCH", "/v1/messages", "POST"),
    ("gemini", "GET", PATHS["gemini"], "POST"),
    ("gemini", "DELETE", PATHS["gemini"], "POST"),
    ("openai", "POST", "/v1/models", "GET"),
    ("gemini", "POST", "/v1beta/models", "GET"),
    ("openai", "POST", "/api/status", "GET"),
]


@pytest.mark.parametrize(("protocol", "method", "path", "allow"), METHOD_CASES)
def test_wrong_method_is_405_with_allow(
    shared: httpx.Client, protocol: str, method: str, path: str, allow: str
) -> None:
    response = shared.request(
        method, path, headers={**AUTH[protocol](), "content-type": "application/json"}
    )
    check_error(response, protocol, 405)
    assert response.headers["allow"] == allow


UNKNOWN_PATHS = [
    ("/v1/xyz", "openai"),
    ("/chat/completions", "openai"),
    ("/v1/chat/completion", "openai"),
    ("/v2/chat/completions", "openai"),
    ("/", "openai"),
    ("/index.html", "openai"),
    ("/v1beta/nope", "gemini"),
    ("/v1beta/models/gemini-2.5-flash:explode", "gemini"),
    ("/claude/v1/x", "anthropic"),
    ("/v1/messages/batches", "anthropic"),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("path", "protocol"), UNKNOWN_PATHS)
def test_unknown_path_is_404_json_in_route_envelope(
    shared: httpx.Client, path: str, protocol: str, method: str
) -> None:
    response = shared.request(
        method,
        path,
        content=json.dumps(good_body(protocol)).encode() if method == "POST" else None,
        headers={**AUTH[protocol](), "content-type": "application/json", "accept": "text/html"},
    )
    error = check_error(response, protocol, 404)
    assert "<html" not in response.text.lower()
    assert path in error["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_is_404_model_not_found(shared: httpx.Client, protocol: str) -> None:
    body = good_body(protocol)
    path = PATHS[protocol]
    if protocol == "gemini":
        path = "/v1beta/models/no-such-model:generateContent"
    else:
        body["model"] = "no-such-model"
    response = post(shared, protocol, json.dumps(body).encode(), path=path)
    error = check_error(response, protocol, 404)
    assert "no-such-model" in error["message"]
    if protocol == "openai":
        assert error["code"] == "model_not_found"
        assert error["param"] == "model"
    elif protocol == "anthropic":
        assert error["type"] == "not_found_error"
    else:
        assert error["status"] == "NOT_FOUND"
        assert error["details"][0]["reason"] == "MODEL_NOT_FOUND"
    listed = shared.get("/v1/models/no-such-model", headers=bearer())
    assert check_error(listed, "openai", 404)["code"] == "model_not_found"


def test_every_response_has_a_request_id(shared: httpx.Client) -> None:
    seen: list[str] = []
    responses = [post(shared, p, json.dumps(good_body(p)).encode()) for p in PROTOCOLS]  # successes
    assert all(r.status_code == 200 for r in responses)
    streamed = good_body("openai") | {"stream": True}
    responses.append(post(shared, "openai", json.dumps(streamed).encode()))
    assert responses[-1].headers["content-type"].startswith("text/event-stream")
    responses += [
        shared.get("/v1/models", headers=bearer()),
        shared.get("/v1beta/models", headers=goog()),
        shared.get("/api/status"),
        shared.get("/v1/dashboard/billing/subscription", headers=bearer()),
        shared.get("/api/usage/token", headers=bearer()),
        shared.get("/_gateprobe/health", headers={"x-gateprobe-admin": "gp-admin-token"}),
        shared.get("/_gateprobe/health"),  # 401
        shared.get("/v1/models"),  # 401
        post(shared, "anthropic", b"{"),  # 400
        shared.get("/nowhere"),  # 404
    ]
    for response in responses:
        request_id = response.headers.get("x-request-id")
        assert request_id, (response.request.url, response.status_code)
        seen.append(request_id)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/json")
            assert "error" in response.json()
    assert len(set(seen)) == len(seen)


# -- garbage never makes a 5xx ---------------------------------------------------------------

GARBAGE_VALUES: list[Any] = [
    None,
    True,
    -1,
    1.5,
    10**400,
    -(10**400),
    1e308,
    "",
    "x" * 10_000,
    "\x00\u202e\ufffd",
    [],
    [[[]]],
    [None, 1, "a", {}],
    {},
    {"a": {"b": [1, {"c": None}], "type": 5}},
    {"type": "function", "function": {"name": 5, "parameters": "x"}},
]
GARBAGE_FIELDS = {
    "openai": [
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "temperature",
        "n",
    ],
    "anthropic": [
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "stream",
        "metadata",
    ],
    "gemini": [
        "contents",
        "systemInstruction",
        "generationConfig",
        "tools",
        "toolConfig",
        "safetySettings",
    ],
}


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _nested_cases() -> list[tuple[str, str, bytes]]:
    """Garbage deeper inside otherwise valid requests."""
    cases: list[tuple[str, str, dict[str, Any]]] = []
    bad_schemas: list[Any] = [
        {"type": "integer", "minimum": "x"},
        {"type": "number", "maximum": [1]},
        {"enum": 5},
        {"anyOf": 5},
        {"oneOf": [5]},
        {"type": "object", "properties": "abc"},
        {"type": "object", "properties": {"a": 5, "b": {"type": ["null"]}}},
        {"type": "array", "items": "x"},
        {"type": 7},
        _deep(60),
    ]
    for i, schema in enumerate(bad_schemas):
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        cases.append(("openai", f"tool-schema-{i}", good_body("openai") | {"tools": [tool]}))
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        cases.append(
            ("openai", f"format-schema-{i}", good_body("openai") | {"response_format": fmt})
        )
        tools = [{"name": "f", "input_schema": schema}]
        cases.append(("anthropic", f"tool-schema-{i}", good_body("anthropic") | {"tools": tools}))
        config = {"responseMimeType": "application/json", "responseSchema": schema}
        cases.append(
            ("gemini", f"response-schema-{i}", good_body("gemini") | {"generationConfig": config})
        )
        decls = [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]
        cases.append(("gemini", f"tool-schema-{i}", good_body("gemini") | {"tools": decls}))
    for protocol in PROTOCOLS:
        deep = good_body(protocol)
        deep["extra"] = _deep(200)
        cases.append((protocol, "deep-extra-field", deep))
        with_surrogate = good_body(protocol)
        if protocol == "gemini":
            with_surrogate["contents"][0]["parts"][0]["text"] = "\ud800 lone"
        else:
            with_surrogate["messages"][0]["content"] = "\ud800 lone"
        cases.append((protocol, "lone-surrogate-text", with_surrogate))
    cases.append(("openai", "surrogate-model", good_body("openai") | {"model": "\udfff"}))
    cases.append(("anthropic", "surrogate-model", good_body("anthropic") | {"model": "\ud800x"}))
    cases.append(("openai", "directive-garbage", good_body("openai") | {"model": "gpt-4o-mini--x"}))
    cases.append(
        (
            "openai",
            "messages-garbage-parts",
            good_body("openai")
            | {
                "messages": [
                    {"role": "user", "content": [5, None, {"type": "image_url"}, {"text": 5}]}
                ]
            },
        )
    )
    cases.append(
        (
            "anthropic",
            "content-garbage-blocks",
            good_body("anthropic")
            | {
                "messages": [
                    {"role": "user", "content": [5, None, {"type": "text"}, {"text": ["x"]}]}
                ]
            },
        )
    )
    cases.append(("gemini", "parts-garbage", {"contents": [{"parts": [5, None, {"text": 5}, {}]}]}))
    return [(p, name, json.dumps(body).encode()) for p, name, body in cases]


def _garbage_cases() -> list[tuple[str, str, bytes]]:
    cases: list[tuple[str, str, bytes]] = []
    raw = {
        "empty": b"",
        "null": b"null",
        "whitespace": b"  \r\n\t ",
        "nul-byte": b"\x00",
        "non-utf8": b"\xff\xfe\xfd\x80garbage",
        "latin1-json": '{"model": "café"}'.encode("latin-1"),
        "utf16-json": json.dumps({"model": "gpt-4o-mini"}).encode("utf-16"),
        "bom-json": b"\xef\xbb\xbf" + json.dumps({"model": "x"}).encode(),
        "nan": b"NaN",
        "infinity": b'{"max_tokens": Infinity, "model": -Infinity}',
        "deep-array": b"[" * 100_000,
        "deep-object": b'{"a":' * 100_000,
        "huge-int-5000-digits": b'{"max_tokens": ' + b"9" * 5000 + b"}",
        "huge-float": b'{"max_tokens": 1e999999}',
        "duplicate-keys": b'{"model": 1, "model": "gpt-4o-mini", "messages": 2, "messages": []}',
        "binary": bytes(range(256)),
    }
    for protocol in PROTOCOLS:
        cases += [(protocol, name, content) for name, content in raw.items()]
        for field in GARBAGE_FIELDS[protocol]:
            for i, value in enumerate(GARBAGE_VALUES):
                body = good_body(protocol)
                body[field] = value
                cases.append((protocol, f"{field}-{i}", json.dumps(body).encode()))
    return cases + _nested_cases()


GARBAGE = _garbage_cases()


@pytest.mark.parametrize(
    ("protocol", "content"),
    [(p, c) for p, _, c in GARBAGE],
    ids=[f"{p}-{name}" for p, name, _ in GARBAGE],
)
def test_garbage_is_never_a_5xx_nor_a_traceback(
    shared: httpx.Client, protocol: str, content: bytes
) -> None:
    response = post(shared, protocol, content)
    assert response.status_code < 500, response.text[:500]
    assert "x-request-id" in response.headers
    assert not any(mark in response.text for mark in TRACEBACK_MARKS)
    if response.status_code >= 400:
        # 402: an absurd max_tokens makes the pre-deduction exceed the balance
        error = check_error(response, protocol, response.status_code)
        assert response.status_code in (400, 402, 404), error
    elif response.headers["content-type"].startswith("application/json"):
        assert isinstance(response.json(), dict)
