"""The one interface every API module implements, and the plain data they exchange.

An ``Api`` is what gateprobe knows of one wire API: how a request is built (operations,
prefix, auth forms, how a stream is asked for), the error envelope, the stream's framing and
grammar, what one event carries (``Delta``), the usage a plain or streamed answer reports
(``Usage``) and the answer it amounts to (``Answer``). Several APIs may share one *protocol*
(the name scenarios and profiles use): ``openai`` is Chat Completions and Responses.

Grammars and readers take payloads (``Payload``), never a check context, so this package
imports nothing of the checks, the runner or the load generator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gateprobe.errors import CheckFailed
from gateprobe.sse import ArrayElement, SSEEvent

__all__ = [
    "DONE",
    "NOTHING",
    "TERMINATED",
    "VISIBLE",
    "Answer",
    "Api",
    "Delta",
    "GrammarOptions",
    "Operation",
    "Payload",
    "Usage",
    "as_int",
    "decoded",
    "dig",
    "error_message",
    "error_object",
    "fail",
    "json_object",
    "loads",
    "objects_at",
    "parsed_arguments",
]

loads: Callable[[bytes | bytearray | str], Any]
try:  # a C JSON parser: the load generator decodes the events that need it with it
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    from json import loads

DONE = "[DONE]"  # OpenAI chat's terminator, as a Payload's data


@dataclass(frozen=True)
class Payload:
    """One stream event (or Gemini array element) with its JSON parsed."""

    index: int
    name: str | None  # the SSE ``event:`` field; None for data-only frames and array elements
    data: Any  # the parsed JSON; the string "[DONE]" for OpenAI's terminator
    label: str  # "event[3]" or "element[3]": how failures name it
    time: float  # arrival, seconds from the request

    @property
    def type(self) -> str | None:
        kind = self.data.get("type") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None


class Delta(NamedTuple):
    """What one stream event (or one plain answer) carried."""

    visible: bool = False  # text or tool-call arguments
    reasoning: bool = False  # reasoning_content, a thinking delta, a thought part
    output_tokens: int | None = None  # the server's cumulative count, when it reported one
    reasoning_tokens: int | None = None
    error: str | None = None  # an in-band error
    done: bool = False  # the protocol's terminator
    input_tokens: int | None = None


NOTHING = Delta()
VISIBLE = Delta(visible=True)
TERMINATED = Delta(done=True)


@dataclass(frozen=True)
class Usage:
    """What an answer says it used (the last cumulative report of a stream)."""

    prompt: int | None
    completion: int | None


@dataclass
class Answer:
    """What an answer amounts to, plain or joined from a stream."""

    text: str = ""
    tools: list[tuple[str, Any]] = field(default_factory=list)  # (name, parsed arguments)
    finish: str | None = None
    pieces: list[tuple[int, str]] = field(default_factory=list)  # (text offset, event label)
    # events whose text repeated the delta before them and went on (cumulative deltas: a
    # gateway sending the whole answer so far in every event)
    cumulative: list[str] = field(default_factory=list)
    _last: str = ""

    def add(self, text: Any, label: str) -> None:
        """Append one delta's text, noting where it started and whether it repeated the one
        before it."""
        if not isinstance(text, str) or not text:
            return
        if self._last and len(text) > len(self._last) and text.startswith(self._last):
            self.cumulative.append(label)
        self._last = text
        self.pieces.append((len(self.text), label))
        self.text += text

    def label_at(self, offset: int) -> str:
        found = self.pieces[0][1] if self.pieces else "end of stream"
        for start, label in self.pieces:
            if start > offset:
                break
            found = label
        return found


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under the protocol's prefix; {model} is filled in
    capability: str  # which target.models entry supplies the model
    body: Mapping[str, Any] | None


@dataclass(frozen=True)
class GrammarOptions:
    """What a grammar needs beyond the events: the request sent and the target's dialect."""

    request: Mapping[str, Any] = field(default_factory=dict)  # the JSON body sent
    usage_chunk_by_default: bool = False  # OpenAI chat: a usage chunk unasked (new-api)


