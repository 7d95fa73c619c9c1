"""The OpenAI Responses stream grammar (used by the ``stream`` check).

Rules (all MUST; each failure names the event):
 1. no ``data: [DONE]``; every event is a JSON object with a ``type``;
 2. the SSE ``event:`` name, when sent, equals ``data.type``;
 3. ``sequence_number`` is an integer, strictly increasing;
 4. exactly one terminal event (``response.completed``, ``.incomplete``, ``.failed``), last;
    an ``error`` event fails the grammar (see the ``stream_error`` check for failures);
 5. a completed response's ``output`` is not empty when deltas were sent (new-api #4362);
 6. ``response.completed`` carries ``usage``.
"""

from __future__ import annotations

from gateprobe.checks._stream_common import DONE, Payload, fail

__all__ = ["TERMINAL", "check_responses_stream"]

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def check_responses_stream(events: list[Payload]) -> None:
    last_sequence: int | None = None
    last_label = ""
    deltas = 0
    for p in events:
        if p.data == DONE:
            raise fail(f"a Responses stream must not send data: [DONE] ({p.label})", p.label)
        kind = p.type
        if kind is None:
            raise fail(f"{p.label} has no type", f"{p.label}.type", "a type", None)
        if p.name is not None and p.name != kind:
            raise fail(
                f"{p.label}: event name {p.name!r} differs from data.type {kind!r}",
                f"{p.label}.type",
                p.name,
                kind,
            )
        if kind == "error":
            raise fail(
                f"{p.label} is an error event: {str(p.data.get('message'))[:120]}",
                p.label,
                "no error",
                p.data.get("code"),
            )
        sequence = p.data.get("sequence_number")
        if (
            not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or (last_sequence is not None and sequence <= last_sequence)
        ):
            after = f" (previous {last_sequence} at {last_label})" if last_label else ""
            raise fail(
                f"{p.label}.sequence_number {sequence!r} does not increase strictly{after}",
                f"{p.label}.sequence_number",
                f"> {last_sequence}" if last_sequence is not None else "an integer",
                sequence,
            )
        last_sequence, last_label = sequence, p.label
        deltas += kind.endswith(".delta")
    terminals = [p for p in events if p.type in TERMINAL]
    if len(terminals) != 1:
        where = ", ".join(p.label for p in terminals) or "end of stream"
        raise fail(
            f"expected exactly one terminal event ({', '.join(TERMINAL)}), got {len(terminals)}"
            + (
                f"; the stream ended after {events[-1].label} ({events[-1].type})"
                if not terminals
                else ""
            ),
            where,
            1,
            len(terminals),
        )
    (end,) = terminals
    if end is not events[-1]:
        raise fail(
            f"{events[-1].label} comes after the terminal event {end.label} ({end.type})",
            events[-1].label,
            f"nothing after {end.label}",
            events[-1].type,
        )
    response = end.data.get("response")
    if not isinstance(response, dict):
        raise fail(f"{end.label} carries no response object", f"{end.label}.response")
    if end.type == "response.completed":
        if deltas and not response.get("output"):
            raise fail(
                f"{end.label} (response.completed) has output: [] although {deltas} deltas "
                f"were sent",
                f"{end.label}.response.output",
                "the streamed output items",
                response.get("output"),
            )
        if not isinstance(response.get("usage"), dict):
            raise fail(
                f"{end.label} (response.completed) carries no usage",
                f"{end.label}.response.usage",
                "a usage object",
                response.get("usage"),
            )
