"""What gateprobe knows of each API, one module per API, found through one registry.

    openai_chat        Chat Completions, and the ``openai`` protocol's prefix, auth, envelope
                       and its other operations (models, embeddings, images, rerank)
    openai_responses   Responses (and /responses/compact), the ``openai`` protocol's second API
    anthropic          Claude Messages
    gemini             generateContent / streamGenerateContent

A scenario step and a target profile name a *protocol* (``openai``, ``anthropic``,
``gemini``); ``api(protocol, operation)`` (or ``api_for_path``) picks the API that speaks
it. Checks, the load generator, quota and stream metrics ask the API instead of comparing
protocol names. The bundled mock keeps its own writers (gateprobe/mock/protocols/): a second,
independent implementation on purpose.

Adding an API: one module here (an ``Api`` subclass and its stream grammar) listed in
``APIS``, its writer in gateprobe/mock/protocols/, its schemas and its suite parameters
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from gateprobe.protocols._api import (
    DONE,
    NOTHING,
    TERMINATED,
    VISIBLE,
    Answer,
    Api,
    Delta,
    GrammarOptions,
    Operation,
    Payload,
    Usage,
    decoded,
    fail,
    json_object,
    loads,
)
from gateprobe.protocols.anthropic import ANTHROPIC
from gateprobe.protocols.gemini import GEMINI
from gateprobe.protocols.openai_chat import OPENAI_CHAT, PROMPT
from gateprobe.protocols.openai_responses import OPENAI_RESPONSES

__all__ = [
    "APIS",
    "DONE",
    "NOTHING",
    "PROMPT",
    "PROTOCOLS",
    "TERMINATED",
    "VISIBLE",
    "Answer",
    "Api",
    "Delta",
    "GrammarOptions",
    "Operation",
    "Payload",
    "Usage",
    "api",
    "api_for_path",
    "api_of_answer",
    "api_of_event",
    "decoded",
    "fail",
    "json_object",
    "loads",
    "model_probes",
    "operations",
    "primary",
    "protocol_of_operation",
]

APIS: tuple[Api, ...] = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)
PROTOCOLS: tuple[str, ...] = tuple(dict.fromkeys(a.protocol for a in APIS))
_PRIMARY: Mapping[str, Api] = {a.protocol: a for a in APIS if a.primary}


def primary(protocol: str | None) -> Api:
    """The API that speaks for ``protocol`` (its prefix, auth forms, envelope); openai when
    none is named."""
    found = _PRIMARY.get(protocol or "openai")
    if found is None:
        raise KeyError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    return found


def operations(protocol: str) -> dict[str, Operation]:
    """Every operation of ``protocol``, from all its APIs."""
    out: dict[str, Operation] = {}
    for each in APIS:
        if each.protocol == protocol:
            out.update(each.operations)
    return out


def model_probes() -> dict[str, str]:
    """target.models entry -> the operation that calls a model of it (``Api.model_probe``)."""
    out: dict[str, str] = {}
    for each in APIS:
        for name, operation in each.operations.items():
            if operation.body is not None:  # a call, not a lookup
                out.setdefault(operation.capability, each.model_probe or name)
    return out


def protocol_of_operation(protocol: str, operation: str) -> str:
    """``protocol`` when it defines ``operation``, else the first protocol that does."""
    if operation in operations(protocol):
        return protocol
    return next((p for p in PROTOCOLS if operation in operations(p)), protocol)


def api(protocol: str | None, operation: str | None = None) -> Api:
    """The API of ``protocol`` that answers ``operation``; the primary one otherwise."""
    if operation is not None:
        for each in APIS:
            if each.protocol == (protocol or "openai") and operation in each.operations:
                return each
    return primary(protocol)


def api_for_path(protocol: str | None, path: str, events: Sequence[Payload] = ()) -> Api:
    """The API of ``protocol`` behind a request ``path`` (a raw step has no operation); when
    the path does not say, the stream's events do (an event of another API of the same
    protocol, ``response.created`` say, names it)."""
    path = urlsplit(path).path
    candidates = [a for a in APIS if a.protocol == (protocol or "openai")]
    if not candidates:
        return primary(protocol)
    for each in candidates:
        if each.claims_path(path):
            return each
    for p in events:
        if isinstance(p.data, dict):
            for each in candidates:
                if each.owns_event(p.name, p.data):
                    return each
    return primary(protocol)


def api_of_event(event: str | None, data: Any) -> Api | None:
    """Which API a decoded event (or array element) belongs to, by its shape alone; None
    when nothing in it says (the exchange record does not know its protocol)."""
    if not isinstance(data, dict):
        return None
    for each in APIS:
        if each.owns_event(event, data):
            return each
    return None


def api_of_answer(body: Any) -> Api | None:
    """Which API's plain answer ``body`` is, or None."""
    for each in APIS:
        if each.recognises(body):
            return each
    return None
