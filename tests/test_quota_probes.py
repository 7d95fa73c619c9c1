"""Quota probes against small fake gateways (the response shapes of new-api, one-api and
LiteLLM from the fact sheet) and against the bundled mock (exact figures)."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN, SECRETS

from gateprobe.errors import GateprobeError
from gateprobe.mock import MockServer
from gateprobe.quota import (
    Balance,
    BillingProbe,
    LiteLLMProbe,
    MockProbe,
    NewApiTokenProbe,
    Price,
    ProbeError,
    QuotaSettings,
    probe_for,
    unavailable,
    wait_for,
)
from gateprobe.runner import send
from gateprobe.target import Target, load_target

SECRET = "sk-fake-0123456789abcdef0123"
Routes = dict[str, tuple[int, Any]]


class FakeGateway:
    """A tiny HTTP server answering canned JSON per path; remembers what it was asked."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.seen: list[tuple[str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, body = fake.routes.get(self.path.split("?")[0], (404, {"error": "no"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[[Routes], FakeGateway]]:
    started: list[FakeGateway] = []

    def start(routes: Routes) -> FakeGateway:
        server = FakeGateway(routes)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def caller(target: Target, client: httpx.Client) -> Callable[..., Any]:
    return functools.partial(send, target=target, client=client)


def target_for(url: str, kind: str, **options: Any) -> Target:
    return Target(name=f"fake-{kind}", base_url=url, quota_probe=kind, quota_options=options)


# -- new-api: GET /api/usage/token/ -----------------------------------------------------------


def token_usage(available: int, used: int, unlimited: bool = False) -> dict[str, Any]:
    return {
        "code": True,
        "message": "ok",
        "data": {
            "object": "token_usage",
            "name": "gp-token",
            "total_granted": available + used,
            "total_used": used,
            "total_available": available,
            "unlimited_quota": unlimited,
            "model_limits": {},
            "model_limits_enabled": False,
            "expires_at": 0,
        },
    }


def test_new_api_reads_the_token_in_raw_quota_units(fake: Any, http: httpx.Client) -> None:
    server = fake({"/api/usage/token/": (200, token_usage(750, 250))})
    target = target_for(server.url, "new-api")
    probe = probe_for(target, caller(target, http))
    assert isinstance(probe, NewApiTokenProbe)
    reading = probe.read(SECRET)
    assert reading == Balance(key_remaining=750.0, key_used=250.0, key_name="gp-token")
    path, headers = server.seen[-1]
    assert path == "/api/usage/token/" and headers["authorization"] == f"Bearer {SECRET}"
    server.routes["/api/usage/token/"] = (200, token_usage(0, 90, unlimited=True))
    assert probe.read(SECRET).key_remaining is None  # unlimited: only the use is known


def test_probe_error_is_a_gateprobe_error() -> None:
    assert issubclass(ProbeError, GateprobeError)


def test_new_api_failures_are_probe_errors_without_the_key(fake: Any, http: httpx.Client) -> None:
    refused = {"success": False, "message": "Invalid Bearer token"}
    server = fake({"/api/usage/token/": (401, refused)})
    target = target_for(server.url, "new-api")
    with pytest.raises(ProbeError) as info:
        probe_for(target, caller(target, http)).read(SECRET)
    assert "HTTP 401" in str(info.value)
    assert SECRET not in str(info.value) and "sk-…0123" in str(info.value)
    server.routes["/api/usage/token/"] = (200, refused)  # the error body with HTTP 200
    with pytest.raises(ProbeError, match="Invalid Bearer token"):
        probe_for(target, caller(target, http)).read(SECRET)


# -- new-api and one-api: /v1/dashboard/billing/* ------------------------------------------------


def billing(limit_usd: float, usage_cents: float, per_unit: int | None) -> Routes:
    routes: Routes = {
        "/v1/dashboard/billing/subscription": (
            200,
            {
                "object": "billing_subscription",
                "has_payment_method": True,
                "soft_limit_usd": limit_usd,
                "hard_limit_usd": limit_usd,
                "system_hard_limit_usd": limit_usd,
                "access_until": 0,
            },
        ),
        "/v1/dashboard/billing/usage": (200, {"object": "list", "total_usage": usage_cents}),
    }
    if per_unit is not None:
        routes["/api/status"] = (200, {"success": True, "data": {"quota_per_unit": per_unit}})
    return routes