def decoded(events: Sequence[SSEEvent], elements: Sequence[ArrayElement]) -> list[Payload]:
    """Every event or array element whose data is JSON (or OpenAI's ``[DONE]``), in order;
    the others are left out (the ``stream`` check is the one that fails them)."""
    out: list[Payload] = []
    for element in elements:
        try:
            data = json.loads(element.text)
        except ValueError:
            continue
        out.append(Payload(element.index, None, data, f"element[{element.index}]", element.time))
    for event in events:
        if event.data.strip() == DONE:
            data = DONE
        else:
            try:
                data = json.loads(event.data)
            except ValueError:
                continue
        out.append(Payload(event.index, event.event, data, f"event[{event.index}]", event.time))
    return out


def fail(
    message: str, where: str, expected: Any = None, actual: Any = None, *, check: str = "stream"
) -> CheckFailed:
    return CheckFailed(check, message, expected=expected, actual=actual, where=where)


def as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def error_message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error.get("status") or error)
    return str(error)


def parsed_arguments(text: str) -> Any:
    """Tool-call arguments parsed, or the text itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def json_object(text: Any) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except (TypeError, ValueError):
        return False


def objects_at(body: Any, *path: str | int) -> list[dict[str, Any]]:
    """The JSON objects of the list at ``path`` in ``body`` (content blocks, output items,
    parts); [] when there is none."""
    found = dig(body, *path)
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


def error_object(body: Any) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """An error answer's ``error`` object, or the problem that there is none."""
    if not isinstance(body, dict):
        return None, [("$", "the body is not a JSON object")]
    error = body.get("error")
    if not isinstance(error, dict):
        return None, [("$.error", "missing or not an object")]
    return error, []


