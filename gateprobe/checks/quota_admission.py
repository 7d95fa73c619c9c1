"""Admission checks: a key is refused below the pre-deduct estimate, and a burst of calls
against a small quota never takes more than there is.

Both replay the step's request with keys made for the run where the probe can make them
(the mock), so the target's own keys are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateprobe.checks._registry import FLAG, CheckContext, Prelude, check
from gateprobe.checks.quota import (
    QuotaBefore,
    open_probe,
    probe_errors,
    read_balance,
    settled,
    state_of,
    with_key,
)
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange
from gateprobe.quota import QuotaProbe, probe_class, unavailable
from gateprobe.request import BuiltRequest
from gateprobe.target import Target

__all__ = ["replay_spec"]

BIG_BALANCE = 10**12  # the account behind a fresh key: never what limits it


def replay_spec(request: BuiltRequest, secret: str | None = None) -> dict[str, Any]:
    """A request spec that sends ``request`` again, with ``secret`` instead of its key."""
    if secret is not None:
        request = with_key(request, secret)
    spec: dict[str, Any] = {
        "method": request.method,
        "path": request.url,
        "key": None,
        "headers": dict(request.headers),
    }
    if request.content is not None:
        spec["raw_body"] = request.content.decode("utf-8", errors="replace")
    elif request.json_body is not None:
        spec["body"] = request.json_body
    if request.stream:
        spec["stream"] = "array" if request.stream == "array" else True
    return spec


def _call(ctx: CheckContext, name: str, spec: Mapping[str, Any]) -> Exchange:
    if ctx.call is None:
        raise CheckFailed(name, "no target to send the replayed calls to", where="quota")
    return ctx.call(spec)


def _creates_keys(target: Target) -> str | None:
    reason = unavailable(target)
    cls = probe_class(target)
    if reason is None and cls is not None and not (cls.can_create_keys and cls.shows_reservations):
        reason = f"the {target.quota_probe!r} quota probe cannot make keys with a set quota"
    return reason


# -- quota_burst ------------------------------------------------------------------------


def _burst_before(prelude: Prelude, argument: Any) -> QuotaBefore:
    probe, secret = open_probe("quota_burst", prelude)
    options = dict(argument) if isinstance(argument, Mapping) else {}
    with probe_errors("quota_burst"):
        if probe.can_create_keys:
            quota = int(options.get("quota", 10))
            secret = probe.create_key(quota, int(options.get("balance", BIG_BALANCE)))
    balance = read_balance("quota_burst", probe, secret)
    return QuotaBefore(probe, secret, balance, prelude.request, options)


@check(
    "quota_burst",
    argument={
        "anyOf": [
            {"const": True},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "count": {"type": "integer", "minimum": 1, "description": "a number >= 1"},
                    "quota": {"type": "integer", "minimum": 0, "description": "a number >= 0"},
                    "balance": {"type": "integer", "minimum": 0, "description": "a number >= 0"},
                },
            },
        ],
        "description": "true or {count: N, quota: N, balance: N}",
    },
    before=_burst_before,
    unavailable=unavailable,
)
def quota_burst(ctx: CheckContext, options: Any) -> None:
    """Concurrent copies of the call on a small quota take no more than it; no balance < 0.

    ``count`` copies (default 8) on a fresh key of ``quota`` units where the probe makes keys,
    else on the step's key.
    """
    state = state_of(ctx, "quota_burst")
    count = int(state.extra.get("count", 8))
    spec = replay_spec(state.request, state.secret)
    with probe_errors("quota_burst"), ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(lambda _: _call(ctx, "quota_burst", spec), range(count)))
    admitted = sum(1 for ex in answers if ex.status == 200)
    after, charges = settled(state, "quota_burst")
    units = state.probe.units
    lowest = after.lowest()
    if lowest is not None and lowest < 0:
        raise CheckFailed(
            "quota_burst",
            f"a balance went negative ({lowest:g} {units}) after {admitted} of {count} "
            "concurrent calls were admitted",
            expected=">= 0",
            actual=lowest,
            where="quota",
        )
    start = state.balance.key_remaining
    taken = charges.get("key")
    if start is not None and taken is not None and taken > start + state.probe.settings.tolerance:
        raise CheckFailed(
            "quota_burst",
            f"{admitted} of {count} concurrent calls took {taken:g} {units} from a key that had "
            f"{start:g}",
            expected=f"<= {start:g}",
            actual=taken,
            where="quota",
        )


# -- quota_admission --------------------------------------------------------------------


def _admission_before(prelude: Prelude, argument: Any) -> QuotaBefore:
    probe, secret = open_probe("quota_admission", prelude)
    return QuotaBefore(
        probe, secret, read_balance("quota_admission", probe, secret), prelude.request, {}
    )


@check("quota_admission", argument=FLAG, before=_admission_before, unavailable=_creates_keys)
def quota_admission(ctx: CheckContext, wanted: bool) -> None:
    """A key one unit below the call's pre-deduct estimate is refused; one with it, admitted.

    On fresh keys whose accounts have plenty of balance: the key's own quota decides.
    """
    if not wanted:
        return
    state = state_of(ctx, "quota_admission")
    probe = state.probe

    def attempt(quota: int | None) -> tuple[Exchange, str]:
        secret = probe.create_key(quota, BIG_BALANCE)
        return _call(ctx, "quota_admission", replay_spec(state.request, secret)), secret

    with probe_errors("quota_admission"):
        _admission(ctx, probe, attempt)


def _admission(
    ctx: CheckContext, probe: QuotaProbe, attempt: Callable[[int | None], tuple[Exchange, str]]
) -> None:
    header = ctx.target.dialect.request_id_header
    first, _ = attempt(None)
    request_id = first.headers.get(header)
    if first.status != 200 or not request_id:
        raise CheckFailed(
            "quota_admission",
            f"a fresh key with unlimited quota was not admitted (HTTP {first.status})",
            expected=200,
            actual=first.status,
            where="status",
        )
    estimate = probe.reservation(request_id)
    if estimate is None or estimate <= 0:
        raise CheckFailed(
            "quota_admission",
            f"the gateway reserved nothing before the call ({estimate!r}): nothing bounds "
            "what a key can overdraw",
            expected="> 0",
            actual=estimate,
            where="quota",
        )
    below, below_key = attempt(int(estimate) - 1)
    if below.status == 200:
        raise CheckFailed(
            "quota_admission",
            f"a key with {int(estimate) - 1} {probe.units}, one below the pre-deduct estimate "
            f"{estimate:g}, was admitted",
            expected=ctx.target.dialect.insufficient_quota_status,
            actual=below.status,
            where="status",
        )
    dialect = ctx.target.dialect
    refusals = {dialect.insufficient_quota_status, getattr(dialect, "exhausted_key_status", None)}
    if below.status not in refusals:
        raise CheckFailed(
            "quota_admission",
            f"a key one below the pre-deduct estimate got HTTP {below.status}, not the "
            f"target's insufficient-quota status {dialect.insufficient_quota_status}",
            expected=dialect.insufficient_quota_status,
            actual=below.status,
            where="status",
        )
    left = probe.read(below_key).key_remaining
    if left is not None and left != int(estimate) - 1:
        raise CheckFailed(
            "quota_admission",
            f"the refused call took {int(estimate) - 1 - left:g} {probe.units} from the key",
            expected=int(estimate) - 1,
            actual=left,
            where="quota",
        )
    at, _ = attempt(int(estimate))
    if at.status != 200:
        raise CheckFailed(
            "quota_admission",
            f"a key with exactly the pre-deduct estimate ({estimate:g} {probe.units}) was "
            f"refused (HTTP {at.status})",
            expected=200,
            actual=at.status,
            where="status",
        )
