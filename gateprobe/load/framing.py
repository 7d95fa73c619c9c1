"""The SSE framing of a load generator's hot path: lean splitting and counting by template.

A load generator parses every event of every stream, so the common case is kept to a few
C-level byte operations per socket read: ``SSESplitter`` cuts complete frames (LF or CRLF)
without per-frame objects, handing streams with lone CR line ends to the complete
``gateprobe.sse.SSEParser``; ``plain_openai_frames`` counts a block of plain OpenAI text
chunks without decoding them; ``ChunkTemplate`` counts runs of a stream's frames that differ
only in their text; ``ArraySplitter`` cuts a Gemini JSON array into its decoded elements.
Tests check them against the complete parsers on randomized streams.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from gateprobe import protocols
from gateprobe.protocols import VISIBLE, Api, loads
from gateprobe.sse import JsonArrayParser, SSEParser

__all__ = [
    "AROUND_TEMPLATE_BYTES",
    "ArraySplitter",
    "ChunkTemplate",
    "Element",
    "ElementTemplate",
    "SSESplitter",
    "plain_openai_frames",
]

# OpenAI chat: decoding the frames around a run of template frames beats counting them
# (plain_openai_frames) up to this size
AROUND_TEMPLATE_BYTES = 2048
# a key's non-empty text value, spaced or not (the real Gemini API spaces its JSON); the key
# before the text of a plain output event is each API's ``output_marker``
_TEXT_MARKERS = {
    key: re.compile(re.escape(key) + rb'[ \t]*:[ \t]*"(?!")')
    for key in {api.output_marker for api in protocols.APIS if api.output_marker is not None}
}
# in a template's suffix, the values that may change: numbers, and ids and random padding
_SUFFIX_HOLES = re.compile(
    rb'":[ \t]*(-?[0-9][0-9.eE+-]*)|"(?:responseId|id|obfuscation)":[ \t]*"([^"\\\\]*)'
)
# in its prefix, the values that change from event to event (Responses' sequence numbers)
_PREFIX_HOLES = re.compile(rb'"sequence_number":[ \t]*([0-9]+)')
# the values that differ between two streams' chunks of one gateway, and what they may hold
_VARYING = (
    (b'"id":"', rb'[^"\\\n]*'),
    (b'"item_id":"', rb'[^"\\\n]*'),
    (b'"created":', rb"[0-9]+"),
    (b'"sequence_number":', rb"[0-9]+"),
)


class SSESplitter:
    """``(event, data)`` of each SSE frame, as ``gateprobe.sse.SSEParser`` dispatches them.

    A lean path for the framing every LLM API uses (LF or CRLF line ends), on bytes, with
    no per-frame objects: a load generator parses every event of every stream, and the
    WHATWG-complete parser costs several times more. A stream with lone CR line ends hands
    over to ``SSEParser`` from the current frame on (tests check both agree).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._hold_cr = False
        self._first = True
        self._fallback: SSEParser | None = None

    @property
    def idle(self) -> bool:
        """No partial frame is buffered: the next chunk starts a frame."""
        return not self._buffer and not self._hold_cr and self._fallback is None and not self._first

    def close(self, time: float) -> tuple[list[tuple[str | None, bytes | str]], bool]:
        """The events the end of the stream completes, and whether a frame was left cut."""
        if self._fallback is not None:
            self._fallback.events.clear()
            leftover = self._fallback.close(time)
            return [(e.event, e.data) for e in self._fallback.events], leftover is not None
        return [], bool(self._buffer.strip())

    def feed(self, chunk: bytes, time: float) -> list[tuple[str | None, bytes | str]]:
        complete = self.complete(chunk, time)
        return complete if isinstance(complete, list) else self.frames(complete)

    def complete(self, chunk: bytes, time: float) -> bytes | list[tuple[str | None, bytes | str]]:
        """The frames ``chunk`` completes, as LF-framed bytes (or, after a hand-over to
        ``SSEParser``, as its events)."""
        if self._fallback is not None:
            events = self._fallback.feed(chunk, time)
            self._fallback.events.clear()
            return [(e.event, e.data) for e in events]
        if self._first and chunk:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            self._first = False
        buffer = self._buffer + (b"\r" if self._hold_cr else b"") + chunk
        self._hold_cr = buffer.endswith(b"\r")
        if self._hold_cr:
            buffer = buffer[:-1]  # maybe the first half of a CRLF
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
            if b"\r" in buffer:  # lone CRs: the complete parser from this frame on
                self._fallback = SSEParser()
                self._buffer = b""
                return self.complete(buffer + (b"\r" if self._hold_cr else b""), time)
        head, separator, self._buffer = buffer.rpartition(b"\n\n")
        return head + separator

    @staticmethod
    def frames(complete: bytes) -> list[tuple[str | None, bytes | str]]:
        out: list[tuple[str | None, bytes | str]] = []
        for frame in complete.split(b"\n\n"):
            event: str | None = None
            data: list[bytes] = []
            for line in frame.split(b"\n"):
                if line.startswith(b"data"):
                    if line.startswith(b"data:"):
                        value = line[5:]
                        data.append(value[1:] if value.startswith(b" ") else value)
                    elif line == b"data":
                        data.append(b"")
                elif line.startswith(b"event:"):
                    value = line[6:]
                    event = (value[1:] if value.startswith(b" ") else value).decode(
                        "utf-8", "replace"
                    )
            if data:
                out.append((event, data[0] if len(data) == 1 else b"\n".join(data)))
        return out