def test_billing_converts_usd_and_cents_with_quota_per_unit_from_status(
    fake: Any, http: httpx.Client
) -> None:
    # 1000 units granted, 250 used, at 500000 units per USD: $0.002 and 0.05 cents.
    server = fake(billing(0.002, 0.05, 500_000))
    target = target_for(server.url, "one-api")
    probe = probe_for(target, caller(target, http))
    assert isinstance(probe, BillingProbe)
    assert probe.read(SECRET) == Balance(key_remaining=750.0, key_used=250.0)
    assert [p for p, _ in server.seen].count("/api/status") == 1
    probe.read(SECRET)
    assert [p for p, _ in server.seen].count("/api/status") == 1  # read once per probe


def test_billing_takes_the_profiles_quota_per_unit_and_knows_unlimited(
    fake: Any, http: httpx.Client
) -> None:
    server = fake(billing(100_000_000, 2.0, None))  # no /api/status at all
    target = target_for(server.url, "one-api", quota_per_unit=1000)
    reading = probe_for(target, caller(target, http)).read(SECRET)
    assert reading.key_remaining is None and reading.key_used == 20.0
    assert "/api/status" not in [p for p, _ in server.seen]


def test_billing_error_with_http_200_is_a_probe_error(fake: Any, http: httpx.Client) -> None:
    routes = billing(1.0, 0.0, 500_000)
    routes["/v1/dashboard/billing/usage"] = (
        200,
        {"error": {"message": "database is locked", "type": "upstream_error"}},
    )
    target = target_for(fake(routes).url, "one-api")
    with pytest.raises(ProbeError, match="database is locked"):
        probe_for(target, caller(target, http)).read(SECRET)


# -- LiteLLM: GET /key/info ---------------------------------------------------------------------


def test_litellm_reads_spend_and_budget_in_usd(fake: Any, http: httpx.Client) -> None:
    info = {"spend": 0.25, "max_budget": 1.0, "key_alias": "gp", "status": "active"}
    server = fake({"/key/info": (200, {"key": SECRET, "info": info})})
    target = target_for(server.url, "litellm")
    probe = probe_for(target, caller(target, http))
    assert isinstance(probe, LiteLLMProbe) and probe.units == "USD" and not probe.whole_units
    assert probe.read(SECRET) == Balance(key_remaining=0.75, key_used=0.25, key_name="gp")
    server.routes["/key/info"] = (200, {"key": SECRET, "info": {**info, "max_budget": None}})
    assert probe.read(SECRET).key_remaining is None
    server.routes["/key/info"] = (404, {"error": {"message": "Key not found in database"}})
    with pytest.raises(ProbeError, match="HTTP 404"):
        probe.read(SECRET)


# -- choosing a probe ---------------------------------------------------------------------------


def test_no_probe_says_why() -> None:
    none = Target(name="gw", base_url="http://127.0.0.1:1", quota_probe="none")
    assert unavailable(none) == "target 'gw' has no quota probe (quota_probe: none)"
    with pytest.raises(ProbeError, match="no quota probe"):
        probe_for(none, lambda spec: None)  # type: ignore[arg-type,return-value]
    mock_without_admin = Target(
        name="m", base_url="http://127.0.0.1:1", quota_probe="gateprobe-mock"
    )
    assert "needs an `admin` key" in str(unavailable(mock_without_admin))


def test_profile_options_load_and_default(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: gw\nbase_url: http://127.0.0.1:3000\nquota_probe:\n  kind: new-api\n"
        "  poll: {timeout: 2.5}\n  tolerance: 1\n  policy: {client_disconnect: refund}\n"
        "  prices: {gpt-4o-mini: {input_ratio: 0.075, completion_ratio: 4}}\n",
        "utf-8",
    )
    target = load_target(path, {})
    assert target.quota_probe == "new-api"
    settings = QuotaSettings.from_mapping(target.quota_options)
    assert (settings.timeout, settings.interval, settings.tolerance) == (2.5, 0.1, 1.0)
    assert dict(settings.policy) == {
        "client_disconnect": "refund",
        "upstream_failure_midstream": "delivered",
    }
    price = settings.prices["gpt-4o-mini"]
    assert price == Price(input_ratio=0.075, completion_ratio=4.0)
    assert price.cost(8, 16, whole_units=True) == 6.0  # ceil((8 + 64) * 0.075) = ceil(5.4)
    assert price.cost(8, 16, whole_units=False) == pytest.approx(5.4)


