"""The OpenAI Chat Completions stream grammar, rule by rule (used by the ``stream`` check).

Rules (all MUST; each failure names the event):
 1. every frame before ``[DONE]`` is a JSON ``chat.completion.chunk`` and carries no ``error``;
 2. ``id``, ``created``, ``model`` and ``object`` are the same on every chunk;
 3. the first delta carries ``role: assistant``;
 4. ``data: [DONE]`` exactly once, last;
 5. with ``stream_options.include_usage``: exactly one usage chunk, right before ``[DONE]``,
    with ``choices: []``; ``usage`` null (or absent) on every other chunk. Without it: no usage
    chunk, unless the target's dialect declares ``usage_chunk_by_default`` (new-api);
 6. exactly one non-null ``finish_reason`` per choice, on that choice's last chunk;
 7. tool-call deltas reassemble, per index, into one stable id, one name and arguments that
    parse as a JSON object.
"""

from __future__ import annotations

import json
from typing import Any

from gateprobe.checks._registry import CheckContext
from gateprobe.checks._stream_common import DONE, Payload, fail, request_body

__all__ = ["check_chat_stream"]

STABLE_FIELDS = ("id", "object", "created", "model")


def check_chat_stream(ctx: CheckContext, events: list[Payload]) -> None:
    chunks = _chunks(events)
    _stable(chunks)
    _role_first(chunks)
    _done(events)
    _usage(ctx, chunks, events)
    _finish_reasons(chunks)
    _tool_calls(chunks)


def _chunks(events: list[Payload]) -> list[Payload]:
    chunks = []
    for p in events:
        if p.data == DONE:
            continue
        if not isinstance(p.data, dict):
            raise fail(
                f"{p.label} is not a JSON object", p.label, "an object", type(p.data).__name__
            )
        if "error" in p.data:
            raise fail(
                f"{p.label} carries an error: {str(p.data['error'])[:120]}",
                f"{p.label}.error",
                "no error",
                p.data["error"],
            )
        if p.data.get("object") != "chat.completion.chunk":
            raise fail(
                f"{p.label}.object is {p.data.get('object')!r}, not chat.completion.chunk",
                f"{p.label}.object",
                "chat.completion.chunk",
                p.data.get("object"),
            )
        chunks.append(p)
    return chunks


def _stable(chunks: list[Payload]) -> None:
    if not chunks:
        return
    first = chunks[0]
    for p in chunks[1:]:
        for name in STABLE_FIELDS:
            if p.data.get(name) != first.data.get(name):
                raise fail(
                    f"{p.label}.{name} is {p.data.get(name)!r} but {first.label} had "
                    f"{first.data.get(name)!r}: {name} must not change within one stream",
                    f"{p.label}.{name}",
                    first.data.get(name),
                    p.data.get(name),
                )


def _role_first(chunks: list[Payload]) -> None:
    for p in chunks:
        choices = p.data.get("choices") or []
        if not choices:
            continue
        delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
        role = delta.get("role") if isinstance(delta, dict) else None
        if role != "assistant":
            raise fail(
                f"the first delta ({p.label}) carries no role: assistant",
                f"{p.label}.choices[0].delta.role",
                "assistant",
                role,
            )
        return


def _done(events: list[Payload]) -> None:
    done = [p for p in events if p.data == DONE]
    if len(done) != 1:
        where = ", ".join(p.label for p in done) or "end of stream"
        raise fail(f"expected exactly one data: [DONE], got {len(done)}", where, 1, len(done))
    if events[-1].data != DONE:
        raise fail(
            f"{events[-1].label} comes after data: [DONE] ({done[0].label}): [DONE] must be last",
            events[-1].label,
            f"nothing after {done[0].label}",
            events[-1].data if isinstance(events[-1].data, str) else events[-1].type,
        )