def dig(body: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            body = body[step] if isinstance(body, list) and len(body) > step else None
        else:
            body = body.get(step) if isinstance(body, dict) else None
    return body


_DONE_BYTES = DONE.encode()


class Api:
    """One wire API. Subclasses fill in the class attributes and override the readers.

    Protocol-level attributes (prefix, credentials, operations, envelope, capabilities) are
    read from the protocol's *primary* API (``primary = True``); the others share them.
    """

    name: str = ""  # openai_chat, openai_responses, anthropic, gemini
    protocol: str = ""  # the scenario/profile name: openai, anthropic, gemini
    primary: bool = False
    # --- requests
    default_prefix: str = "/v1"
    default_auth: str = "bearer"  # the credential form a step uses unless it names one
    credentials: tuple[str, ...] = ("bearer",)  # forms the seeds document as accepted
    version_headers: Mapping[str, str] = {}  # sent with every request of the protocol
    model_in_body: bool = True  # False: the model is in the path (Gemini)
    operations: Mapping[str, Operation] = {}  # this API's own operations
    # the operation that checks a model of this API's target.models entry is callable; None:
    # the entry's own operation
    model_probe: str | None = None
    # capabilities under the protocol ("chat.stream" -> openai.chat.stream) with what they
    # mean; None: the meaning every protocol shares (gateprobe/capabilities.py)
    features: Mapping[str, str | None] = {}
    # --- streams
    stream_modes: tuple[str, ...] = ("sse",)  # sse, and array for a JSON-array stream
    # what a streamed request adds to be told its usage (OpenAI chat sends none unasked)
    stream_usage_request: Mapping[str, Any] = {}
    stream_schema: str = ""  # the schema every stream event must match
    terminator: str | None = None  # the data of a terminator event ("[DONE]")
    # the key before the text of a plain visible-output event, for the load generator's fast
    # framing (gateprobe/load/framing.py: ChunkTemplate); None: every event is decoded
    output_marker: bytes | None = b'"text"'
    # a block of plain text chunks can be counted without decoding (plain_openai_frames)
    plain_frames_countable: bool = False
    in_band_error: str = ""  # how this API frames an error in a stream, as a user reads it
    in_band_error_required: bool = True  # False: the API defines none (a warning only)

    # --- requests
    def stream_request(self, path: str, body: Any, query: dict[str, str], mode: str) -> str:
        """Ask for a stream (``mode``: sse or array); returns the path to call."""
        if isinstance(body, dict):
            body["stream"] = True
        return path

    def claims_path(self, path: str) -> bool:
        """Whether a request path is this API's own (a raw step names no operation)."""
        return False

    def owns_event(self, event: str | None, data: dict[str, Any]) -> bool:
        """Whether a decoded stream event has this API's shape."""
        return False

    # --- answers and errors
    def envelope_problems(self, body: Any, status: int | None) -> list[tuple[str, str]]:
        """What makes ``body`` not an error of this protocol's envelope: (where, why)."""
        raise NotImplementedError

    def listed_models(self, body: Any) -> list[str] | None:
        """The model ids of a model-list answer, or None when it is not one."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return None
        return [str(m["id"]) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def generates(self, listing: Any, model: str) -> bool:
        """Whether a model of a model-list answer generates content (is worth calling)."""
        return True

    def recognises(self, body: Any) -> bool:
        """Whether ``body`` is this API's plain (non-streamed) answer."""
        return False

    def plain_answer(self, body: Any) -> Answer:
        raise NotImplementedError

    def reasoning_missing(self, body: Any) -> str | None:
        """None when the answer shows reasoning, else what is missing."""
        raise NotImplementedError

    def tools_missing(self, body: Any) -> str | None:
        """None when the answer calls a tool well, else what is wrong."""
        raise NotImplementedError

    # --- streams
    def check_stream(self, events: list[Payload], options: GrammarOptions) -> None:
        """The stream grammar: raises ``CheckFailed`` at the first violation."""
        raise NotImplementedError

    def classify(self, event: str | None, obj: dict[str, Any]) -> Delta:
        """What one decoded stream event carried."""
        raise NotImplementedError

    def classify_data(self, event: str | None, data: str | bytes) -> Delta:
        """What one SSE event's data (or one Gemini array element) carried."""
        if self.terminator is not None and data.strip() in (self.terminator, _DONE_BYTES):
            return TERMINATED
        try:
            obj = loads(data)
        except ValueError:
            return Delta(error=f"event data is not JSON: {data[:80]!r}")
        return self.classify(event, obj) if isinstance(obj, dict) else NOTHING

    def classify_value(self, event: str | None, obj: Any) -> Delta:
        """``classify_data`` for data already decoded."""
        return self.classify(event, obj) if isinstance(obj, dict) else NOTHING

    def classify_answer(self, operation: str, body: bytes) -> Delta:
        """Tokens of a plain answer's body (embeddings: input tokens only)."""
        try:
            obj = loads(body)
        except ValueError:
            return Delta(error="the body is not JSON")
        if not isinstance(obj, dict):
            return Delta(error="the body is not a JSON object")
        return self.classify_body(obj, operation)

    def classify_body(self, obj: dict[str, Any], operation: str) -> Delta:
        """Tokens of a plain answer."""
        usage = obj.get("usage") or {}
        if operation == "embeddings":
            prompt = as_int(usage.get("prompt_tokens"))
            return Delta(visible=True, output_tokens=0, input_tokens=prompt)
        return Delta(
            visible=True,
            output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
            input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        )

    def stream_usage(self, events: Sequence[Payload]) -> Usage:
        """The usage a stream reported: its last cumulative report of each count."""
        prompt: int | None = None
        completion: int | None = None
        for p in events:
            if not isinstance(p.data, dict):
                continue
            delta = self.classify(p.name, p.data)
            prompt = delta.input_tokens if delta.input_tokens is not None else prompt
            completion = delta.output_tokens if delta.output_tokens is not None else completion
        return Usage(prompt, completion)

    def plain_usage(self, body: Any) -> Usage:
        if not isinstance(body, dict):
            return Usage(None, None)
        delta = self.classify_body(body, "chat")
        return Usage(delta.input_tokens, delta.output_tokens)

    def joined_answer(self, events: Sequence[Payload]) -> Answer:
        raise NotImplementedError

    def carries_output(self, event: str | None, obj: dict[str, Any], visible: bool) -> bool:
        """Whether an event carries generated output (a token), not just framing or metadata;
        ``visible``: only output that is not reasoning."""
        raise NotImplementedError

    def is_error(self, p: Payload) -> bool:
        """Whether ``p`` is this API's in-band error."""
        return isinstance(p.data, dict) and "error" in p.data

    def error_frame_problem(self, p: Payload) -> str | None:
        """What is wrong with how an in-band error is framed, or None."""
        return None

    def claims_completion(self, p: Payload) -> str | None:
        """What in ``p`` tells the client the answer was complete, or None."""
        raise NotImplementedError

    def content_pieces(self, p: Payload) -> int:
        """How many pieces of generated content ``p`` carried (the mock sends one token each)."""
        delta = self.classify(p.name, p.data) if isinstance(p.data, dict) else NOTHING
        return int(delta.visible)
