"""The Claude Messages stream grammar (used by the ``stream`` check).

Rules (all MUST; each failure names the event):
 1. no ``data: [DONE]``; every event's ``event:`` name equals its ``data.type`` (clients
    dispatch on the name: a data-only frame is skipped by the SDKs);
 2. ``ping`` may appear anywhere; otherwise: ``message_start``, then per content block
    ``content_block_start``, its deltas (same ``index``), ``content_block_stop``; then one or
    more ``message_delta``; ``message_stop`` last;
 3. ``usage.output_tokens`` is cumulative: it never falls from ``message_start`` through each
    ``message_delta``;
 4. an ``error`` event fails the grammar (see the ``stream_error`` check for failures).
"""

from __future__ import annotations

from gateprobe.checks._stream_common import DONE, Payload, fail

__all__ = ["check_anthropic_stream"]


def check_anthropic_stream(events: list[Payload]) -> None:
    for p in events:
        if p.data == DONE:
            raise fail(f"an Anthropic stream must not send data: [DONE] ({p.label})", p.label)
        if p.name != p.type:
            raise fail(
                f"{p.label}: event name {p.name!r} differs from data.type {p.type!r}",
                f"{p.label}.type",
                p.type,
                p.name,
            )
        if p.type == "error":
            raise fail(
                f"{p.label} is an error event: {str(p.data.get('error'))[:120]}",
                p.label,
                "no error",
                p.data.get("error"),
            )
    significant = [p for p in events if p.type != "ping"]
    if not significant or significant[0].type != "message_start":
        first = significant[0] if significant else None
        raise fail(
            f"the first event ({first.label if first else 'none'}) is not message_start",
            first.label if first else "event[0]",
            "message_start",
            first.type if first else None,
        )
    last = significant[-1]
    if last.type != "message_stop":
        raise fail(
            f"the last event ({last.label}) is not message_stop but {last.type}",
            last.label,
            "message_stop",
            last.type,
        )
    _blocks(significant)
    _output_tokens(significant)


def _blocks(events: list[Payload]) -> None:
    open_block: Payload | None = None
    message_delta = False
    for p in events[1:-1]:
        kind = p.type
        if kind == "message_start":
            raise fail(f"a second message_start at {p.label}", p.label, "one message_start", kind)
        if message_delta and kind != "message_delta":
            raise fail(
                f"{p.label} ({kind}) comes after message_delta: only message_delta and "
                f"message_stop may follow it",
                p.label,
                "message_delta or message_stop",
                kind,
            )
        if kind == "content_block_start":
            if open_block is not None:
                raise fail(
                    f"a block starts at {p.label} before the one started at {open_block.label} "
                    f"stopped",
                    p.label,
                    "content_block_stop first",
                    kind,
                )
            open_block = p
        elif kind in ("content_block_delta", "content_block_stop"):
            what = "a delta" if kind == "content_block_delta" else "content_block_stop"
            if open_block is None:
                raise fail(
                    f"{what} outside any content block at {p.label}",
                    p.label,
                    "content_block_start first",
                    kind,
                )
            if p.data.get("index") != open_block.data.get("index"):
                raise fail(
                    f"{p.label} has index {p.data.get('index')!r} but the open block "
                    f"({open_block.label}) has {open_block.data.get('index')!r}",
                    f"{p.label}.index",
                    open_block.data.get("index"),
                    p.data.get("index"),
                )
            if kind == "content_block_stop":
                open_block = None
        elif kind == "message_delta":
            if open_block is not None:
                raise fail(
                    f"message_delta at {p.label} while the block started at {open_block.label} "
                    f"is still open",
                    p.label,
                    "content_block_stop first",
                    kind,
                )
            message_delta = True
        else:
            raise fail(f"unexpected event type {kind!r} at {p.label}", p.label, None, kind)
    if not message_delta:
        raise fail(
            f"no message_delta before message_stop ({events[-1].label})",
            events[-1].label,
            "message_delta",
            None,
        )


def _output_tokens(events: list[Payload]) -> None:
    previous: tuple[int, Payload] | None = None
    for p in events:
        if p.type == "message_start":
            usage = (p.data.get("message") or {}).get("usage") or {}
        elif p.type == "message_delta":
            usage = p.data.get("usage") or {}
        else:
            continue
        tokens = usage.get("output_tokens")
        if not isinstance(tokens, int):
            continue
        if previous is not None and tokens < previous[0]:
            raise fail(
                f"{p.label}.usage.output_tokens fell from {previous[0]} ({previous[1].label}) to "
                f"{tokens}: output_tokens must be cumulative",
                f"{p.label}.usage.output_tokens",
                f">= {previous[0]}",
                tokens,
            )
        previous = (tokens, p)
