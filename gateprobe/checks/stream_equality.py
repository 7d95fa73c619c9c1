"""The ``stream_equals_plain`` check: the joined stream is the answer the plain call gives.

For a deterministic request (the mock's generation is; a real model needs ``temperature: 0``
and even then may differ), a gateway must not drop, duplicate, reorder or rewrite chunks. The
check sends the same request without streaming (``CheckContext.call``) and compares the text,
the tool calls (name and parsed arguments) and the finish reason, naming the event where the
joined text first departs from the plain answer; deltas that each repeat the text so far are
reported as cumulative. The usage the stream reported (OpenAI's usage chunk, Responses'
``response.completed``, Claude's ``message_start`` and ``message_delta``, Gemini's last
``usageMetadata``) must equal the plain answer's, a finding of its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from gateprobe.checks._registry import FLAG, CheckContext, check
from gateprobe.checks._stream_common import fail, guarded, payloads
from gateprobe.errors import CheckFailed
from gateprobe.protocols import Usage

__all__ = ["plain_request"]

CHECK = "stream_equals_plain"


def plain_request(ctx: CheckContext) -> dict[str, Any]:
    """This step's request as a raw step spec, without streaming."""
    request = ctx.exchange.request
    parts = urlsplit(request.url)
    base_path = urlsplit(ctx.target.base_url).path.rstrip("/")
    path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
    path = path.replace(":streamGenerateContent", ":generateContent")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "alt"]
    if query:
        path += "?" + urlencode(query)
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    headers = {k: v for k, v in request.headers.items() if k != "content-length"}
    return {"method": request.method, "path": path, "body": body, "headers": headers, "key": None}


@check("stream_equals_plain", argument=FLAG)
def stream_equals_plain(ctx: CheckContext, wanted: Any) -> None:
    """The joined stream (text, tool calls, finish reason) equals the plain answer."""
    if not wanted:
        return
    if ctx.call is None:
        raise CheckFailed(CHECK, "no target to send the plain request to", where="call")
    guarded(CHECK, lambda: _compare(ctx))


def _compare(ctx: CheckContext) -> None:
    assert ctx.call is not None
    events = payloads(ctx, CHECK)
    api = ctx.api(events)
    streamed = api.joined_answer(events)
    plain_exchange = ctx.call(plain_request(ctx))
    if plain_exchange.status != 200:
        raise fail(
            f"the plain request answered HTTP {plain_exchange.status}",
            "plain.status",
            200,
            plain_exchange.status,
            check=CHECK,
        )
    try:
        plain_body = plain_exchange.json()
    except ValueError as exc:
        raise fail(f"the plain answer: {exc}", "plain.body", check=CHECK) from None
    plain = api.plain_answer(plain_body)
    # usage is its own rule: a stream that reports zero tokens while the plain answer counts
    # them passes every other rule, and bills (or meters) wrong
    _usage(ctx, api.stream_usage(events), api.plain_usage(plain_body))
    if streamed.text != plain.text and len(streamed.cumulative) >= 2:
        raise fail(
            f"the stream's deltas are cumulative: {', '.join(streamed.cumulative[:3])} each "
            f"repeat the whole text sent before them, so a client that appends deltas (every "
            f"SDK) shows the answer duplicated",
            streamed.cumulative[0],
            "each delta carries only the new text",
            streamed.text[:200],
            check=CHECK,
        )
    if streamed.text != plain.text:
        offset = next(
            (i for i, (a, b) in enumerate(zip(streamed.text, plain.text, strict=False)) if a != b),
            min(len(streamed.text), len(plain.text)),
        )
        where = streamed.label_at(offset)
        raise fail(
            f"the joined stream text departs from the plain answer at character {offset} "
            f"({where}): stream {streamed.text[offset : offset + 30]!r}, plain "
            f"{plain.text[offset : offset + 30]!r}",
            where,
            plain.text[:200],
            streamed.text[:200],
            check=CHECK,
        )
    if streamed.tools != plain.tools:
        raise fail(
            "the streamed tool calls differ from the plain answer's",
            "tool calls",
            plain.tools,
            streamed.tools,
            check=CHECK,
        )
    if streamed.finish != plain.finish:
        raise fail(
            f"the stream finished with {streamed.finish!r}, the plain answer with {plain.finish!r}",
            "finish reason",
            plain.finish,
            streamed.finish,
            check=CHECK,
        )


def _usage(ctx: CheckContext, streamed: Usage, plain: Usage) -> None:
    """Each count the stream reported equals the plain answer's (a stream that reports none,
    OpenAI chat without ``stream_options.include_usage``, has nothing to compare)."""
    for name, label in (("prompt", "input"), ("completion", "output")):
        got, expected = getattr(streamed, name), getattr(plain, name)
        if got is None or expected is None or got == expected:
            continue
        ctx.fail(
            fail(
                f"the stream reported {got} {label} tokens, the plain answer to the same "
                f"request {expected}",
                f"usage.{label}_tokens",
                expected,
                got,
                check=CHECK,
            )
        )
