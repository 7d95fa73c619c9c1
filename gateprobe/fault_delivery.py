"""Confirming that a fault directive reaches the upstream before blaming the gateway for it.

A scenario that injects a fault (``fault: error-503``) judges how the gateway relays the
upstream's failure. Through a gateway that drops the directive (an unknown header, a model name
it rewrites) no fault happens, and the gateway would be blamed for relaying a success. So before
the first faulty request of a kind, the same request is sent once with the harmless directive
``mark-<n>``, delivered the same way: the bundled mock then starts its answer with the word
``gateprobe-mark-<n>`` (``-streamed`` appended when its answer streamed). If the word comes
back, directives of that kind reach the upstream; if not, the scenario is skipped with the
reason, never failed. A mid-stream fault also needs the upstream call to stream: a gateway that
answers a client's stream from a plain upstream call cannot relay one, so that is a skip too.
Results are kept per target, route and stream kind for the rest of the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from gateprobe.http import Exchange
from gateprobe.request import BuiltRequest

__all__ = ["MARK", "delivery_problem", "visible_text"]

MARK = 7319  # any number: the mock echoes it, so a cached or unrelated answer cannot pass
_WORD = f"gateprobe-mark-{MARK}"
_MARK = re.compile(re.escape(_WORD) + r"(-streamed)?")
# Directives that need the upstream call itself to stream.
_MID_STREAM = frozenset({"fail-after", "cut-after"})
# Where the protocols put visible text: chat message/delta content, Responses deltas and
# output_text, Claude text blocks and text_delta, Gemini parts.
_TEXT_KEYS = frozenset({"content", "text", "delta"})

# (target name, base URL, protocol, operation or path, stream kind, delivery) -> the probe's
# finding: the mark as it came back, or why it did not
_PROBED: dict[tuple[str, ...], tuple[str | None, str | None]] = {}


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
    if key not in _PROBED:
        _PROBED[key] = _probe(spec, directives, call)
    mark, problem = _PROBED[key]
    if problem is None:
        mid_stream = {t.rsplit("-", 1)[0] for t in (built.fault or "").split(",")} & _MID_STREAM
        if built.stream and mid_stream and mark == _WORD:
            problem = (
                f"the gateway answers this stream from a plain (not streamed) upstream call, "
                f"so the upstream cannot fail mid-stream ({', '.join(sorted(mid_stream))}): "
                f"the mark came back as {mark!r}, not {_WORD + '-streamed'!r}"
            )
    if problem is None:
        return None
    return f"the fault {built.fault!r} could not be delivered through this gateway: {problem}"


def _probe(
    spec: Mapping[str, Any],
    directives: str,
    call: Callable[[Mapping[str, Any]], Exchange],
) -> tuple[str | None, str | None]:
    """(the mark as it came back, None) or (None, why it did not)."""
    probe = {k: v for k, v in spec.items() if k not in ("disconnect_after_events", "read_timeout")}
    probe["fault"] = f"mark-{MARK}"
    answer = call(probe)
    how = (
        "in the model name"
        if directives == "model" and "operation" in spec
        else "in the x-gateprobe-directives header"
    )
    if answer.status is None:
        return None, f"a probe with the directive mark-{MARK} {how} got no answer ({answer.error})"
    found = _MARK.search(visible_text(answer))
    if found is not None:
        return found.group(0), None
    hint = (
        " (directives: header sends them as a header instead)"
        if directives == "model"
        else " (the gateway does not forward the header; directives: model sends them in the "
        "model name)"
    )
    return None, (
        f"a probe with the directive mark-{MARK} {how} answered HTTP {answer.status} "
        f"without the upstream's mark {_WORD!r}{hint}"
    )


def visible_text(answer: Exchange) -> str:
    """The answer's text as a client would show it: text fields of the body or its events.

    A gateway may re-cut the upstream's text (LiteLLM streams Claude text 5 characters at a
    time), so the mark is looked for in the joined text, not in the raw bytes.
    """
    documents: list[Any] = []
    if answer.events or answer.elements:
        texts = [e.data for e in answer.events] + [e.text for e in answer.elements]
        for text in texts:
            try:
                documents.append(json.loads(text))
            except ValueError:
                continue
    else:
        try:
            documents.append(answer.json())
        except ValueError:
            return answer.text()
    parts: list[str] = []
    for document in documents:
        _collect(document, parts)
    return "".join(parts)


def _collect(node: Any, parts: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key in _TEXT_KEYS:
                parts.append(value)
            else:
                _collect(value, parts)
    elif isinstance(node, list):
        for item in node:
            _collect(item, parts)
