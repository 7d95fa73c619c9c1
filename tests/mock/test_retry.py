"""Upstream retries (gateprobe/mock/retry.py): bounded, per channel, visible, charged once."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, bearer

from gateprobe.mock import MockServer

CHAT = "/v1/chat/completions"
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "retry me"}],
    "max_tokens": 16,
}


def failing(attempts: int) -> dict[str, str]:
    return bearer() | {"x-gateprobe-directives": f"fail-attempts-{attempts}"}


def main_balance(client: httpx.Client) -> int:
    value: int = client.get("/_gateprobe/state", headers=ADMIN).json()["accounts"]["main"]
    return value


def last_request(client: httpx.Client) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/_gateprobe/requests?limit=1", headers=ADMIN).json()[
        "requests"
    ][0]
    return found


def last_usage(client: httpx.Client) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/_gateprobe/usage?limit=1", headers=ADMIN).json()[
        "records"
    ][0]
    return found


def ledger(client: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get("/_gateprobe/ledger", headers=ADMIN).json()[
        "entries"
    ]
    return entries


def test_a_retried_call_answers_once_is_charged_once_and_shows_its_attempts(
    client: httpx.Client,
) -> None:
    before = main_balance(client)
    response = client.post(CHAT, json=BODY, headers=failing(2))
    assert response.status_code == 200
    usage = response.json()["usage"]
    (entry,) = ledger(client)
    assert entry["state"] == "settled"
    # gpt-4o-mini: input 0.075, completion x4, at the admission channel's price (primary, x1)
    price = math.ceil((usage["prompt_tokens"] + 4 * usage["completion_tokens"]) * 0.075)
    assert entry["charged"] == before - main_balance(client) == price
    attempts = [(a["channel"], a["outcome"]) for a in last_request(client)["attempts"]]
    assert attempts == [
        ("primary", "upstream 503"),
        ("premium", "upstream 503"),
        ("primary", "answered"),
    ]
    record = last_usage(client)
    assert record["attempts"] == last_request(client)["attempts"]
    assert record["channel"] == "primary" and record["cost"] == price


def test_the_directive_also_travels_in_the_model_name(client: httpx.Client) -> None:
    body = BODY | {"model": "gpt-4o-mini--fail-attempts-1", "stream": True}
    response = client.post(CHAT, json=body, headers=bearer())
    assert response.status_code == 200 and "data: [DONE]" in response.text
    assert [a["channel"] for a in last_request(client)["attempts"]] == ["primary", "premium"]
    assert last_usage(client)["channel"] == "premium"
    assert [e["state"] for e in ledger(client)] == ["settled"]


def test_retries_are_bounded_and_a_call_whose_attempts_all_fail_is_refunded(
    client: httpx.Client,
) -> None:
    before = main_balance(client)
    response = client.post(CHAT, json=BODY, headers=failing(3))  # default retry_times: 2
    assert response.status_code == 503
    assert "(3 attempts)" in response.json()["error"]["message"]
    assert len(last_request(client)["attempts"]) == 3
    assert [e["state"] for e in ledger(client)] == ["rolled_back"]
    assert main_balance(client) == before


def test_retry_times_zero_turns_retries_off(mock_factory: Callable[..., MockServer]) -> None:
    server = mock_factory(DEFAULT, retry_times=0)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        response = client.post(CHAT, json=BODY, headers=failing(1))
        assert response.status_code == 503
        assert "(1 attempt)" in response.json()["error"]["message"]


def test_a_pinned_channel_is_not_retried(client: httpx.Client) -> None:
    pinned = failing(1) | {"x-gateprobe-channel": "premium"}
    assert client.post(CHAT, json=BODY, headers=pinned).status_code == 503
    assert [a["channel"] for a in last_request(client)["attempts"]] == ["premium"]


def test_a_model_with_one_channel_is_retried_on_it(client: httpx.Client) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "retry"}]}]}
    headers = {"x-goog-api-key": bearer()["Authorization"][7:]} | failing(1)
    assert client.post(path, json=body, headers=headers).status_code == 200
    assert [a["channel"] for a in last_request(client)["attempts"]] == ["primary", "primary"]


def test_a_call_without_retries_records_no_attempts(client: httpx.Client) -> None:
    assert client.post(CHAT, json=BODY, headers=bearer()).status_code == 200
    assert "attempts" not in last_request(client)
    assert "attempts" not in last_usage(client)


def test_upstream_mode_fails_the_first_identical_requests_then_answers(
    mock_factory: Callable[..., MockServer],
) -> None:
    server = mock_factory(DEFAULT, mode="upstream")
    body = BODY | {"model": "gpt-4o-mini--fail-attempts-2"}
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        statuses = [client.post(CHAT, json=body).status_code for _ in range(4)]
        other = client.post(CHAT, json=body | {"max_tokens": 8}).status_code
    # a gateway in front retries: its third try answers; the next call starts failing afresh
    assert statuses == [503, 503, 200, 503]
    assert other == 503


@pytest.mark.parametrize("directive", ["fail-attempts-0", "fail-attempts-11"])
def test_an_out_of_range_attempt_count_is_refused(client: httpx.Client, directive: str) -> None:
    headers = bearer() | {"x-gateprobe-directives": directive}
    response = client.post(CHAT, json=BODY, headers=headers)
    assert response.status_code == 400
    assert "attempts must be 1-10" in response.json()["error"]["message"]
