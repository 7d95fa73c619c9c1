"""Defect switches: each turns the mock into a gateway with one known bug.

The suites' self-tests run each conformance check against the defect it is meant to catch
and assert that the check fails. Names are stable: scenarios and docs refer to them.
"""

from __future__ import annotations

__all__ = ["DEFECTS", "describe_defects"]

DEFECTS: dict[str, str] = {
    "missing-done": "OpenAI chat streams end without the `data: [DONE]` terminator",
    "buffered-stream": "streams are generated in full and sent in one write at the end",
    "wrong-stream-content-type": "event streams are sent as `application/json`",
    "usage-chunk-with-choices": "the include_usage chunk carries a non-empty `choices` list",
    "html-error-page": "errors come as an HTML page (`text/html`) instead of JSON",
    "openai-envelope-on-messages": "errors on /v1/messages use the OpenAI envelope",
    "error-status-200": "error bodies are sent with HTTP status 200",
    "auth-bypass": "any key, or none, is accepted",
    "x-api-key-ignored": "`x-api-key` is ignored on Claude routes (only `Authorization` works)",
    "key-echoed-in-error": "authentication errors quote the presented key in full",
    "no-rollback": "a failed call keeps its pre-deducted quota",
    "double-charge": "a successful call is charged twice its cost",
    "double-charge-on-retry": "a call retried upstream is charged once per attempt",
    "stream-usage-summed": "a stream's cumulative usage reports are added up, not the last taken",
    "overdraft": "admission needs only a balance above zero and the cost is taken unchecked",
    "model-budget-ignored": "a model's own budget is not enforced: its calls are never refused",
    "429-without-retry-after": "rate-limit responses carry no `Retry-After` header",
    "anthropic-events-out-of-order": "Anthropic streams close each block before its deltas",
    "gemini-no-usage-metadata": "Gemini responses and streams carry no `usageMetadata`",
    "model-listed-not-callable": "model lists include a model that every call rejects with 404",
    "stream-error-as-200": "an upstream error before the first byte becomes a 200 event stream",
    "done-after-stream-error": "OpenAI chat: a mid-stream failure is followed by usage and [DONE]",
    "raw-error-after-stream": "a mid-stream failure is appended as raw JSON outside any SSE frame",
    "fabricated-finish-on-cut": "a stream the upstream cut (`cut-after-N`) gets the normal end "
    "(finish_reason stop and [DONE], message_stop, response.completed, finishReason STOP)",
    "hang-after-midstream-failure": "after a mid-stream upstream failure (`fail-after-N`) nothing "
    "more is sent and the stream stays open until the client hangs up",
    "unstable-chunk-id": "OpenAI chat chunks change `id` mid-stream",
    "no-role-in-first-delta": "the first OpenAI chat delta carries no `role`",
    "finish-reason-on-every-chunk": "every OpenAI chat chunk carries a non-null `finish_reason`",
    "usage-chunk-without-include-usage": "OpenAI chat streams send a usage chunk unasked",
    "responses-sequence-repeats": "a Responses stream event repeats the previous `sequence_number`",
    "responses-no-terminal-event": "Responses streams end without `response.completed`",
    "responses-empty-output": "`response.completed` carries `output: []` after deltas were sent",
    "anthropic-event-name-mismatch": "Anthropic deltas come as `event: delta` (not the data.type)",
    "anthropic-usage-not-cumulative": "Anthropic `message_delta` output_tokens count increments",
    "gemini-usage-decreasing": "Gemini streams end with an extra chunk whose usage counts less",
    "stream-drops-chunk": "streams drop their second content piece (joined != plain answer)",
    "stream-usage-zero": "streams report every usage count as 0 (the plain answer counts them): "
    "OpenAI's usage chunk, response.completed, message_start/message_delta, usageMetadata",
    "cumulative-deltas": "each streamed text delta repeats the whole text so far",
    "ignores-client-disconnect": "a client that hangs up mid-stream is logged as a completed call",
    "no-cache-control": "event streams carry no `Cache-Control` (a `stream` warning, no failure)",
    "model-callable-not-listed": "model lists leave out the embeddings models, which stay callable",
    "variant-not-honoured": "a key's model variant is ignored: any key lists and calls any variant",
    "auth-after-validation": "the body is validated before the key (bad key + bad body: 400)",
    "lowercase-bearer-rejected": "`Authorization: bearer <key>` (lower-case scheme) is refused",
    "stream-auth-error-as-sse": "errors on `stream: true` requests come as an event stream",
    "upstream-secret-in-error": "upstream failures quote the channel's upstream key and URL",
    "reasoning-dropped": "`reasoning_effort`, Claude `thinking`, Gemini `thinkingConfig` dropped",
    "tools-dropped": "`tools` and `tool_choice` (Gemini `tools`, `toolConfig`) are dropped",
    "json-mode-dropped": "`response_format`, Gemini `responseMimeType`/`responseSchema` dropped",
}
# The listed-but-uncallable model of the last defect.
PHANTOM_MODEL = "gp-phantom-model"
# What ``upstream-secret-in-error`` leaks: the channel's upstream endpoint and key.
UPSTREAM_URL = "https://api.openai.com/v1/chat/completions"
UPSTREAM_SECRET = "sk-proj-gpUpstreamChannelKey0123456789abcdef"


def describe_defects() -> str:
    width = max(len(name) for name in DEFECTS)
    return "\n".join(f"  {name.ljust(width)}  {text}" for name, text in DEFECTS.items())
