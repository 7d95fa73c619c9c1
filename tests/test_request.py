"""build_request: each protocol and operation, the target's prefixes, streams, auth and headers."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateprobe.errors import UsageError
from gateprobe.protocols import PROMPT, PROTOCOLS, operations
from gateprobe.protocols.anthropic import ANTHROPIC_VERSION
from gateprobe.request import build_request
from gateprobe.target import Target

KEYS = {"valid": "sk-valid-0123456789", "disabled": "sk-disabled-0123456789"}
TARGET = Target(
    name="t",
    base_url="http://gw",
    paths={"openai": "/api/v1", "anthropic": "/claude/v1", "gemini": "/gemini/v1beta"},
    headers={"X-Portkey-Provider": "openai", "x-tenant": "blue"},
    keys=KEYS,
    models={
        "chat": {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gem-2"},
        "responses": "gpt-4o-resp",
        "embeddings": "emb-3",
        "images": "img-1",
        "rerank": "rr-2",
    },
)
BEARER = f"Bearer {KEYS['valid']}"

# (protocol, operation) -> (method, path, model expected in the body or None for no body)
EXPECTED: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("openai", "chat"): ("POST", "/api/v1/chat/completions", "gpt-4o-mini"),
    ("openai", "models"): ("GET", "/api/v1/models", None),
    ("openai", "model"): ("GET", "/api/v1/models/gpt-4o-mini", None),
    ("openai", "responses"): ("POST", "/api/v1/responses", "gpt-4o-resp"),
    ("openai", "responses_compact"): ("POST", "/api/v1/responses/compact", "gpt-4o-resp"),
    ("openai", "embeddings"): ("POST", "/api/v1/embeddings", "emb-3"),
    ("openai", "images"): ("POST", "/api/v1/images/generations", "img-1"),
    ("openai", "rerank"): ("POST", "/api/v1/rerank", "rr-2"),
    ("anthropic", "chat"): ("POST", "/claude/v1/messages", "claude-sonnet-4-5"),
    ("anthropic", "models"): ("GET", "/claude/v1/models", None),
    ("gemini", "chat"): ("POST", "/gemini/v1beta/models/gem-2:generateContent", None),
    ("gemini", "models"): ("GET", "/gemini/v1beta/models", None),
    ("gemini", "model"): ("GET", "/gemini/v1beta/models/gem-2", None),
}


def build(**spec: Any) -> Any:
    return build_request(spec, TARGET)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_table_covers_every_operation() -> None:
    assert set(EXPECTED) == {(p, o) for p in PROTOCOLS for o in operations(p)}


@pytest.mark.parametrize(("protocol", "operation"), sorted(EXPECTED))
def test_each_operation_has_its_method_path_and_default_body(protocol: str, operation: str) -> None:
    method, path, body_model = EXPECTED[(protocol, operation)]
    built = build(protocol=protocol, operation=operation)
    assert (built.method, built.url) == (method, path)
    assert built.protocol == protocol
    assert built.stream is None
    assert built.content is None
    assert built.secret == KEYS["valid"]
    default = operations(protocol)[operation].body
    if default is None:
        assert built.json_body is None
    elif protocol == "gemini":
        # Gemini names the model in the path, never in the body.
        assert built.json_body == dict(default)
        assert "model" not in built.json_body
    else:
        assert built.json_body == {**default, "model": body_model}


def test_the_default_bodies_carry_the_prompt() -> None:
    assert build(protocol="openai", operation="chat").json_body["messages"] == [
        {"role": "user", "content": PROMPT}
    ]
    assert build(protocol="anthropic", operation="chat").json_body["max_tokens"] == 64
    gemini = build(protocol="gemini", operation="chat").json_body
    assert gemini == {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}


def test_a_step_model_overrides_the_target_model() -> None:
    built = build(protocol="openai", operation="chat", model="gpt-4o-mini--ttft-300")
    assert built.json_body["model"] == "gpt-4o-mini--ttft-300"
    gemini = build(protocol="gemini", operation="chat", model="gem-2--cut-after-3")
    assert gemini.url == "/gemini/v1beta/models/gem-2--cut-after-3:generateContent"


def test_model_of_takes_another_profile_entry_for_the_protocol() -> None:
    built = build(protocol="anthropic", operation="chat", model_of="chat")
    assert built.json_body["model"] == "claude-sonnet-4-5"
    built = build(protocol="openai", operation="chat", model_of="responses")
    assert built.json_body["model"] == "gpt-4o-resp"
    gemini = build(protocol="gemini", operation="chat", model_of="chat")
    assert gemini.url == "/gemini/v1beta/models/gem-2:generateContent"


def test_model_suffix_is_appended_to_whichever_model() -> None:
    built = build(protocol="anthropic", operation="chat", model_suffix="--error-503")
    assert built.json_body["model"] == "claude-sonnet-4-5--error-503"
    gemini = build(protocol="gemini", operation="chat", model_suffix="--cut-after-3")
    assert gemini.url == "/gemini/v1beta/models/gem-2--cut-after-3:generateContent"
    explicit = build(protocol="openai", operation="chat", model="m", model_suffix="--ttft-5")
    assert explicit.json_body["model"] == "m--ttft-5"


def test_pad_body_bytes_adds_a_filler_field() -> None:
    built = build(protocol="openai", operation="chat", pad_body_bytes=1000)
    assert built.json_body["gateprobe_padding"] == "x" * 1000
    assert built.json_body["messages"]  # the rest of the body is kept
    with pytest.raises(UsageError, match="whole number"):
        build(protocol="openai", operation="chat", pad_body_bytes="lots")
    with pytest.raises(UsageError, match="JSON object body"):
        build(protocol="openai", operation="models", pad_body_bytes=10)


def test_a_target_without_a_model_for_the_operation_sends_an_empty_one() -> None:
    bare = Target(name="bare", base_url="http://gw", keys=KEYS)
    built = build_request({"protocol": "openai", "operation": "embeddings"}, bare)
    assert built.url == "/v1/embeddings" and built.json_body["model"] == ""


def test_a_body_mapping_is_merged_over_the_default() -> None:
    built = build(protocol="openai", operation="chat", body={"max_tokens": 5, "temperature": 0})
    assert built.json_body["max_tokens"] == 5
    assert built.json_body["temperature"] == 0
    assert built.json_body["model"] == "gpt-4o-mini"
    assert built.json_body["messages"][0]["content"] == PROMPT
    # The body may also override the model.
    assert build(protocol="openai", operation="chat", body={"model": "x"}).json_body["model"] == "x"


@pytest.mark.parametrize("body", [["a", "list"], "a string", 7, None])
def test_a_body_that_is_not_a_mapping_replaces_the_default(body: Any) -> None:
    assert build(protocol="openai", operation="chat", body=body).json_body == body


def test_a_method_override_keeps_the_operation_path() -> None:
    built = build(protocol="openai", operation="models", method="POST")
    assert (built.method, built.url) == ("POST", "/api/v1/models")


# -- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_stream_sets_the_body_flag_for_openai_and_anthropic(protocol: str) -> None:
    built = build(protocol=protocol, operation="chat", stream=True)
    assert built.json_body["stream"] is True
    assert built.stream == "sse"
    assert urlsplit(built.url).query == ""


def test_stream_on_responses_sets_the_body_flag() -> None:
    built = build(protocol="openai", operation="responses", stream=True)
    assert built.json_body["stream"] is True and built.stream == "sse"


def test_gemini_stream_uses_stream_generate_content_with_alt_sse() -> None:
    built = build(protocol="gemini", operation="chat", stream=True)
    assert built.url == "/gemini/v1beta/models/gem-2:streamGenerateContent?alt=sse"
    assert built.stream == "sse"
    assert "stream" not in built.json_body


def test_gemini_array_stream_has_no_alt_parameter() -> None:
    built = build(protocol="gemini", operation="chat", stream="array")
    assert built.url == "/gemini/v1beta/models/gem-2:streamGenerateContent"
    assert built.stream == "array"


def test_a_false_stream_flag_changes_nothing() -> None:
    built = build(protocol="gemini", operation="chat", stream=False)
    assert built.url.endswith(":generateContent") and built.stream is None


def test_gemini_stream_with_query_auth_joins_both_parameters() -> None:
    built = build(protocol="gemini", operation="chat", stream=True, auth="query")
    assert urlsplit(built.url).path == "/gemini/v1beta/models/gem-2:streamGenerateContent"
    assert query_of(built.url) == {"alt": ["sse"], "key": [KEYS["valid"]]}
    assert "x-goog-api-key" not in built.headers


def test_a_step_query_is_kept_and_may_set_alt_itself() -> None:
    built = build(protocol="gemini", operation="chat", stream=True, query={"alt": "json", "x": 1})
    assert query_of(built.url) == {"alt": ["json"], "x": ["1"]}


# -- raw requests -----------------------------------------------------------------------------


def test_a_raw_path_uses_the_protocol_prefix_placeholder() -> None:
    built = build(protocol="anthropic", method="POST", path="{prefix}/messages", body={"a": 1})
    assert (built.method, built.url, built.json_body) == ("POST", "/claude/v1/messages", {"a": 1})
    assert built.headers["x-api-key"] == KEYS["valid"]


def test_a_raw_path_without_protocol_defaults_to_get_and_bearer() -> None:
    built = build(path="/api/status")
    assert (built.method, built.url, built.json_body, built.protocol) == (
        "GET",
        "/api/status",
        None,
        None,
    )
    assert built.headers["authorization"] == BEARER
    assert "anthropic-version" not in built.headers


@pytest.mark.parametrize(("flag", "kind"), [(True, "sse"), ("array", "array"), (False, None)])
def test_a_raw_request_declares_its_stream_kind(flag: Any, kind: str | None) -> None:
    built = build(protocol="openai", method="POST", path="{prefix}/x", stream=flag, body={})
    assert built.stream == kind
    assert built.json_body == {}  # a raw body is sent as given


def test_raw_body_is_sent_as_bytes_with_a_json_content_type() -> None:
    built = build(protocol="openai", operation="chat", raw_body='{"model": "x", "messages": [')
    assert built.json_body is None
    assert built.content == b'{"model": "x", "messages": ['
    assert built.headers["content-type"] == "application/json"
    typed = build(
        protocol="openai", operation="chat", raw_body="a=b", headers={"content-type": "text/plain"}
    )
    assert typed.headers["content-type"] == "text/plain"


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "header", "value"),
    [
        ("openai", "authorization", BEARER),
        ("anthropic", "x-api-key", KEYS["valid"]),
        ("gemini", "x-goog-api-key", KEYS["valid"]),
    ],
)
def test_the_default_auth_is_each_protocol_own_header(
    protocol: str, header: str, value: str
) -> None:
    built = build(protocol=protocol, operation="chat")
    assert built.headers[header] == value
    others = {"authorization", "x-api-key", "x-goog-api-key"} - {header}
    assert not others & set(built.headers)
    assert ("anthropic-version" in built.headers) == (protocol == "anthropic")
    if protocol == "anthropic":
        assert built.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ("bearer", "authorization", BEARER),
        ("x-api-key", "x-api-key", KEYS["valid"]),
        ("x-goog-api-key", "x-goog-api-key", KEYS["valid"]),
        ("raw:bearer {key}", "authorization", f"bearer {KEYS['valid']}"),
        ("raw:{key}", "authorization", KEYS["valid"]),
        ("raw:Basic abc", "authorization", "Basic abc"),
    ],
)
@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
def test_each_explicit_auth_style_on_each_protocol(
    protocol: str, auth: str, header: str, value: str
) -> None:
    built = build(protocol=protocol, operation="chat", auth=auth)
    assert built.headers[header] == value
    others = {"authorization", "x-api-key", "x-goog-api-key"} - {header}
    assert not others & set(built.headers)
    assert "key" not in query_of(built.url)
    assert built.secret == KEYS["valid"]
    # x-api-key always comes with anthropic-version, as Claude clients send it.
    assert ("anthropic-version" in built.headers) == (
        protocol == "anthropic" or auth == "x-api-key"
    )


def test_query_auth_puts_the_key_in_the_url() -> None:
    built = build(protocol="openai", operation="models", auth="query")
    assert built.url == f"/api/v1/models?key={KEYS['valid']}"
    assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(built.headers)
    assert built.secret == KEYS["valid"]


def test_auth_none_sends_no_credential() -> None:
    built = build(protocol="openai", operation="chat", auth="none")
    assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(built.headers)
    assert built.secret is None


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
def test_key_null_sends_no_credential(protocol: str) -> None:
    built = build(protocol=protocol, operation="chat", key=None)
    assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(built.headers)
    assert "key" not in query_of(built.url)
    assert built.secret is None


def test_key_null_with_a_raw_style_still_sends_the_raw_header() -> None:
    built = build(protocol="openai", operation="chat", key=None, auth="raw:Bearer {key}")
    assert built.headers["authorization"] == "Bearer "
    assert built.secret is None


def test_a_key_kind_sends_that_key() -> None:
    built = build(protocol="openai", operation="chat", key="disabled")
    assert built.headers["authorization"] == f"Bearer {KEYS['disabled']}"
    assert built.secret == KEYS["disabled"]


def test_a_literal_key_is_sent_as_given() -> None:
    built = build(protocol="anthropic", operation="chat", key="literal:sk-not-a-real-key")
    assert built.headers["x-api-key"] == "sk-not-a-real-key"
    assert built.secret == "sk-not-a-real-key"
    empty = build(protocol="openai", operation="chat", key="literal:")
    assert empty.headers["authorization"] == "Bearer " and empty.secret == ""


# -- headers ----------------------------------------------------------------------------------


def test_the_target_headers_go_on_every_request() -> None:
    for spec in (
        {"protocol": "openai", "operation": "chat"},
        {"protocol": "gemini", "operation": "models", "key": None},
        {"path": "/raw"},
    ):
        built = build_request(spec, TARGET)
        assert built.headers["x-portkey-provider"] == "openai"
        assert built.headers["x-tenant"] == "blue"


def test_step_headers_override_and_remove_in_any_case() -> None:
    built = build(
        protocol="anthropic",
        operation="chat",
        headers={
            "X-Portkey-Provider": "anthropic",  # override a target header
            "X-Tenant": None,  # remove a target header
            "Anthropic-Version": None,  # remove one the protocol adds
            "x-extra": "1",
        },
    )
    assert built.headers["x-portkey-provider"] == "anthropic"
    assert "x-tenant" not in built.headers
    assert "anthropic-version" not in built.headers
    assert built.headers["x-extra"] == "1"
    # Never two spellings of one header.
    names = [name.lower() for name in built.headers]
    assert len(names) == len(set(names))


def test_step_headers_can_replace_or_drop_the_credential() -> None:
    replaced = build(protocol="openai", operation="chat", headers={"Authorization": "Bearer x"})
    assert [k for k in replaced.headers if k.lower() == "authorization"] == ["authorization"]
    assert replaced.headers["authorization"] == "Bearer x"
    dropped = build(protocol="openai", operation="chat", headers={"authorization": None})
    assert "authorization" not in dropped.headers
    assert dropped.secret == KEYS["valid"]  # still what the checks hunt for in answers


def test_a_step_header_value_is_sent_as_a_string() -> None:
    built = build(protocol="openai", operation="chat", headers={"x-n": 5})
    assert built.headers["x-n"] == "5"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"protocol": "cohere", "operation": "chat"}, "unknown protocol 'cohere'"),
        ({"operation": "chat"}, "an operation needs a protocol"),
        ({"protocol": "anthropic", "operation": "embeddings"}, "unknown anthropic operation"),
        ({"protocol": "openai", "operation": "chat", "key": "expired"}, "no key of kind"),
        ({"protocol": "openai", "operation": "chat", "auth": "basic"}, "unknown auth style"),
    ],
)
def test_bad_specs_are_usage_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_request(spec, TARGET)


def test_an_unknown_operation_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        build(protocol="gemini", operation="rerank")
    assert str(info.value) == "unknown gemini operation 'rerank' (known: chat, models, model)"


# -- faults and per-step timeouts ------------------------------------------------------------


def test_a_fault_travels_in_the_model_name_by_default() -> None:
    built = build(protocol="openai", operation="chat", fault="chunks-8, fail-after-3")
    assert built.json_body["model"] == "gpt-4o-mini--chunks-8--fail-after-3"
    assert "x-gateprobe-directives" not in built.headers
    assert built.fault == "chunks-8,fail-after-3"
    gemini = build(protocol="gemini", operation="chat", stream=True, fault="error-503")
    assert "/models/gem-2--error-503:streamGenerateContent" in gemini.url


def test_a_fault_travels_in_the_header_when_the_profile_says_so() -> None:
    target = dataclasses.replace(TARGET, directives="header")
    built = build_request({"protocol": "openai", "operation": "chat", "fault": "hang"}, target)
    assert built.json_body["model"] == "gpt-4o-mini"
    assert built.headers["x-gateprobe-directives"] == "hang"


def test_a_raw_path_step_carries_its_fault_in_the_header() -> None:
    built = build(protocol="openai", method="POST", path="{prefix}/chat/completions", fault="x-1")
    assert built.headers["x-gateprobe-directives"] == "x-1"


@pytest.mark.parametrize("fault", ["error 503", "--error-503", "ERROR-503", "chunks-8;hang"])
def test_a_malformed_fault_is_a_usage_error(fault: str) -> None:
    with pytest.raises(UsageError, match="is not a directive"):
        build(protocol="openai", operation="chat", fault=fault)


def test_read_timeout_is_carried_and_validated() -> None:
    assert build(protocol="openai", operation="chat", read_timeout="2.5").read_timeout == 2.5
    assert build(protocol="openai", operation="chat").read_timeout is None
    for bad in ("soon", 0, -1):
        with pytest.raises(UsageError, match="read_timeout"):
            build(protocol="openai", operation="chat", read_timeout=bad)


def test_protocol_headers_apply_to_their_protocol_only() -> None:
    target = dataclasses.replace(
        TARGET, protocol_headers={"anthropic": {"x-portkey-provider": "anthropic"}}
    )
    claude = build_request({"protocol": "anthropic", "operation": "chat"}, target)
    openai = build_request({"protocol": "openai", "operation": "chat"}, target)
    assert claude.headers["x-portkey-provider"] == "anthropic"
    assert openai.headers["x-portkey-provider"] == "openai"