def _finish_reasons(chunks: list[Payload]) -> None:
    finished: dict[int, Payload] = {}
    seen: set[int] = set()
    for p in chunks:
        for choice in p.data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = int(choice.get("index", 0))
            seen.add(index)
            if index in finished:
                earlier = finished[index]
                what = (
                    "a second non-null finish_reason"
                    if choice.get("finish_reason") is not None
                    else "a chunk"
                )
                raise fail(
                    f"choice {index} has {what} at {p.label} after its finish_reason at "
                    f"{earlier.label}: the finish_reason must be on the choice's last chunk, once",
                    f"{p.label}.choices[{index}].finish_reason",
                    f"one finish_reason, at {earlier.label}",
                    choice.get("finish_reason"),
                )
            if choice.get("finish_reason") is not None:
                finished[index] = p
    missing = sorted(seen - set(finished)) or ([] if seen else [0])
    if missing:
        raise fail(
            f"choice {missing[0]} has no non-null finish_reason",
            f"events[*].choices[{missing[0]}].finish_reason",
            "one non-null finish_reason",
            None,
        )


def _usage(ctx: CheckContext, chunks: list[Payload], events: list[Payload]) -> None:
    options = request_body(ctx).get("stream_options")
    asked = options.get("include_usage") if isinstance(options, dict) else None
    usage = [p for p in chunks if p.data.get("usage") is not None]
    if asked is True:
        if len(usage) != 1:
            where = ", ".join(p.label for p in usage) or "end of stream"
            raise fail(
                f"stream_options.include_usage was set: expected exactly one usage chunk, "
                f"got {len(usage)}",
                where,
                1,
                len(usage),
            )
        (p,) = usage
        if p.data.get("choices"):
            raise fail(
                f"the usage chunk {p.label} carries {len(p.data['choices'])} choices; "
                f"expected choices: []",
                f"{p.label}.choices",
                [],
                len(p.data["choices"]),
            )
        done = next(i for i, e in enumerate(events) if e.data == DONE)
        if events.index(p) != done - 1:
            raise fail(
                f"the usage chunk {p.label} is not the one right before data: [DONE] "
                f"({events[done].label})",
                p.label,
                events[done - 1].label,
                p.label,
            )
        return
    by_default = ctx.target.dialect.usage_chunk_by_default and asked is None
    if usage and not by_default:
        p = usage[0]
        told = "was false" if asked is False else "was not set"
        raise fail(
            f"{p.label} carries usage although stream_options.include_usage {told}",
            f"{p.label}.usage",
            None,
            p.data.get("usage"),
        )


def _tool_calls(chunks: list[Payload]) -> None:
    calls: dict[int, dict[str, Any]] = {}
    for p in chunks:
        for choice in p.data.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            for call in (delta or {}).get("tool_calls") or []:
                index = int(call.get("index", 0))
                found = calls.setdefault(index, {"id": None, "name": "", "args": "", "at": p})
                if call.get("id") is not None:
                    if found["id"] is not None and call["id"] != found["id"]:
                        raise fail(
                            f"tool call {index} changes id at {p.label}: {call['id']!r} after "
                            f"{found['id']!r} ({found['at'].label})",
                            f"{p.label}.choices[0].delta.tool_calls[{index}].id",
                            found["id"],
                            call["id"],
                        )
                    found["id"] = call["id"]
                function = call.get("function") or {}
                found["name"] += function.get("name") or ""
                found["args"] += function.get("arguments") or ""
    for index, found in sorted(calls.items()):
        where = f"{found['at'].label}.choices[0].delta.tool_calls[{index}]"
        if not found["id"] or not found["name"]:
            raise fail(
                f"tool call {index} (from {found['at'].label}) has no id or no function name",
                where,
                "an id and a name",
                {"id": found["id"], "name": found["name"]},
            )
        try:
            arguments = json.loads(found["args"])
        except ValueError as exc:
            raise fail(
                f"tool call {index}'s joined arguments are not JSON ({exc})",
                f"{where}.function.arguments",
                "a JSON object",
                found["args"][:120],
            ) from None
        if not isinstance(arguments, dict):
            raise fail(
                f"tool call {index}'s joined arguments are not a JSON object",
                f"{where}.function.arguments",
                "a JSON object",
                found["args"][:120],
            )
