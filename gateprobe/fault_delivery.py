"""Confirming that a fault directive reaches the upstream before blaming the gateway for it.

A scenario that injects a fault (``fault: error-503``) judges how the gateway relays the
upstream's failure. Through a gateway that drops the directive (an unknown header, a model name
it rewrites) no fault happens, and the gateway would be blamed for relaying a success. So before
the first faulty request of a kind, the same request is sent once with the harmless directive
``mark-<n>``, delivered the same way: the bundled mock then starts its answer with the word
``gateprobe-mark-<n>``. If the word comes back, directives of that kind reach the upstream; if
not, the scenario is skipped with the reason, never failed. Results are kept per target, route
and stream kind for the rest of the process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateprobe.http import Exchange
from gateprobe.protocol import BuiltRequest

__all__ = ["MARK", "delivery_problem"]

MARK = 7319  # any number: the mock echoes it, so a cached or unrelated answer cannot pass
_WORD = f"gateprobe-mark-{MARK}"

# (target name, base URL, protocol, operation or path, stream kind) -> problem or None
_CONFIRMED: dict[tuple[str, ...], str | None] = {}


def delivery_problem(
    spec: Mapping[str, Any],
    built: BuiltRequest,
    target_name: str,
    base_url: str,
    directives: str,
    call: Callable[[Mapping[str, Any]], Exchange],
) -> str | None:
    """None when ``built``'s fault can reach the upstream, else why it cannot (a skip reason).

    ``spec`` is the step's rendered request; ``call`` sends a spec to the same target.
    """
    route = str(spec.get("operation") or spec.get("path") or "")
    key = (target_name, base_url, str(built.protocol), route, str(built.stream), directives)
    if key not in _CONFIRMED:
        _CONFIRMED[key] = _probe(spec, built, directives, call)
    problem = _CONFIRMED[key]
    if problem is None:
        return None
    return f"the fault {built.fault!r} could not be delivered through this gateway: {problem}"


def _probe(
    spec: Mapping[str, Any],
    built: BuiltRequest,
    directives: str,
    call: Callable[[Mapping[str, Any]], Exchange],
) -> str | None:
    probe = {k: v for k, v in spec.items() if k not in ("disconnect_after_events", "read_timeout")}
    probe["fault"] = f"mark-{MARK}"
    answer = call(probe)
    how = (
        "in the model name"
        if directives == "model" and "operation" in spec
        else "in the x-gateprobe-directives header"
    )
    if answer.status is None:
        return f"a probe with the directive mark-{MARK} {how} got no answer ({answer.error})"
    if _WORD.encode() in answer.body:
        return None
    hint = (
        " (directives: header sends them as a header instead)"
        if directives == "model"
        else " (the gateway does not forward the header; directives: model sends them in the "
        "model name)"
    )
    return (
        f"a probe with the directive mark-{MARK} {how} answered HTTP {answer.status} "
        f"without the upstream's mark {_WORD!r}{hint}"
    )
