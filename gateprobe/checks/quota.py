"""Quota checks: what a call took from the key and its account, read by the target's probe.

Each check reads the balances just before the step's request is sent (its ``before`` hook)
and again after the answer, polling within the profile's timeout because refunds and
charges may land later. A target whose profile has no quota probe skips these scenarios.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateprobe.checks._registry import FLAG, BeforeFn, CheckContext, Prelude, check
from gateprobe.errors import CheckFailed
from gateprobe.quota import Balance, ProbeError, QuotaProbe, probe_for, unavailable, wait_for
from gateprobe.quota.usage import content_pieces, model_of, usage_of
from gateprobe.request import BuiltRequest

__all__ = [
    "QuotaBefore",
    "open_probe",
    "probe_errors",
    "read_balance",
    "settled",
    "state_of",
    "with_key",
]

# Pieces a gateway may have written after the client's last read and before it noticed the
# hang-up: the charge for a disconnect may count this many more than the client received.
DELIVERY_SLACK = 2


@dataclass(frozen=True)
class QuotaBefore:
    """What a quota check's ``before`` hook read: the probe, the key and its balance."""

    probe: QuotaProbe
    secret: str
    balance: Balance
    request: BuiltRequest
    extra: Mapping[str, Any]


def open_probe(check_name: str, prelude: Prelude) -> tuple[QuotaProbe, str]:
    if prelude.call is None:
        raise CheckFailed(check_name, "no target to read balances from", where="quota")
    if not prelude.request.secret:
        raise CheckFailed(check_name, "the step sends no key, so no quota to read", where="quota")
    try:
        return probe_for(prelude.target, prelude.call), prelude.request.secret
    except ProbeError as exc:
        raise CheckFailed(check_name, str(exc), where="quota") from None


@contextmanager
def probe_errors(check_name: str) -> Iterator[None]:
    """A probe that fails mid-check fails the check, with what the probe could not do."""
    try:
        yield
    except ProbeError as exc:
        raise CheckFailed(check_name, f"the quota probe failed: {exc}", where="quota") from None


def read_balance(check_name: str, probe: QuotaProbe, secret: str) -> Balance:
    try:
        return probe.read(secret)
    except ProbeError as exc:
        raise CheckFailed(check_name, f"cannot read the balance: {exc}", where="quota") from None


def with_key(request: BuiltRequest, secret: str) -> BuiltRequest:
    """``request`` sent with ``secret`` instead of its own key (wherever the key appears)."""
    old = request.secret or ""

    def swap(text: str) -> str:
        return text.replace(old, secret) if old else text

    return dataclasses.replace(
        request,
        url=swap(request.url),
        headers={name: swap(value) for name, value in request.headers.items()},
        secret=secret,
    )


def _snapshot(check_name: str) -> BeforeFn:
    def before(prelude: Prelude, argument: Any) -> QuotaBefore:
        probe, secret = open_probe(check_name, prelude)
        try:  # measure on a key of its own where the probe can make one
            fresh = probe.isolate(secret)
        except ProbeError as exc:
            raise CheckFailed(check_name, f"cannot make a key for the run: {exc}") from None
        if fresh is not None:
            prelude.request = with_key(prelude.request, fresh)
            secret = fresh
        return QuotaBefore(
            probe, secret, read_balance(check_name, probe, secret), prelude.request, {}
        )

    return before


def state_of(ctx: CheckContext, name: str) -> QuotaBefore:
    found = ctx.before.get(name)
    if not isinstance(found, QuotaBefore):
        raise CheckFailed(name, "the balance was not read before the call", where="quota")
    return found


def _fmt(charges: Mapping[str, float]) -> str:
    return ", ".join(f"{scope} {value:g}" for scope, value in charges.items()) or "nothing seen"


