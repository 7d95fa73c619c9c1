"""Self-test cases of the stream checks.

``stream`` (grammar and headers), ``stream_incremental`` and ``max_ttft_ms`` (timing),
``stream_error`` (failures around a stream), ``stream_equals_plain`` (joined stream versus the
plain answer) and ``stream_cancelled`` (the mock saw the client hang up). Each streaming defect
of the mock is caught by the check meant for it, with a message naming the event.
"""

from __future__ import annotations

from selftest import MODELS, STREAM, TTFT, Case

OPENAI, ANTHROPIC, GEMINI = MODELS["openai"], MODELS["anthropic"], MODELS["gemini"]

# One stream step with a request body and the checks to run (``{expect}``).
STREAM_WITH = """\
id: selftest.stream_with
title: stream with
steps:
  - request:
      protocol: {protocol}
      operation: {operation}
      stream: {kind}
      model: "{model}@FAULT@"
      body: {body}
    expect: {expect}
"""
PACED = "--chunks-10--itl-30"


def stream_with(
    protocol: str,
    expect: str,
    *,
    model: str | None = None,
    operation: str = "chat",
    kind: str = "true",
    body: str = "{}",
) -> str:
    return STREAM_WITH.format(
        protocol=protocol,
        operation=operation,
        kind=kind,
        model=model or MODELS[protocol],
        body=body,
        expect=expect,
    )


GRAMMAR = "{status: 200, stream: true}"
RESPONSES = stream_with("openai", GRAMMAR, operation="responses")
WITH_USAGE = "{stream_options: {include_usage: true}}"

CANCEL = """\
id: selftest.cancel
title: cancel
steps:
  - request:
      protocol: {protocol}
      operation: chat
      stream: true
      model: "{model}--chunks-20--itl-30@FAULT@"
      disconnect_after_events: 3
    expect: {{status: 200, stream_cancelled: true}}
"""

# A stream whose upstream fails after three chunks, read with a short read timeout: a gateway
# that leaves the stream open after the failure is seen within a second.
HANG = """\
id: selftest.hang
title: hang
steps:
  - request:
      protocol: {protocol}
      operation: {operation}
      stream: {kind}
      model: "{model}--chunks-8--fail-after-3@FAULT@"
      read_timeout: 1
    expect: {{status: 200, stream_error: mid-stream}}
"""
CUT = "--chunks-8--cut-after-3"
# (case name, protocol, operation, stream kind, the event carrying the fabricated end, claim)
FABRICATED_ENDS = (
    ("openai", "openai", "chat", "true", "event[4]", "finish_reason 'stop'"),
    ("anthropic", "anthropic", "chat", "true", "event[7]", "stop_reason 'end_turn'"),
    ("responses", "openai", "responses", "true", "event[7]", "response.completed"),
    ("gemini-sse", "gemini", "chat", "true", "event[3]", "finishReason 'STOP'"),
    ("gemini-array", "gemini", "chat", "array", "element[3]", "finishReason 'STOP'"),
)

