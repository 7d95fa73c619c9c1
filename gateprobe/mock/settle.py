"""Settling a call: the reservation settled to what was delivered, or rolled back.

A success is charged its real usage; a client that left mid-answer is charged the prompt and
the tokens written to it before it left (nothing when none were); anything else (an upstream
error, a cut or failed stream, a hang the client gave up on) is rolled back in full.
``cost_of`` prices both the estimate admission reserves and the charge settled here, so the
two can only differ by the tokens.
"""

from __future__ import annotations

import math
from typing import Any

from gateprobe.mock.call_types import Call
from gateprobe.mock.config import ChannelConfig, ModelConfig
from gateprobe.mock.ledger import Reservation
from gateprobe.mock.retry import charge_failed_attempts
from gateprobe.mock.state import MockState
from gateprobe.mock.upstream import Completion

__all__ = ["cost_of", "finish", "roll_back"]


def cost_of(model: ModelConfig, channel: ChannelConfig, prompt: int, completion: int) -> int:
    if model.per_call is not None:
        return math.ceil(model.per_call * channel.multiplier)
    units = (prompt + completion * model.completion_ratio) * model.input_ratio * channel.multiplier
    return math.ceil(units)


def finish(
    state: MockState,
    call: Call,
    reservation: Reservation | None,
    completion: Completion | None,
    delivered: int,
    log: dict[str, Any],
    *,
    status: int,
    reason: str | None = None,
) -> None:
    """Settle a success, or a client that left after ``delivered`` tokens; else roll back."""
    charge = (status == 200 and reason is None) or (status == 499 and delivered > 0)
    cost = cost_of(call.model, call.channel, call.prompt_tokens, delivered) if charge else 0
    if reservation is not None:
        if charge:
            detail = {
                "model": call.model.id,
                "channel": call.channel.id,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": delivered,
            }
            cost = state.ledger.settle(reservation, cost, detail=detail)
            if call.retries and "double-charge-on-retry" in state.defects:
                cost += charge_failed_attempts(state, call, cost, detail)
        else:
            state.ledger.rollback(reservation, reason=reason or "failed")
    log["status"] = status
    log["prompt_tokens"] = call.prompt_tokens
    log["completion_tokens"] = delivered
    log["cost"] = cost
    if reason:
        log["end"] = reason


def roll_back(state: MockState, reservation: Reservation | None) -> None:
    """A call that raised before it was settled (an error answer, a cancelled task): the
    reservation is given back in full. The ledger ignores a reservation already settled."""
    if reservation is not None:
        state.ledger.rollback(reservation, reason="error")
