"""The quota checks in the engine: skipped without a probe (with the reason), their ``before``
hook reads the balance before the request, and a probe that cannot read fails the step."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selftest import mock_target, run_all
from support import ADMIN

from gateprobe.checks.quota_admission import replay_spec
from gateprobe.errors import UsageError
from gateprobe.mock import MockServer
from gateprobe.request import build_request
from gateprobe.target import Target

CHARGED = """\
id: selftest.quota_charged
title: charged
steps:
  - request: {protocol: openai, operation: chat, body: {max_tokens: 8}}
    expect: {status: 200, quota_charged: usage}
"""
LOGGED = CHARGED.replace("quota_charged: usage", "quota_logged: true")
ADMISSION = CHARGED.replace("quota_charged: usage", "quota_admission: true")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def with_probe(target: Target, kind: str) -> Target:
    return dataclasses.replace(target, quota_probe=kind, quota_options={"kind": kind})


@pytest.mark.parametrize(
    ("scenario", "kind", "reason"),
    [
        (CHARGED, "none", "target 'bundled-mock' has no quota probe (quota_probe: none)"),
        (LOGGED, "new-api", "the 'new-api' quota probe reads no usage log"),
        (ADMISSION, "litellm", "the 'litellm' quota probe cannot make keys with a set quota"),
    ],
)
def test_quota_scenarios_are_skipped_with_the_reason(
    mock: MockServer, http: httpx.Client, tmp_path: Path, scenario: str, kind: str, reason: str
) -> None:
    target = with_probe(mock_target(mock.url), kind)
    (outcome,) = run_all(tmp_path, scenario, target, http)
    assert outcome.verdict == "skip"
    assert outcome.reason == reason
    requests = http.get(f"{mock.url}/_gateprobe/requests", headers=ADMIN)
    assert requests.json()["requests"] == []  # nothing was sent


def test_a_probe_that_cannot_read_fails_the_step_before_the_call(
    mock: MockServer, http: httpx.Client, tmp_path: Path
) -> None:
    target = mock_target(mock.url)
    wrong_admin = dataclasses.replace(target, keys={**target.keys, "admin": "not-the-token"})
    (outcome,) = run_all(tmp_path, CHARGED, wrong_admin, http)
    assert outcome.verdict == "fail"
    assert outcome.reason.startswith("quota_charged: cannot make a key for the run: reading")
    assert "/_gateprobe/quota answered HTTP 401" in outcome.reason
    assert target.keys["valid"] not in outcome.reason  # the key is masked
    assert outcome.steps[0].exchange is None  # the step's request was never sent


def test_the_charge_is_compared_with_the_price(
    mock: MockServer, http: httpx.Client, tmp_path: Path
) -> None:
    """A price in the profile that is not the gateway's makes the exact comparison fail."""
    target = mock_target(mock.url)
    (outcome,) = run_all(tmp_path, CHARGED, target, http)
    assert outcome.verdict == "pass", outcome.reason
    wrong = dataclasses.replace(
        target,
        quota_probe="new-api",
        quota_options={
            "kind": "new-api",
            "poll": {"timeout": 0.2},
            "prices": {"gpt-4o-mini": {"input_ratio": 100}},
        },
    )
    (outcome,) = run_all(tmp_path, CHARGED, wrong, http)
    assert outcome.verdict == "fail"
    assert "at its price that is" in outcome.reason


def test_an_unknown_expectation_names_the_known_ones(
    mock: MockServer, http: httpx.Client, tmp_path: Path
) -> None:
    # refused when the scenario is loaded, before anything is sent
    with pytest.raises(UsageError) as refused:
        run_all(
            tmp_path,
            CHARGED.replace("quota_charged: usage", "quota_charged: lots"),
            mock_target(mock.url),
            http,
        )
    assert refused.value.field == "steps[0].expect.quota_charged"
    assert "one of 0, usage, client_disconnect, upstream_failure_midstream, got 'lots'" in str(
        refused.value
    )


def test_a_replayed_request_carries_the_new_key_everywhere() -> None:
    target = Target(name="gw", base_url="http://127.0.0.1:1", keys={"valid": "sk-old-0123456789"})
    built = build_request(
        {"protocol": "gemini", "operation": "chat", "auth": "query", "stream": True}, target
    )
    spec = replay_spec(built, "sk-new-9876543210")
    assert "sk-old" not in str(spec) and "key=sk-new-9876543210" in spec["path"]
    again = build_request(spec, target)
    assert (again.method, again.url, again.json_body, again.stream) == (
        built.method,
        built.url.replace("sk-old-0123456789", "sk-new-9876543210"),
        built.json_body,
        "sse",
    )
    bearer = build_request({"protocol": "openai", "operation": "chat"}, target)
    headers = build_request(replay_spec(bearer, "sk-new-9876543210"), target).headers
    assert headers["authorization"] == "Bearer sk-new-9876543210"


def test_the_measured_call_uses_a_key_made_for_the_run(
    mock: MockServer, http: httpx.Client, tmp_path: Path
) -> None:
    """The target's own key is left as it was: the call goes out with a clone of it."""
    target = mock_target(mock.url)
    (outcome,) = run_all(tmp_path, CHARGED, target, http)
    assert outcome.verdict == "pass", outcome.reason
    sent = outcome.steps[0].request
    assert sent is not None and sent.secret not in (None, target.keys["valid"])
    assert sent.headers["authorization"] == f"Bearer {sent.secret}"
    keys = http.get(f"{mock.url}/_gateprobe/state", headers=ADMIN).json()["keys"]
    assert keys["valid"]["used"] == 0
    (clone,) = [name for name in keys if name.startswith("gp-quota-")]
    assert keys[clone]["used"] > 0 and keys[clone]["account"] == clone
