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
    "429-without-retry-after": "rate-limit responses carry no `Retry-After` header",
    "anthropic-events-out-of-order": "Anthropic streams close each block before its deltas",
    "gemini-no-usage-metadata": "Gemini responses and streams carry no `usageMetadata`",
    "model-listed-not-callable": "model lists include a model that every call rejects with 404",
}
# The listed-but-uncallable model of the last defect.
PHANTOM_MODEL = "gp-phantom-model"


def describe_defects() -> str:
    width = max(len(name) for name in DEFECTS)
    return "\n".join(f"  {name.ljust(width)}  {text}" for name, text in DEFECTS.items())
