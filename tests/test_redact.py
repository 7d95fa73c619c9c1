"""Masking by value and by name (gateprobe/_redact.py), without a server.

By value: the secrets the run knows it sent, wherever they appear. By name: credential
headers (Authorization keeps its scheme), cookies, ``key=`` query parameters, ``Bearer``
tokens and ``literal:`` keys in any text, for secrets nobody announced. The run-level test
(a literal key echoed by the mock, every file the run writes) is in tests/test_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateprobe._redact import Redactor, mask_headers, mask_secret
from gateprobe.http import Exchange, RequestRecord
from gateprobe.report.masking import outcome_redactor
from gateprobe.request import BuiltRequest
from gateprobe.runner import Outcome, StepRecord
from gateprobe.scenario import Step
from gateprobe.target import Target, load_target

LITERAL = "sk-gp-literal-0123456789abcdef"
MASKED = "sk-…cdef"
UNKNOWN = "sk-gp-unknown-fedcba9876543210"


def test_mask_secret_keeps_the_scheme_and_a_little_of_the_key() -> None:
    assert mask_secret(f"Bearer {LITERAL}") == f"Bearer {MASKED}"
    assert mask_secret(LITERAL) == MASKED
    assert mask_secret("short") == "***"
    # a second pass leaves a mask as it is: reports are masked when built and when written
    assert mask_secret(MASKED) == MASKED
    assert mask_secret(f"Bearer {MASKED}") == f"Bearer {MASKED}"
    assert mask_secret("***") == "***"


def test_credential_headers_are_masked_by_name() -> None:
    masked = Redactor().headers(
        {
            "Authorization": f"Bearer {LITERAL}",
            "Proxy-Authorization": "Basic dXNlcjpwYXNzd29yZA==",
            "x-api-key": UNKNOWN,
            "X-Goog-Api-Key": "AIzaSyA-0123456789abcdefghijklmnop",
            "Cookie": "session=0123456789abcdef; theme=dark",
            "Set-Cookie": "sid=abcdef0123456789; Path=/; HttpOnly",
            "content-type": "application/json",
        }
    )
    assert masked == {
        "Authorization": f"Bearer {MASKED}",
        "Proxy-Authorization": "Basic dXN…ZA==",
        "x-api-key": "sk-…3210",
        "X-Goog-Api-Key": "AIz…mnop",
        "Cookie": "session=012…cdef; theme=***",
        "Set-Cookie": "sid=abc…6789; Path=/; HttpOnly",
        "content-type": "application/json",
    }
    # the mock's own view of the requests it received uses the same names
    assert mask_headers({"cookie": "a=0123456789"})["cookie"] == "a=012…6789"


def test_a_profile_declares_its_own_secret_headers() -> None:
    plain = Redactor().headers({"x-portkey-api-key": "pk-0123456789abcdef"})
    assert plain["x-portkey-api-key"] == "pk-0123456789abcdef"
    redactor = Redactor(secret_headers=["X-Portkey-Api-Key"])
    assert redactor.headers({"x-portkey-api-key": "pk-0123456789abcdef"}) == {
        "x-portkey-api-key": "pk-…cdef"
    }
    curl = "curl -H 'x-portkey-api-key: pk-0123456789abcdef' http://gw/v1/models"
    assert redactor.text(curl) == "curl -H 'x-portkey-api-key: pk-…cdef' http://gw/v1/models"


@pytest.mark.parametrize("name", ["key", "api_key", "access_token", "API_KEY"])
def test_key_query_parameters_are_masked_in_urls(name: str) -> None:
    url = f"http://gw/v1beta/models/g:generateContent?alt=sse&{name}={UNKNOWN}&n=1#frag"
    masked = Redactor().text(url)
    assert masked == f"http://gw/v1beta/models/g:generateContent?alt=sse&{name}=sk-…3210&n=1#frag"


def test_curl_lines_are_masked_by_name() -> None:
    curl = (
        f"curl -sS -H 'Authorization: Bearer {LITERAL}' -H \"x-api-key: {UNKNOWN}\" "
        f"-H 'Cookie: sid={UNKNOWN}' 'https://user:hunter2-pass@gw/v1/models?key={UNKNOWN}'"
    )
    masked = Redactor().text(curl)
    assert LITERAL not in masked and UNKNOWN not in masked and "hunter2" not in masked
    assert f"'Authorization: Bearer {MASKED}'" in masked
    assert '"x-api-key: sk-…3210"' in masked
    assert "'Cookie: sid=sk-…3210'" in masked
    assert "https://user:hun…pass@gw/v1/models?key=sk-…3210'" in masked


def test_literal_keys_and_bearer_tokens_are_masked_in_any_text() -> None:
    yaml_line = f'request: {{protocol: openai, operation: chat, key: "literal:{LITERAL}"}}'
    assert Redactor().text(yaml_line) == (
        f'request: {{protocol: openai, operation: chat, key: "literal:{MASKED}"}}'
    )
    echoed = f'upstream said: {{"error": "bad token Bearer {UNKNOWN}"}}'
    assert Redactor().text(echoed) == 'upstream said: {"error": "bad token Bearer sk-…3210"}'
    header_in_json = json.dumps({"headers": {"authorization": f"Bearer {UNKNOWN}"}})
    assert UNKNOWN not in Redactor().text(header_in_json)


def test_prose_about_credentials_is_left_alone() -> None:
    for text in (
        "`Authorization: bearer <key>` (lower-case scheme) is handled as the dialect declares",
        "x-api-key wins over Authorization on Claude routes",
        'key: "literal:{valid2}"',
        "GET /v1/models?limit=3",
    ):
        assert Redactor().text(text) == text


def test_known_secrets_are_masked_by_value_in_bodies() -> None:
    redactor = Redactor([LITERAL])
    body = json.dumps({"error": {"message": f"Invalid API key: {LITERAL} (request id: r-1)"}})
    assert redactor.text(body) == body.replace(LITERAL, MASKED)
    # a key with a suffix shows the known key's mask, then the suffix
    assert redactor.text(f"key {LITERAL}-x") == f"key {MASKED}-x"


def test_credentials_a_request_carried_are_learned_and_masked_in_its_answer() -> None:
    redactor = Redactor()
    redactor.learn({"x-api-key": UNKNOWN, "authorization": "Bearer short"}, f"/v1?key={LITERAL}")
    assert redactor.text(f"no key {UNKNOWN}; nor {LITERAL}") == "no key sk-…3210; nor sk-…cdef"
    assert redactor.text("short answer") == "short answer"  # too short to mask by value


@pytest.mark.parametrize(
    "text",
    [
        f"> authorization: Bearer {LITERAL}",
        f"GET http://gw/v1?key={LITERAL}&alt=sse",
        f'key: "literal:{LITERAL}"',
        f"Cookie: a={LITERAL}; b=0123456789",
        f"Invalid API key: {LITERAL}-x",
    ],
)
def test_masking_twice_is_masking_once(text: str) -> None:
    redactor = Redactor([LITERAL])
    once = redactor.text(text)
    assert LITERAL not in once
    assert redactor.text(once) == once
    # json.dumps writes the ellipsis of a mask as \u2026: the next pass must still see a mask
    dumped = json.dumps({"text": once})
    assert redactor.text(dumped) == dumped


def test_an_exchange_is_masked_before_its_body_is_cut() -> None:
    # The secret straddles the 4096-byte preview: masking the cut text would miss it and
    # print its first part.
    body = b"x" * 4090 + LITERAL.encode() + b"y" * 5000
    exchange = Exchange(
        RequestRecord("POST", "http://gw/v1/chat/completions", {"x-api-key": UNKNOWN}, None),
        status=401,
        headers={"set-cookie": f"sid={UNKNOWN}; Path=/"},
        body=body,
    )
    record = exchange.to_dict(Redactor([LITERAL]))
    assert LITERAL[:6] not in record["body"]
    assert record["body"].endswith(f"… ({len(body) - 4096} more bytes)")
    assert record["request"]["headers"] == {"x-api-key": "sk-…3210"}
    assert record["headers"] == {"set-cookie": "sid=sk-…3210; Path=/"}


def test_echoed_credentials_of_a_request_header_are_masked_in_the_exchange() -> None:
    answer = json.dumps({"error": f"Invalid API key: {UNKNOWN}"}).encode()
    request = RequestRecord("GET", "http://gw/v1/models", {"x-api-key": UNKNOWN}, None)
    record = Exchange(request, status=401, body=answer).to_dict(Redactor())
    assert UNKNOWN not in json.dumps(record)
    assert "Invalid API key: sk-…3210" in record["body"]


def test_an_outcome_redactor_masks_the_literal_key_of_each_step() -> None:
    target = Target(name="gw", base_url="http://gw", keys={"valid": "sk-profile-0123456789"})
    step = Step(0, "call", {"key": f"literal:{LITERAL}"}, {}, {}, 1)
    built = BuiltRequest(
        "POST", "/v1/chat/completions", {"authorization": f"Bearer {LITERAL}"}, {}, None,
        "openai", None, LITERAL,
    )  # fmt: skip
    outcome = Outcome("fail", f"status: Invalid API key: {LITERAL}", [StepRecord(step, built)])
    redactor = outcome_redactor(target, outcome)
    text = redactor.text(f"{outcome.reason}; sk-profile-0123456789")
    assert text == f"status: Invalid API key: {MASKED}; sk-…6789"
    assert target.redactor().text(LITERAL) == LITERAL  # the profile alone does not know it


def test_secret_headers_of_a_profile_are_loaded_and_their_values_masked(tmp_path: Path) -> None:
    path = tmp_path / "portkey.yaml"
    path.write_text(
        "name: portkey\nbase_url: http://127.0.0.1:8787\n"
        "headers: {x-portkey-api-key: '${PORTKEY_API_KEY}', x-portkey-provider: openai}\n"
        "secret_headers: [X-Portkey-Api-Key]\n",
        "utf-8",
    )
    target = load_target(path, {"PORTKEY_API_KEY": "pk-live-0123456789abcdef"})
    assert target.secret_headers == frozenset({"x-portkey-api-key"})
    redactor = target.redactor()
    assert redactor.headers(target.headers_for("openai")) == {
        "x-portkey-api-key": "pk-…cdef",
        "x-portkey-provider": "openai",
    }
    # the value is masked wherever an answer quotes it
    assert redactor.text("unknown key pk-live-0123456789abcdef") == "unknown key pk-…cdef"