CASES: list[Case] = [
    # -- stream: framing and headers ----------------------------------------------------------
    Case(
        "missing-done",
        "stream",
        STREAM.format(protocol="openai", kind="true", model=OPENAI),
        "expected exactly one data: [DONE], got 0",
        defects=("missing-done",),
    ),
    *(
        Case(
            f"wrong-stream-content-type-{protocol}",
            "stream",
            STREAM.format(protocol=protocol, kind="true", model=model),
            "expected Content-Type text/event-stream, got application/json",
            defects=("wrong-stream-content-type",),
        )
        for protocol, model in MODELS.items()
    ),
    Case(
        "cut-after-3-openai",
        "stream",
        STREAM.format(protocol="openai", kind="true", model=OPENAI),
        "expected exactly one data: [DONE], got 0",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-anthropic",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model=ANTHROPIC),
        "the last event (event[5]) is not message_stop but content_block_delta",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-sse",
        "stream",
        STREAM.format(protocol="gemini", kind="true", model=GEMINI),
        "no candidate carries a finishReason: the stream was cut short after event[2]",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-array",
        "stream",
        STREAM.format(protocol="gemini", kind="array", model=GEMINI),
        "the array was not closed",
        fault="--cut-after-3",
    ),
    # -- stream: OpenAI chat grammar ----------------------------------------------------------
    Case(
        "unstable-chunk-id",
        "stream",
        stream_with("openai", GRAMMAR),
        "event[2].id is 'chatcmpl-",
        defects=("unstable-chunk-id",),
    ),
    Case(
        "no-role-in-first-delta",
        "stream",
        stream_with("openai", GRAMMAR),
        "the first delta (event[0]) carries no role: assistant",
        defects=("no-role-in-first-delta",),
    ),
    Case(
        "finish-reason-on-every-chunk",
        "stream",
        stream_with("openai", GRAMMAR),
        "choice 0 has a second non-null finish_reason at event[1] after its finish_reason at "
        "event[0]",
        defects=("finish-reason-on-every-chunk",),
    ),
    Case(
        "usage-chunk-with-choices",
        "stream",
        stream_with("openai", GRAMMAR, body=WITH_USAGE),
        "carries 1 choices; expected choices: []",
        defects=("usage-chunk-with-choices",),
    ),
    Case(
        "usage-chunk-without-include-usage",
        "stream",
        stream_with("openai", GRAMMAR),
        "carries usage although stream_options.include_usage was not set",
        defects=("usage-chunk-without-include-usage",),
    ),
    # -- stream: Responses grammar ------------------------------------------------------------
    Case(
        "responses-sequence-repeats",
        "stream",
        RESPONSES,
        "event[3].sequence_number 2 does not increase strictly (previous 2 at event[2])",
        defects=("responses-sequence-repeats",),
    ),
    Case(
        "responses-no-terminal-event",
        "stream",
        RESPONSES,
        "expected exactly one terminal event",
        defects=("responses-no-terminal-event",),
    ),
    Case(
        "responses-empty-output",
        "stream",
        RESPONSES,
        "(response.completed) has output: [] although",
        defects=("responses-empty-output",),
    ),
    # -- stream: Anthropic grammar ------------------------------------------------------------
    Case(
        "anthropic-events-out-of-order",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model=ANTHROPIC),
        "a delta outside any content block at event[4]",
        defects=("anthropic-events-out-of-order",),
    ),
    Case(
        "anthropic-event-name-mismatch",
        "stream",
        stream_with("anthropic", GRAMMAR),
        "event[3]: event name 'delta' differs from data.type 'content_block_delta'",
        defects=("anthropic-event-name-mismatch",),
    ),
    Case(
        "anthropic-usage-not-cumulative",
        "stream",
        stream_with("anthropic", GRAMMAR, model=f"{ANTHROPIC}--chunks-6"),
        ".usage.output_tokens fell from 5 (event[",
        defects=("anthropic-usage-not-cumulative",),
    ),
    # -- stream: Gemini grammar ---------------------------------------------------------------
    *(
        Case(
            f"gemini-usage-decreasing-{kind}",
            "stream",
            stream_with("gemini", GRAMMAR, kind=kind, model=f"{GEMINI}--chunks-4"),
            f"{label}[4].usageMetadata.candidatesTokenCount fell from 4 ({label}[3]) to 0",
            defects=("gemini-usage-decreasing",),
        )
        for kind, label in (("true", "event"), ("array", "element"))
    ),
    # -- stream_incremental -------------------------------------------------------------------
    *(
        Case(
            f"buffered-stream-{protocol}-{kind}",
            "stream_incremental",
            stream_with(
                protocol,
                "{status: 200, stream_incremental: {min_spread_ms: 150}}",
                kind=kind,
                model=MODELS[protocol] + PACED,
            ),
            "the stream was buffered, not delivered incrementally",
            defects=("buffered-stream",),
        )
        for protocol, kind in (
            ("openai", "true"),
            ("anthropic", "true"),
            ("gemini", "true"),
            ("gemini", "array"),
        )
    ),
    # -- max_ttft_ms --------------------------------------------------------------------------
    *(
        Case(
            f"ttft-600-{protocol}",
            "max_ttft_ms",
            TTFT.format(protocol=protocol, model=model),
            "limit 250 ms",
            fault="--ttft-600",
        )
        for protocol, model in MODELS.items()
    ),
    # -- stream_error -------------------------------------------------------------------------
    *(
        Case(
            f"stream-error-as-200-{protocol}",
            "stream_error",
            stream_with(protocol, "{stream_error: before-first-byte}", model=model + "--error-503"),
            "an upstream error before the first byte came as HTTP 200",
            defects=("stream-error-as-200",),
        )
        for protocol, model in MODELS.items()
    ),
    Case(
        "done-after-stream-error",
        "stream_error",
        stream_with("openai", "{stream_error: mid-stream}", model=f"{OPENAI}--fail-after-3"),
        "event[5] (a usage chunk) comes after the in-band error at event[4]",
        defects=("done-after-stream-error",),
    ),
    *(
        Case(
            f"raw-error-after-stream-{protocol}",
            "stream_error",
            stream_with(protocol, "{stream_error: mid-stream}", model=model + "--fail-after-3"),
            f"raw text outside any frame after event[{last}]",
            defects=("raw-error-after-stream",),
        )
        for protocol, model, last in (("openai", OPENAI, 3), ("anthropic", ANTHROPIC, 5))
    ),
    Case(
        "mid-stream-cut-without-error",
        "stream_error",
        stream_with("anthropic", "{stream_error: mid-stream}"),
        "no in-band error: the stream ended after event[5] without telling the client",
        fault="--cut-after-3",
        # the same upstream failure, told in-band
        clean_scenario=stream_with(
            "anthropic", "{stream_error: mid-stream}", model=f"{ANTHROPIC}--fail-after-3"
        ),
    ),
    *(
        Case(
            f"fabricated-finish-on-cut-{name}",
            "stream_error",
            stream_with(
                protocol,
                "{status: 200, stream_error: cut}",
                model=MODELS[protocol] + CUT,
                operation=operation,
                kind=kind,
            ),
            f"{event} carries {claim} although the upstream cut the stream: a truncated answer "
            "must not look complete",
            defects=("fabricated-finish-on-cut",),
        )
        for name, protocol, operation, kind, event, claim in FABRICATED_ENDS
    ),
    *(
        Case(
            f"hang-after-midstream-failure-{name}",
            "stream_error",
            HANG.format(protocol=protocol, operation=operation, kind=kind, model=MODELS[protocol]),
            "after the upstream failed mid-stream the gateway sent nothing more for 1 s and did "
            f"not close the stream (last event: {last}); a client waits until its own timeout",
            defects=("hang-after-midstream-failure",),
        )
        for name, protocol, operation, kind, last in (
            ("openai", "openai", "chat", "true", "event[3]"),
            ("anthropic", "anthropic", "chat", "true", "event[5]"),
            ("responses", "openai", "responses", "true", "event[6]"),
            ("gemini", "gemini", "chat", "true", "event[2]"),
        )
    ),
    # -- stream_equals_plain ------------------------------------------------------------------
    *(
        Case(
            f"stream-drops-chunk-{name}",
            "stream_equals_plain",
            stream_with(protocol, "{status: 200, stream_equals_plain: true}", operation=operation),
            "the joined stream text departs from the plain answer at character",
            defects=("stream-drops-chunk",),
        )
        for name, protocol, operation in (
            ("openai", "openai", "chat"),
            ("anthropic", "anthropic", "chat"),
            ("gemini", "gemini", "chat"),
            ("responses", "openai", "responses"),
        )
    ),
    *(
        Case(
            f"stream-usage-zero-{name}",
            "stream_equals_plain",
            stream_with(
                protocol,
                "{status: 200, stream_equals_plain: true}",
                operation=operation,
                body=body,
            ),
            "the stream reported 0 ",
            defects=("stream-usage-zero",),
        )
        for name, protocol, operation, body in (
            ("openai", "openai", "chat", WITH_USAGE),
            ("anthropic", "anthropic", "chat", "{}"),
            ("gemini", "gemini", "chat", "{}"),
            ("responses", "openai", "responses", "{}"),
        )
    ),
    *(
        Case(
            f"cumulative-deltas-{name}",
            "stream_equals_plain",
            stream_with(protocol, "{status: 200, stream_equals_plain: true}", operation=operation),
            "the stream's deltas are cumulative: event[",
            defects=("cumulative-deltas",),
        )
        for name, protocol, operation in (
            ("openai", "openai", "chat"),
            ("anthropic", "anthropic", "chat"),
            ("gemini", "gemini", "chat"),
            ("responses", "openai", "responses"),
        )
    ),
    # -- stream_cancelled ---------------------------------------------------------------------
    *(
        Case(
            f"ignores-client-disconnect-{protocol}",
            "stream_cancelled",
            CANCEL.format(protocol=protocol, model=model),
            "it did not notice the cancellation",
            defects=("ignores-client-disconnect",),
        )
        for protocol, model in MODELS.items()
    ),
]
