"""The ``budget_enforced`` check: a budget tied to a model, not a key, stops its calls.

A gateway may give a model (a deployment) a spend limit of its own, shared by every key: LiteLLM's
per-deployment ``max_budget`` in ``litellm_params``. Gateways differ in when they refuse. LiteLLM
1.106.2 admits a call while the spend so far is below the budget, so the last admitted call
overshoots it by at most its own cost; the bundled mock reserves the call's estimate and refuses
one whose estimate would cross it. Both end in a refusal within a few calls that stays, which is
what the check asks: it repeats the step's request until one is refused (``max_calls`` calls in
all, the step's own included), expects the target's ``model_budget_status`` with a JSON error,
then two more calls, which must be refused too.

A budget already spent (by an earlier run: LiteLLM keeps the spend until ``budget_duration`` ends
or, without a database, until it restarts) refuses the first call, which passes as long as the
later calls stay refused. The calls spend the budget: on a real gateway it stays spent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateprobe.checks._registry import CheckContext, Prelude, check
from gateprobe.checks.quota_admission import replay_spec
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange
from gateprobe.request import BuiltRequest

__all__: list[str] = []

CHECK = "budget_enforced"
DEFAULT_MAX_CALLS = 12
# Calls after the refusal that must be refused too: one could be a fluke of a gateway that
# refuses every other call, two make a budget that "resets" on refusal show.
AFTER_REFUSAL = 2


def _keep_request(prelude: Prelude, argument: Any) -> BuiltRequest:
    """The step's request as it is sent, for the check to send again."""
    return prelude.request


def _max_calls(argument: Any) -> int:
    value: Any = None
    if argument is True:
        value = DEFAULT_MAX_CALLS
    elif isinstance(argument, Mapping):
        value = argument.get("max_calls", DEFAULT_MAX_CALLS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CheckFailed(
            CHECK,
            f"expects {{max_calls: N}} with N a whole number >= 1, got {argument!r}",
            where="expect",
        )
    return value


def _model(request: BuiltRequest) -> str:
    """The model the request names: its body's ``model``, else the path's (Gemini)."""
    body = request.json_body
    if body is None and request.content is not None:
        try:
            body = json.loads(request.content)
        except ValueError:
            body = None
    if isinstance(body, Mapping) and isinstance(body.get("model"), str):
        return str(body["model"])
    path = request.url.split("?", 1)[0]
    if "/models/" in path:
        return path.rsplit("/models/", 1)[1].split(":", 1)[0]
    return "the model"


def _admitted(answer: Exchange) -> bool:
    return answer.status is not None and 200 <= answer.status < 300


def _gist(answer: Exchange) -> str:
    """What the refusal says, briefly: its error message, else the start of its body."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    text = message if isinstance(message, str) and message else answer.text()
    text = " ".join(text.split())
    return text[:160] + ("..." if len(text) > 160 else "")


def _check_refusal(ctx: CheckContext, answer: Exchange, n: int, model: str) -> None:
    wanted = ctx.target.dialect.model_budget_status
    if answer.status != wanted:
        raise CheckFailed(
            CHECK,
            f"call {n} to {model} was refused with HTTP {answer.status}, not the target's "
            f"model-budget status {wanted}: {_gist(answer)}",
            expected=wanted,
            actual=answer.status,
            where="status",
        )
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) or (isinstance(error, str) and error)):
        raise CheckFailed(
            CHECK,
            f"the refusal of call {n} to {model} is not a JSON error "
            f"({answer.content_type or 'untyped'}): {_gist(answer)}",
            expected='a JSON object with an "error"',
            actual=answer.text()[:200],
            where="body",
        )


@check(
    CHECK,
    argument={
        "anyOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "max_calls": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "a whole number of calls >= 1",
                    }
                },
            },
        ],
        "description": "true, false or {max_calls: N}",
    },
    before=_keep_request,
)
def budget_enforced(ctx: CheckContext, argument: Any) -> None:
    """Repeating the call to a model with a budget ends in a refusal that stays refused.

    ``{max_calls: N}``: within N calls (the step's first), one is refused with the dialect's
    ``model_budget_status`` and a JSON error, and the two calls after it are refused too. A
    first call already refused (a budget spent earlier) passes if the later ones are refused.
    """
    if argument is False:
        return
    limit = _max_calls(argument)
    request = ctx.before.get(CHECK)
    if not isinstance(request, BuiltRequest):
        raise CheckFailed(CHECK, "the step's request was not kept to send again", where="request")
    if ctx.call is None:
        raise CheckFailed(CHECK, "no target to send the repeated calls to", where="call")
    spec = replay_spec(request)
    model = _model(request)
    answer, n = ctx.exchange, 1
    admitted: set[int] = set()
    while answer.status is not None and _admitted(answer):
        admitted.add(answer.status)
        if n >= limit:
            seen = "/".join(str(s) for s in sorted(admitted))
            raise CheckFailed(
                CHECK,
                f"the model budget was never enforced: {n} calls to {model} all answered {seen}",
                expected=f"a refusal within {limit} calls",
                actual=f"{n} calls admitted",
                where="status",
            )
        answer, n = ctx.call(spec), n + 1
    if answer.status is None:
        raise CheckFailed(
            CHECK,
            f"call {n} to {model} got no answer: {answer.error}",
            expected="an HTTP response",
            actual=answer.error,
            where="transport",
        )
    _check_refusal(ctx, answer, n, model)
    for later in range(n + 1, n + 1 + AFTER_REFUSAL):
        again = ctx.call(spec)
        if _admitted(again):
            raise CheckFailed(
                CHECK,
                f"the budget let a call through after refusing one: call {later} to {model} "
                f"answered HTTP {again.status} after call {n} was refused with HTTP "
                f"{answer.status}",
                expected=f"refused (HTTP {ctx.target.dialect.model_budget_status})",
                actual=again.status,
                where="status",
            )
