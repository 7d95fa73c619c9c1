"""Reading streams the way a strict client does: bytes in, timestamped events out.

Two wire formats carry LLM streams:

    Server-Sent Events   ``text/event-stream``: fields ``event``, ``data``, ``id``, ``retry``;
                         an empty line dispatches; ``:`` starts a comment (keep-alive);
                         lines end in CRLF, LF or CR; ``data`` may span several lines.
    JSON array           Gemini's ``streamGenerateContent`` without ``alt=sse``: one array
                         whose elements arrive one by one (``[{…}\\r\\n,{…}]``).

Both parsers are incremental (``feed`` a chunk and its arrival time, get the events it
completes), keep the raw text of every frame for reports, and say on ``close`` whether the
stream ended cleanly or was cut mid-frame.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

__all__ = ["ArrayElement", "JsonArrayParser", "SSEComment", "SSEEvent", "SSEParser"]


@dataclass(frozen=True)
class SSEEvent:
    index: int
    event: str | None  # the ``event:`` field; None means the default type "message"
    data: str
    id: str | None
    retry: int | None
    time: float  # arrival of the line that dispatched it, in the caller's clock
    raw: str  # the frame's lines as received (line ends normalised to \n)


@dataclass(frozen=True)
class SSEComment:
    text: str
    time: float


@dataclass
class SSEParser:
    """Incremental parser following the WHATWG event-stream rules."""

    events: list[SSEEvent] = field(default_factory=list)
    comments: list[SSEComment] = field(default_factory=list)
    line_endings: set[str] = field(default_factory=set)  # which of "\r\n", "\n", "\r" were seen

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text not yet split into lines
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._raw: list[str] = []
        self._first_chunk = True

    def feed(self, chunk: bytes, time: float) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if self._first_chunk and text:
            text = text.removeprefix("\ufeff")
            self._first_chunk = False
        return self._consume(self._pending + text, time, final=False)

    def close(self, time: float) -> str | None:
        """Flush; returns the raw text of an unterminated last frame, or None if clean."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        self._consume(rest, time, final=True)
        leftover = "\n".join(self._raw) if self._raw else None
        self._reset()
        return leftover

    def _consume(self, text: str, time: float, *, final: bool) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        start = 0
        length = len(text)
        while start < length:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == length and not final:
                    break  # a CR at the end may be the first half of CRLF
                ending = "\r\n" if text.startswith("\n", cr + 1) else "\r"
                end = cr
            else:
                ending, end = "\n", lf
            self.line_endings.add(ending)
            event = self._line(text[start:end], time)
            if event is not None:
                out.append(event)
            start = end + len(ending)
        rest = text[start:]
        if final and rest:
            self._line(rest, time)  # an unterminated line belongs to an unterminated frame
            rest = ""
        self._pending = rest
        return out

    def _line(self, line: str, time: float) -> SSEEvent | None:
        if not line:
            return self._dispatch(time)
        if line.startswith(":"):
            self.comments.append(SSEComment(line[1:].removeprefix(" "), time))
            return None
        self._raw.append(line)
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            # ASCII digits only, as the spec says: str.isdigit alone also takes "\u00b2",
            # which int() refuses, and "\u0661" (Arabic-Indic one), which it reads as 1
            self._retry = int(value)
        return None

    def _dispatch(self, time: float) -> SSEEvent | None:
        if not self._data:
            self._reset()  # a frame without data dispatches nothing
            return None
        event = SSEEvent(
            index=len(self.events),
            event=self._event,
            data="\n".join(self._data),
            id=self._id,
            retry=self._retry,
            time=time,
            raw="\n".join(self._raw),
        )
        self.events.append(event)
        self._reset()
        return event

    def _reset(self) -> None:
        self._data = []
        self._event = None
        self._retry = None
        self._raw = []


@dataclass(frozen=True)
class ArrayElement:
    index: int
    text: str  # the element's JSON text
    time: float


# the characters JsonArrayParser.feed stops at inside an element, out of strings
_IN_ELEMENT_STOP = re.compile(r'["\[\]{}]')


@dataclass
class JsonArrayParser:
    """Splits a streamed top-level JSON array into its elements as each one completes.

    It checks the framing only (brackets, commas, strings); each element's JSON is left to
    the caller. ``error`` describes the first framing violation; parsing stops there.
    """

    elements: list[ArrayElement] = field(default_factory=list)
    opened: bool = False
    closed: bool = False
    error: str | None = None

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._expect_element = True
        self._offset = 0

    def feed(self, chunk: bytes, time: float) -> list[ArrayElement]:
        out: list[ArrayElement] = []
        text = self._decoder.decode(chunk)
        at, end = 0, len(text)
        while at < end and self.error is None:
            if self._depth and not self._escape:
                # inside an element only quotes, backslashes (in strings) and brackets (out
                # of them) matter: the characters up to the next one are copied in one go,
                # strings opened and closed here; brackets and escapes go one by one
                if self._in_string:
                    quote = text.find('"', at)
                    stop = quote if quote >= 0 else end
                    backslash = text.find("\\", at, stop)
                    upto = backslash if backslash >= 0 else stop + (quote >= 0)
                    self._in_string = backslash >= 0 or quote < 0
                else:
                    found = _IN_ELEMENT_STOP.search(text, at)
                    upto = found.start() if found is not None else end
                    if upto < end and text[upto] == '"':
                        upto += 1
                        self._in_string = True
                if upto > at:
                    self._buffer.append(text[at:upto])
                    self._offset += upto - at
                    at = upto
                    continue
            ch = text[at]
            at += 1
            self._offset += 1
            element = self._char(ch, time)
            if element is not None:
                out.append(element)
        return out

    def close(self, time: float) -> str | None:
        """None when the array was opened and closed; otherwise what is wrong."""
        if self.error is None and not self.opened:
            self.error = "the stream is empty: no JSON array was opened"
        elif self.error is None and not self.closed:
            partial = "".join(self._buffer).strip()
            self.error = "the array was not closed" + (
                f"; an element was cut after {len(partial)} characters" if partial else ""
            )
        return self.error

    def _fail(self, message: str) -> None:
        self.error = f"{message} at character {self._offset}"

    def _char(self, ch: str, time: float) -> ArrayElement | None:
        if self.closed:
            if not ch.isspace():
                self._fail(f"unexpected {ch!r} after the closing bracket")
            return None
        if not self.opened:
            if ch == "[":
                self.opened = True
            elif not ch.isspace() and ch != "\ufeff":
                self._fail(f"expected '[' but found {ch!r}")
            return None
        if self._depth == 0:
            self._between(ch)
            return None
        self._buffer.append(ch)
        if self._in_string:
            if self._escape:
                self._escape = False
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                self._in_string = False
            return None
        if ch == '"':
            self._in_string = True
        elif ch in "[{":
            self._depth += 1
        elif ch in "]}":
            self._depth -= 1
            if self._depth == 0:
                element = ArrayElement(len(self.elements), "".join(self._buffer), time)
                self.elements.append(element)
                self._buffer = []
                return element
        return None

    def _between(self, ch: str) -> None:
        if ch.isspace():
            return
        if ch == "]" and (not self._expect_element or not self.elements):
            self.closed = True
        elif ch == "," and not self._expect_element:
            self._expect_element = True
        elif ch in "[{" and self._expect_element:
            self._buffer = [ch]
            self._depth = 1
            self._expect_element = False
        else:
            self._fail(f"unexpected {ch!r} between array elements")