def plain_openai_frames(complete: bytes) -> tuple[int, bool] | None:
    """(visible-content events, saw ``[DONE]``) of LF-framed OpenAI chat frames that are all
    plain text chunks, counted without decoding; None when a frame needs the full parse
    (errors, reasoning, tool calls, a usage object, a second choice, spaced JSON, comments).

    This is the hot path of a streaming load: a few C-level byte scans per socket read
    instead of a JSON decode per event. Inside a JSON string every quote and newline is
    escaped, so the quoted markers only match keys, and a blank line only ends a frame.
    """
    frames = complete.count(b"\n\n")
    done = complete.count(b"data: [DONE]")
    if complete.count(b"data: {") + done != frames:
        return None
    if b'"error"' in complete or b'"tool_calls"' in complete or b'"reasoning' in complete:
        return None
    if complete.count(b'"usage"') != complete.count(b'"usage":null'):
        return None
    if complete.count(b'"index":') != complete.count(b'"index":0'):
        return None
    content = complete.count(b'"content":"')
    if complete.count(b'"content"') != content:
        return None
    return content - complete.count(b'"content":""'), done > 0


class ChunkTemplate:
    """The bytes around the text of a stream's plain content chunks.

    The text chunks of one stream differ only in their text and in a few quote-free values
    (Responses' sequence numbers, Gemini's usage counts): a run of frames that all hold the
    template's quoted pieces, with no other quote, is counted with a handful of byte scans
    (inside a JSON string every quote and newline is escaped, so the quoted pieces only
    match where they are keys and values).

    The next stream of the same request differs in its ids (``id``, ``item_id``, a response
    id) and ``created`` too: ``recall`` finds its template with one regular expression
    instead of decoding a frame again (``learn``).
    """

    __slots__ = (
        "_anchor",
        "_pattern",
        "_pattern_built",
        "_pieces",
        "_text_edge",
        "_text_end",
        "prefix",
        "quotes",
        "suffix",
        "usage",
        "varies",
    )

    def __init__(
        self,
        prefix: bytes,
        suffix: bytes,
        pattern: re.Pattern[bytes] | None = None,
        *,
        usage: bool = False,
    ) -> None:
        """``usage``: the frames carry token counts (Gemini's ``usageMetadata``)."""
        self.prefix = prefix
        self.suffix = suffix
        self.quotes = prefix.count(b'"') + suffix.count(b'"')
        # built when first recalled from (a template learned on a stream often is not)
        self._pattern = pattern
        self._pattern_built = pattern is not None
        # the quoted pieces around the values that change from event to event (Gemini's
        # usage counts, Responses' sequence numbers) or from stream to stream (a response
        # id), each with how often one frame holds it; the first piece of the prefix anchors
        # a frame, the first of the suffix ends the text
        heads = _around_holes(prefix, _PREFIX_HOLES)
        tails = [piece for piece in _around_holes(suffix, _SUFFIX_HOLES) if b'"' in piece]
        self.varies = tails != [suffix] or len(heads) > 1  # it has holes
        self.usage = usage
        self._anchor = heads[0]
        self._text_end = tails[0]
        self._text_edge = heads[-1] + tails[0]  # the frames with an empty text
        self._pieces = tuple(
            (piece, prefix.count(piece) + suffix.count(piece))
            for piece in dict.fromkeys([*heads[1:], *tails])
            if b'"' in piece
        )

    @classmethod
    def learn(cls, block: bytes, api: Api) -> ChunkTemplate | None:
        """The template of the block's first frame with visible text only (no reasoning,
        usage or error; decoded to check), or None."""
        key = api.output_marker
        if key is None:
            return None
        # the first non-empty text (not a role or start event), spaced or not (Gemini)
        found = _TEXT_MARKERS[key].search(block)
        if found is None:
            return None
        at, text_at = found.start(), found.end()
        start = block.rfind(b"\n\n", 0, at)
        start = start + 2 if start >= 0 else 0
        stop = block.find(b"\n\n", at)
        if stop < 0:
            return None
        frame = block[start : stop + 2]
        frames = SSESplitter.frames(frame)
        if len(frames) != 1 or frame.count(key) != 1:
            return None
        delta = api.classify_data(frames[0][0], frames[0][1])
        usage = (
            delta.output_tokens is not None
            or delta.reasoning_tokens is not None
            or delta.input_tokens is not None
        )
        # visible output and nothing else (token counts aside): no reasoning, error or end
        if delta._replace(output_tokens=None, reasoning_tokens=None, input_tokens=None) != VISIBLE:
            return None
        text = text_at - start
        end = frame.find(b'"', text)
        if end <= text or frame[end - 1 : end] == b"\\":
            return None
        return cls(frame[:text], frame[end:], usage=usage)

    def recall(self, block: bytes) -> ChunkTemplate | None:
        """This template with the block's own ``id`` and ``created`` values, when the block
        holds a frame that matches it but for those; else None."""
        if not self._pattern_built:
            self._pattern = _recall_pattern(self.prefix)
            self._pattern_built = True
        pattern = self._pattern
        if pattern is None:  # nothing in the prefix varies between streams
            return self if self.prefix in block else None
        match = pattern.search(block)
        if match is None:
            return None
        prefix = match.group(0)
        if prefix == self.prefix:
            return self
        return ChunkTemplate(prefix, self.suffix, pattern, usage=self.usage)

    def span(
        self, block: bytes, around_limit: int | None = None
    ) -> tuple[int, int, int | None] | None:
        """(start, end, visible events) of the run of template frames in a block of complete
        frames; visible is None when the run holds other frames (the stream changed its
        shape). None when the block has no run, or more than ``around_limit`` bytes around
        it."""
        anchor = self._anchor
        first = block.find(anchor)
        if first < 0 or (first and block[first - 2 : first] != b"\n\n"):
            return None
        last = block.rfind(anchor)
        end = block.find(b"\n\n", last) + 2
        if around_limit is not None and first + len(block) - end > around_limit:
            return None
        visible = self.count(block[first:end] if first or end < len(block) else block)
        if visible is None and last > first:
            # the last text event may end the stream too (Gemini's finishReason): count the
            # run before it and decode it with the frames after
            visible = self.count(block[first:last])
            if visible is not None:
                end = last
        return first, end, visible

    def count(self, run: bytes) -> int | None:
        """Visible events of a run made only of template frames, checked with a handful of
        byte scans; None when it is not such a run.

        Equal counts of every quoted piece with no other quote leave room only for
        quote-free bytes besides them: numbers where the template has numbers, or
        quote-free frames between (comments, ``data: 1``), which carry no output.
        """
        frames = run.count(self._anchor)
        if run.count(b'"') != frames * self.quotes:  # no quote in any text
            return None
        for piece, per_frame in self._pieces:
            if run.count(piece) != frames * per_frame:
                return None
        if b"\\" + self._text_end in run:  # a text ending in a backslash: decode
            return None
        return frames - run.count(self._text_edge)

    def last_frame(self, run: bytes) -> bytes:
        """The run's last frame (whose usage counts, when they vary, are the latest)."""
        return run[run.rfind(self._anchor) :]


