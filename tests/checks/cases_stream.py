"""Self-test cases of the stream checks (stream, max_ttft_ms)."""

from __future__ import annotations

from selftest import MODELS, STREAM, TTFT, Case

CASES: list[Case] = [
    # -- stream -------------------------------------------------------------------------------
    Case(
        "missing-done",
        "stream",
        STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini"),
        "expected exactly one data: [DONE], got 0",
        defects=("missing-done",),
    ),
    Case(
        "anthropic-events-out-of-order",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model="claude-sonnet-4-5"),
        "a delta outside any content block",
        defects=("anthropic-events-out-of-order",),
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
        STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini"),
        "expected exactly one data: [DONE], got 0",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-anthropic",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model="claude-sonnet-4-5"),
        "the last event is not message_stop",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-sse",
        "stream",
        STREAM.format(protocol="gemini", kind="true", model="gemini-2.5-flash"),
        "no candidate carries a finishReason: the stream was cut short",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-array",
        "stream",
        STREAM.format(protocol="gemini", kind="array", model="gemini-2.5-flash"),
        "the array was not closed",
        fault="--cut-after-3",
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
]
