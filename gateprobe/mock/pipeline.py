"""One model call through the mock: admit, try the upstream, answer, settle.

The stages, one module each:

    admission   authenticate, rate-limit, parse, resolve the model, reserve the quota
    retry       the upstream attempts that fail before one answers (``fail-attempts-N``)
    answer      the upstream's error, a plain body or a timed stream; settles what it delivered
    settle      settle a success to its real usage, or roll the reservation back

The order is the one gateways use and clients rely on: a bad key is refused before the body
is looked at (401 before 400); a rate-limited, invalid or refused request is never charged;
an upstream failure rolls the reservation back; a success settles it to the real usage.

Policies where the seeds are silent:
- a client that disconnects mid-stream is charged its prompt and the completion tokens that
  were written to it before the disconnect, never more;
- an upstream that fails mid-stream (``fail-after-N``, ``cut-after-N``) is a failed call: the
  reservation is rolled back in full and the client is told in-band (or the stream is cut).
- a model's own budget (``ModelConfig.budget``, shared by every key) is reserved from with the
  key's quota, strictly: a call whose estimate its remainder cannot cover is refused with
  ``model_budget_status`` (429) before the upstream is called, whatever the key has left.
"""

from __future__ import annotations

from gateprobe.mock.admission import admit
from gateprobe.mock.answer import answer
from gateprobe.mock.call_types import RequestContext, Writer
from gateprobe.mock.retry import attempt_upstream
from gateprobe.mock.settle import roll_back
from gateprobe.mock.state import MockState

__all__ = ["run_call"]


async def run_call(state: MockState, writer: Writer, ctx: RequestContext) -> None:
    """Answer one model call; raises GatewayError for an error answer before any byte."""
    call = admit(state, writer, ctx)
    try:
        if call.directives.fail_attempts:
            call.retries = attempt_upstream(state, call, call.pinned, ctx.log)
        await answer(state, call, ctx)
    except BaseException:
        # whatever ended the call before it settled (an upstream error, the task cancelled
        # when the client went): the quota it reserved is given back
        roll_back(state, call.reservation)
        raise