def _recall_pattern(prefix: bytes) -> re.Pattern[bytes] | None:
    """A pattern matching ``prefix`` with other values of ``id`` and ``created``."""
    holes: list[tuple[int, int, bytes]] = []
    for key, value in _VARYING:
        at = prefix.find(key)
        if at < 0:
            continue
        start = at + len(key)
        match = re.compile(value).match(prefix, start)
        if match is None or prefix.find(key, start) >= 0:
            return None  # the key twice: too odd to recall
        holes.append((start, match.end(), value))
    if not holes:
        return None
    holes.sort()
    parts: list[bytes] = []
    position = 0
    for start, end, value in holes:
        parts += [re.escape(prefix[position:start]), value]
        position = end
    parts.append(re.escape(prefix[position:]))
    return re.compile(b"".join(parts))


_SPACE = re.compile(rb"[ \t\r\n]*")
# the braces that may close an element: not those followed by a key (``},"index"``) or by a
# closing bracket and more (``}]}``, ``}],``), which close nested values; a brace at the end
# of what has arrived is tried (a failed decode is final, whatever comes next)
_ELEMENT_END = re.compile(
    rb"\}(?=[ \t\r\n]*(?:\Z|,[ \t\r\n]*(?:[^\" \t\r\n]|\Z)"
    rb"|\][ \t\r\n]*(?:[^,}\] \t\r\n]|\Z)|[^,\] \t\r\n]))"
)
_BOM = b"\xef\xbb\xbf"


