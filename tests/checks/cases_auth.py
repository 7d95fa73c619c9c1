"""Self-test cases of the authentication suite's failure modes.

Each case is the suite's own scenario in miniature, run against the mock with the gateway bug
it exists to catch: body validated before the key, a lower-case ``bearer`` refused, an auth
error on a stream request framed as an event stream.
"""

from __future__ import annotations

from selftest import UNKNOWN_KEY, Case

CASES: list[Case] = [
    Case(
        "auth-after-validation",
        "status",
        f"""\
        id: selftest.auth_order
        title: a bad key with a bad body is an authentication error
        parametrize: {{protocol: [openai, anthropic, gemini]}}
        steps:
          - request:
              protocol: "{{protocol}}"
              operation: chat
              key: "literal:{UNKNOWN_KEY}"
              raw_body: "{{{{not json"
            expect: {{status: "{{target.dialect.auth_error_status}}"}}
        """,
        "expected HTTP status 401, got 400",
        defects=("auth-after-validation",),
    ),
    Case(
        "lowercase-bearer-rejected",
        "status",
        """\
        id: selftest.lowercase_bearer
        title: a lower-case bearer scheme is accepted as the dialect says
        steps:
          - request: {protocol: openai, operation: chat, auth: "raw:bearer {key}"}
            expect: {status: "{target.dialect.lowercase_bearer_status}"}
        """,
        "expected HTTP status 200, got 401",
        defects=("lowercase-bearer-rejected",),
    ),
    Case(
        "stream-auth-error-as-sse",
        "content_type",
        f"""\
        id: selftest.stream_auth_error
        title: an auth error on a stream request is JSON
        parametrize: {{protocol: [openai, anthropic, gemini]}}
        steps:
          - request:
              protocol: "{{protocol}}"
              operation: chat
              stream: true
              key: "literal:{UNKNOWN_KEY}"
            expect: {{content_type: application/json}}
        """,
        "expected Content-Type application/json, got text/event-stream",
        defects=("stream-auth-error-as-sse",),
    ),
    Case(
        "stream-auth-error-as-sse-envelope",
        "error_envelope",
        f"""\
        id: selftest.stream_auth_envelope
        title: an auth error on a stream request is a JSON envelope
        steps:
          - request:
              protocol: anthropic
              operation: chat
              stream: true
              key: "literal:{UNKNOWN_KEY}"
            expect: {{error_envelope: true}}
        """,
        "the error is text/event-stream, not JSON",
        defects=("stream-auth-error-as-sse",),
    ),
]