def test_wait_for_polls_until_done_and_gives_up_at_the_timeout() -> None:
    readings = iter([Balance(account=10), Balance(account=10), Balance(account=7)])
    settings = QuotaSettings(timeout=2.0, interval=0.01)
    assert wait_for(lambda: next(readings), lambda b: b.account == 7, settings).account == 7
    started = time.monotonic()
    last = wait_for(lambda: Balance(account=1), lambda b: False, QuotaSettings(timeout=0.1))
    assert last.account == 1 and 0.1 <= time.monotonic() - started < 1.0


def test_charges_are_read_per_scope() -> None:
    before = Balance(key_remaining=100, key_used=5, account=1000)
    assert Balance(key_remaining=94, key_used=11, account=994).charged_since(before) == {
        "key": 6,
        "account": 6,
    }
    unlimited = Balance(key_used=5, account=1000)
    assert Balance(key_used=9).charged_since(unlimited) == {"key": 4}
    assert Balance(key_remaining=-3, account=5).lowest() == -3 and Balance().lowest() is None


# -- against the bundled mock -------------------------------------------------------------------


def mock_target(url: str, kind: str) -> Target:
    return Target(
        name="mock",
        base_url=url,
        keys={"admin": ADMIN["x-gateprobe-admin"]},
        quota_probe=kind,
    )


def test_the_mock_probe_reads_prices_logs_and_reservations_exactly(
    mock: MockServer, http: httpx.Client
) -> None:
    target = mock_target(mock.url, "gateprobe-mock")
    probe = probe_for(target, caller(target, http))
    assert isinstance(probe, MockProbe)
    secret = probe.create_key(quota=1000, balance=5000)
    before = probe.read(secret)
    assert (before.key_remaining, before.key_used, before.account) == (1000, 0, 5000)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answer = http.post(
        f"{mock.url}/v1/chat/completions",
        json=body | {"max_tokens": 16},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200
    usage = answer.json()["usage"]
    price = probe.price("gpt-4o-mini--itl-5")  # directives do not change the price
    assert price == Price(input_ratio=0.075, completion_ratio=4.0, multiplier=1.0)
    cost = price.cost(usage["prompt_tokens"], usage["completion_tokens"], whole_units=True)
    after = wait_for(lambda: probe.read(secret), lambda b: not b.pending, probe.settings)
    assert after.charged_since(before) == {"key": cost, "account": cost}
    request_id = answer.headers["x-request-id"]
    reserved = probe.reservation(request_id)
    assert reserved is not None and reserved >= cost
    record = wait_for(
        lambda: Balance(account=1 if probe.usage_record(request_id) else 0),
        lambda b: b.account == 1,
        probe.settings,
    )
    assert record.account == 1
    logged = probe.usage_record(request_id)
    assert logged is not None and logged["cost"] == cost and logged["key"] == after.key_name
    assert probe.reservation("gp-no-such-request") is None


def test_the_gateway_probes_agree_with_the_mock_on_a_call(
    mock: MockServer, http: httpx.Client
) -> None:
    """The mock answers new-api's token and billing endpoints too: same charge, three ways."""
    secret = SECRETS["low_quota"]  # a key with its own quota (10 units)
    probes = [
        probe_for(mock_target(mock.url, kind), caller(mock_target(mock.url, kind), http))
        for kind in ("gateprobe-mock", "new-api", "one-api")
    ]
    before = [p.read(secret) for p in probes]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answer = http.post(
        f"{mock.url}/v1/chat/completions",
        json=body | {"max_tokens": 4},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200
    charged = [p.read(secret).charged_since(b)["key"] for p, b in zip(probes, before, strict=True)]
    assert charged[0] > 0 and charged == [charged[0]] * 3