class Element(NamedTuple):
    """One element of a streamed JSON array, as ``ArraySplitter`` found it."""

    value: Any = None  # decoded, when it was
    json_text: str | None = None  # its text, when the complete parser found it
    raw: bytes | None = None  # its bytes, when this splitter found it
    counted: bool = False  # matched the stream's ElementTemplate: not decoded
    visible: bool = False  # (counted elements) its text was not empty


class ElementTemplate:
    """The shape of a stream's plain text elements (Gemini's array chunks): the bytes
    around the text, with holes for the values that change from element to element (usage
    counts) or stream to stream (the response id). An element that matches it, checked
    with one regular expression, is valid JSON that carries visible text (when the text is
    not empty) and nothing else but those values."""

    __slots__ = ("_pattern",)

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self._pattern = pattern

    @classmethod
    def learn(cls, element: bytes, key: bytes) -> ElementTemplate | None:
        """The template of an element already known to carry visible text only."""
        found = _TEXT_MARKERS[key].search(element)
        if found is None or element.count(key) != 1:
            return None
        text = found.end()
        closing = _JSON_STRING_REST.match(element, text)
        if closing is None or closing.end() - 1 == text:
            return None
        prefix, suffix = element[:text], element[closing.end() - 1 :]
        pattern = _holed(prefix, _PREFIX_HOLES) + _JSON_TEXT + _holed(suffix, _SUFFIX_HOLES)
        return cls(re.compile(pattern))

    def match(self, raw: bytearray, at: int) -> tuple[int, bool] | None:
        """(end, visible) of a template element starting at ``at``, else None."""
        found = self._pattern.match(raw, at)
        if found is None:
            return None
        return found.end(), found.end(1) > found.start(1)


_JSON_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"')
_JSON_TEXT = rb'((?:[^"\\\x00-\x1f]|\\.)*)'
_JSON_NUMBER = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_JSON_PLAIN_STRING = rb'[^"\\\x00-\x1f]*'


def _holes(literal: bytes, holes: re.Pattern[bytes]) -> list[tuple[int, int]]:
    """(start, end) of each value in ``literal`` that ``holes`` names (its matched group)."""
    spans = []
    for found in holes.finditer(literal):
        group = next(g for g in range(1, holes.groups + 1) if found.start(g) >= 0)
        spans.append(found.span(group))
    return spans


