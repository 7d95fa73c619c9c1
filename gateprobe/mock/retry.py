"""Upstream retries: a call whose upstream attempt fails before the first byte is tried again.

Like new-api's relay loop (``RetryTimes``): an attempt that fails with a retryable status before
any byte reached the client is retried on the next channel that serves the model (in the
configuration's order, wrapping round, so a model with one channel is retried on it), at most
``retry_times`` times. A call pinned to a channel (``<secret>-<channel>``, ``x-gateprobe-channel``)
is not retried. The client sees one answer, and the call is charged once, at the price fixed when
it was admitted (its reservation's), whichever channel finally answers.

An attempt fails when the ``fail-attempts-N`` directive says so: the first N attempts answer 503.
Each retried call's attempts are kept with its received request (``/_gateprobe/requests``) and in
its usage record (``/_gateprobe/usage``). In upstream mode the mock is the upstream, not the
gateway, and does not retry: it fails the first N requests with the same path and body, so a
gateway in front of it that retries sees its retry succeed.

The defect ``double-charge-on-retry`` bills every failed attempt as well, as a gateway that
settles each attempt it made.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateprobe.mock.call_types import Call
from gateprobe.mock.config import ChannelConfig
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.ledger import InsufficientQuota
from gateprobe.mock.state import MockState

__all__ = ["RETRY_STATUS", "attempt_upstream", "charge_failed_attempts"]

RETRY_STATUS = 503
_UPSTREAM_MEMORY = 1000  # request contents whose failed attempts upstream mode remembers


def _failure(attempts: int) -> GatewayError:
    noun = "attempt" if attempts == 1 else "attempts"
    return GatewayError(
        RETRY_STATUS,
        "upstream_error",
        f"Upstream returned HTTP {RETRY_STATUS} ({attempts} {noun})",
    )


def _rotation(state: MockState, model: str, first: ChannelConfig) -> list[ChannelConfig]:
    """The channels serving ``model``, starting with the one the call was admitted on."""
    serving = [c for c in state.config.channels if c.serves(model)]
    if first not in serving:
        return [first]
    start = serving.index(first)
    return serving[start:] + serving[:start]


def attempt_upstream(state: MockState, call: Call, pinned: str | None, log: dict[str, Any]) -> int:
    """Make the call's failing attempts; how many failed before one answered.

    Raises the last failure when every allowed attempt failed.
    """
    wanted = call.directives.fail_attempts or 0
    if not wanted:
        return 0
    if state.config.mode == "upstream":
        _fail_as_upstream(state, call, wanted)
        return 0
    allowed = 1 + (0 if pinned is not None else state.config.retry_times)
    channels = _rotation(state, call.model.id, call.channel)
    failed = min(wanted, allowed)
    attempts: list[dict[str, Any]] = [
        {
            "attempt": n + 1,
            "channel": channels[n % len(channels)].id,
            "outcome": f"upstream {RETRY_STATUS}",
        }
        for n in range(failed)
    ]
    log["attempts"] = attempts
    state.record_attempts(call.request_id, attempts)
    if failed == allowed:
        raise _failure(failed)
    serving = channels[failed % len(channels)]
    attempts.append({"attempt": failed + 1, "channel": serving.id, "outcome": "answered"})
    log["channel"] = serving.id
    return failed


def _fail_as_upstream(state: MockState, call: Call, wanted: int) -> None:
    request = call.request
    content = hashlib.blake2b(request.path.encode() + b"\0" + request.body, digest_size=16)
    fingerprint = content.hexdigest()
    memory = state.failed_attempts
    seen = memory.pop(fingerprint, 0)
    if seen >= wanted:
        return  # this one answers; the next identical request starts failing again
    memory[fingerprint] = seen + 1
    while len(memory) > _UPSTREAM_MEMORY:
        memory.popitem(last=False)
    raise _failure(1)


def charge_failed_attempts(state: MockState, call: Call, cost: int, detail: dict[str, Any]) -> int:
    """``double-charge-on-retry``: each failed attempt settled at ``cost``; what it took."""
    key = call.key
    if key is None or cost <= 0:
        return 0
    taken = 0
    for n in range(1, call.retries + 1):
        try:
            extra = state.ledger.reserve(f"{call.request_id}-attempt-{n}", key, cost)
        except InsufficientQuota:
            break
        taken += state.ledger.settle(extra, cost, detail=detail)
    return taken