def _near(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance + 1e-9


def settled(
    state: QuotaBefore, name: str, done: Callable[[dict[str, float]], bool] | None = None
) -> tuple[Balance, dict[str, float]]:
    """Read again until ``done(charges)`` holds, or the timeout; the last reading.

    Nothing may be in flight (where the probe shows reservations). Without ``done``: until
    nothing is in flight, or, where the probe cannot tell, for the whole timeout, since a
    late charge is what is being looked for.
    """
    probe = state.probe

    def finished(balance: Balance) -> bool:
        if balance.pending:
            return False
        if done is None:
            return balance.pending is not None
        return done(balance.charged_since(state.balance))

    after = wait_for(lambda: read_balance(name, probe, state.secret), finished, probe.settings)
    return after, after.charged_since(state.balance)


def _request_id(ctx: CheckContext) -> str | None:
    return ctx.exchange.headers.get(ctx.target.dialect.request_id_header)


# -- quota_charged ----------------------------------------------------------------------


def _expect_nothing(state: QuotaBefore, why: str) -> None:
    tolerance = state.probe.settings.tolerance
    _, charges = settled(
        state, "quota_charged", lambda c: all(_near(v, 0, tolerance) for v in c.values())
    )
    taken = {k: v for k, v in charges.items() if not _near(v, 0, tolerance)}
    if taken:
        raise CheckFailed(
            "quota_charged",
            f"{why} was charged ({_fmt(taken)} {state.probe.units}); expected the balance back "
            "at its earlier value",
            expected=0,
            actual=dict(taken),
            where="quota",
        )


def _expect_usage(ctx: CheckContext, state: QuotaBefore) -> None:
    usage = usage_of(ctx.exchange, ctx.protocol)
    if usage.completion is None or usage.prompt is None:
        raise CheckFailed(
            "quota_charged",
            "the response reports no usage to compare the charge with",
            expected="usage in the response",
            actual=None,
            where="body",
        )
    probe = state.probe
    model = model_of(ctx.exchange) or ""
    price = probe.price(model)
    tolerance = probe.settings.tolerance
    if price is None:  # no price known: the call must at least cost something
        _, charges = settled(state, "quota_charged", lambda c: any(v > 0 for v in c.values()))
        if not any(v > 0 for v in charges.values()):
            raise CheckFailed(
                "quota_charged",
                f"a successful call was not charged ({_fmt(charges)})",
                expected="> 0",
                actual=dict(charges),
                where="quota",
            )
        return
    cost = price.cost(usage.prompt, usage.completion, whole_units=probe.whole_units)
    _, charges = settled(
        state, "quota_charged", lambda c: all(_near(v, cost, tolerance) for v in c.values())
    )
    wrong = {k: v for k, v in charges.items() if not _near(v, cost, tolerance)}
    if wrong or not charges:
        raise CheckFailed(
            "quota_charged",
            f"charged {_fmt(wrong or charges)} {probe.units} for {usage.prompt} prompt and "
            f"{usage.completion} completion tokens of {model}; at its price that is {cost:g}"
            f"{_multiple(wrong, cost, tolerance) or _summed(ctx, wrong, cost)}",
            expected=cost,
            actual=dict(charges),
            where="quota",
        )


def _multiple(charges: Mapping[str, float], cost: float, tolerance: float) -> str:
    """A hint when every wrong charge is a whole multiple of the cost: charged more than once."""
    if cost <= 0 or not charges:
        return ""
    times = {round(v / cost) for v in charges.values()}
    if len(times) != 1:
        return ""
    (n,) = times
    if n < 2 or not all(_near(v, n * cost, tolerance) for v in charges.values()):
        return ""
    return f" ({n} times that: the call was charged {n} times)"


def _summed(ctx: CheckContext, charges: Mapping[str, float], cost: float) -> str:
    """A hint when a stream was charged more than its last (cumulative) usage report."""
    streamed = bool(ctx.exchange.events or ctx.exchange.elements)
    if streamed and charges and all(v > cost for v in charges.values()):
        return " (more than the stream's last cumulative usage: were its usage reports added up?)"
    return ""


def _expect_delivered(ctx: CheckContext, state: QuotaBefore, situation: str) -> None:
    probe = state.probe
    _, charges = settled(state, "quota_charged")
    delivered = content_pieces(ctx.exchange, ctx.protocol)
    prompt = usage_of(ctx.exchange, ctx.protocol).prompt
    request_id = _request_id(ctx)
    if prompt is None and probe.has_usage_log and request_id:
        record = _record(probe, request_id)
        prompt = record.get("prompt_tokens") if record else None
    price = probe.price(model_of(ctx.exchange) or "")
    negative = {k: v for k, v in charges.items() if v < -probe.settings.tolerance}
    if negative:
        raise CheckFailed(
            "quota_charged",
            f"the balance went up after {situation} ({_fmt(negative)})",
            expected=">= 0",
            actual=dict(negative),
            where="quota",
        )
    if price is None or prompt is None:
        return  # nothing to bound the charge with: the profile gives no price
    bound = price.cost(int(prompt), delivered + DELIVERY_SLACK, whole_units=probe.whole_units)
    over = {k: v for k, v in charges.items() if v > bound + probe.settings.tolerance}
    if over:
        raise CheckFailed(
            "quota_charged",
            f"charged {_fmt(over)} {probe.units} after {situation} with {delivered} content "
            f"pieces delivered; at most {bound:g} (the prompt's {prompt} tokens and "
            f"{delivered} + {DELIVERY_SLACK} delivered)",
            expected=f"<= {bound:g}",
            actual=dict(over),
            where="quota",
        )


SITUATIONS = {
    "client_disconnect": "a client disconnect mid-stream",
    "upstream_failure_midstream": "an upstream failure mid-stream",
}


@check(
    "quota_charged",
    argument={
        "enum": [0, "0", "usage", *SITUATIONS],
        "description": f"one of 0, usage, {', '.join(SITUATIONS)}",
    },
    before=_snapshot("quota_charged"),
    unavailable=unavailable,
)
def quota_charged(ctx: CheckContext, expected: Any) -> None:
    """What the call took from key and account: 0, its usage at its price, or what was delivered.

    ``0``: nothing. ``usage``: the response's usage at the model's price (the mock's prices or
    the profile's ``quota_probe.prices``; without a price, something). ``client_disconnect``,
    ``upstream_failure_midstream``: the profile's policy for that situation, ``refund``
    (nothing) or ``delivered`` (at most the prompt and the tokens delivered).
    """
    state = state_of(ctx, "quota_charged")
    with probe_errors("quota_charged"):
        _charged(ctx, state, expected)


def _charged(ctx: CheckContext, state: QuotaBefore, expected: Any) -> None:
    if expected == 0 or expected == "0":
        _expect_nothing(state, f"a call answered HTTP {ctx.exchange.status}")
    elif expected == "usage":
        _expect_usage(ctx, state)
    elif expected in SITUATIONS:
        situation = SITUATIONS[str(expected)]
        if state.probe.settings.policy.get(str(expected)) == "refund":
            _expect_nothing(state, f"a call ended by {situation}")
        else:
            _expect_delivered(ctx, state, situation)
    else:
        raise CheckFailed(
            "quota_charged",
            f"unknown expectation {expected!r} (0, usage, {', '.join(SITUATIONS)})",
            where="scenario",
        )


# -- quota_logged -----------------------------------------------------------------------


def _record(probe: QuotaProbe, request_id: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = []

    def read() -> Balance:
        record = probe.usage_record(request_id)
        if record is not None:
            found.append(record)
        return Balance()

    try:
        wait_for(read, lambda _: bool(found), probe.settings)
    except ProbeError:
        return None
    return found[-1] if found else None


def _logged_unavailable(target: Any) -> str | None:
    from gateprobe.quota import probe_class

    reason = unavailable(target)
    cls = probe_class(target)
    if reason is None and cls is not None and not cls.has_usage_log:
        reason = f"the {target.quota_probe!r} quota probe reads no usage log"
    return reason


@check(
    "quota_logged",
    argument=FLAG,
    before=_snapshot("quota_logged"),
    unavailable=_logged_unavailable,
)
def quota_logged(ctx: CheckContext, wanted: bool) -> None:
    """The usage log records the call (id, model, key, tokens) at the cost the balance lost."""
    if not wanted:
        return
    state = state_of(ctx, "quota_logged")
    with probe_errors("quota_logged"):
        _logged(ctx, state)


def _logged(ctx: CheckContext, state: QuotaBefore) -> None:
    probe = state.probe
    request_id = _request_id(ctx)
    if not request_id:
        raise CheckFailed("quota_logged", "the response carries no request id", where="headers")
    record = _record(probe, request_id)
    if record is None:
        raise CheckFailed(
            "quota_logged",
            f"no usage log record for request {request_id}",
            expected="a record",
            actual=None,
            where="quota",
        )
    usage = usage_of(ctx.exchange, ctx.protocol)
    after, charges = settled(state, "quota_logged")
    model = model_of(ctx.exchange)
    wanted_fields = {
        "model": model,
        "key": after.key_name,
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
    }
    for field_name, value in wanted_fields.items():
        if value is not None and record.get(field_name) != value:
            raise CheckFailed(
                "quota_logged",
                f"the usage log's {field_name} is {record.get(field_name)!r}, the call's {value!r}",
                expected=value,
                actual=record.get(field_name),
                where=f"quota.log.{field_name}",
            )
    cost = record.get("cost")
    if isinstance(cost, int | float):
        off = {k: v for k, v in charges.items() if not _near(v, cost, probe.settings.tolerance)}
        if off:
            raise CheckFailed(
                "quota_logged",
                f"the usage log says the call cost {cost:g} but the balance went down by "
                f"{_fmt(off)}",
                expected=cost,
                actual=dict(off),
                where="quota.log.cost",
            )