def _around_holes(literal: bytes, holes: re.Pattern[bytes]) -> list[bytes]:
    """The pieces of ``literal`` between its holes (one piece when it has none)."""
    edges = [0, *(edge for span in _holes(literal, holes) for edge in span), len(literal)]
    return [literal[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _holed(literal: bytes, holes: re.Pattern[bytes]) -> bytes:
    """A pattern matching ``literal`` with other values in its holes."""
    parts: list[bytes] = []
    position = 0
    for start, end in _holes(literal, holes):
        parts.append(re.escape(literal[position:start]))
        string = literal[start - 1 : start] == b'"'
        parts.append(_JSON_PLAIN_STRING if string else _JSON_NUMBER)
        position = end
    parts.append(re.escape(literal[position:]))
    return b"".join(parts)


class ArraySplitter:
    """The elements of a streamed top-level JSON array of objects (Gemini's
    ``streamGenerateContent`` without ``alt=sse``), decoded, as each one completes.

    ``JsonArrayParser`` walks every bracket and quote in Python; this tries to decode the
    bytes from an element's ``{`` to the closing braces that may end it instead (C-level: a
    regular expression and orjson). A decode that succeeds ends exactly at the element's own
    closing brace: a prefix of an object that ends inside a string or a nested value is not
    valid JSON.
    Anything else (no ``[``, an element that is not an object, stray bytes between
    elements, an array not closed at the end) hands the whole body to ``JsonArrayParser``,
    which says what is wrong as it always does.
    """

    def __init__(self, template: ElementTemplate | None = None) -> None:
        """``template``: the elements that match it are not decoded (see ElementTemplate);
        the caller sets it once it knows one."""
        self.template = template
        self._raw = bytearray()
        self._at = 0  # the first byte not parsed yet
        self._scan = 0  # where the search for the current element's end goes on
        self._state = "open"  # open | first | element | after | closed
        self._emitted = 0
        self._fallback: JsonArrayParser | None = None

    def feed(self, chunk: bytes, time: float) -> list[Element]:
        """The elements ``chunk`` completes: counted by the template, or decoded; after a
        hand-over to ``JsonArrayParser``, with their JSON text instead."""
        if self._fallback is not None:
            return self._fallback_elements(chunk, time)
        raw = self._raw
        raw += chunk
        if self._state == "open" and raw.startswith(_BOM, self._at):
            self._at += len(_BOM)  # kept in the bytes: the complete parser counts it
        out: list[Element] = []
        while True:
            at = self._at = _SPACE.match(raw, self._at).end()  # type: ignore[union-attr]
            if at == len(raw):
                return out
            byte = raw[at]
            state = self._state
            if state == "open" and byte == 0x5B:  # [
                self._state, self._at = "first", at + 1
            elif state in ("first", "element") and byte == 0x7B:  # {
                counted = self.template.match(raw, at) if self.template is not None else None
                if counted is not None:
                    end, visible = counted
                    self._at = self._scan = end
                    out.append(Element(counted=True, visible=visible, raw=bytes(raw[at:end])))
                else:
                    element = self._element(at)
                    if element is None:
                        return out  # not complete yet
                    # its bytes only while there is no template to learn from them
                    piece = bytes(raw[at : self._at]) if self.template is None else None
                    out.append(Element(value=element, raw=piece))
                self._emitted += 1
                self._state = "after"
            elif state in ("first", "after") and byte == 0x5D:  # ]
                self._state, self._at = "closed", at + 1
            elif state == "after" and byte == 0x2C:  # ,
                self._state, self._at = "element", at + 1
            else:
                return out + self._hand_over(time)

    def _element(self, start: int) -> Any:
        """The element that starts at ``start`` when its closing brace has arrived."""
        raw = self._raw
        found = _ELEMENT_END.search(raw, max(self._scan, start))
        while found is not None:
            end = found.start() + 1
            try:
                element = loads(raw[start:end])
            except ValueError:  # a nested object's brace, or one in a string
                found = _ELEMENT_END.search(raw, end)
                continue
            self._at = self._scan = end
            return element
        self._scan = len(raw)
        return None

    def close(self, time: float) -> tuple[list[Element], str | None]:
        """The elements only the complete parser finds, and what is wrong (None when the
        array was opened and closed)."""
        if self._fallback is None and self._state == "closed":
            return [], None
        elements = self._hand_over(time) if self._fallback is None else []
        assert self._fallback is not None
        return elements, self._fallback.close(time)

    def _hand_over(self, time: float) -> list[Element]:
        self._fallback = JsonArrayParser()
        raw, self._raw = bytes(self._raw), bytearray()
        return self._fallback_elements(raw, time)[self._emitted :]

    def _fallback_elements(self, chunk: bytes, time: float) -> list[Element]:
        assert self._fallback is not None
        elements = self._fallback.feed(chunk, time)
        self._fallback.elements.clear()
        return [Element(json_text=element.text) for element in elements]
