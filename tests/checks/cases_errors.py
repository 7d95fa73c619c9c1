"""Self-test cases of the error-format suite: leaked upstream credentials, HTML error pages,
errors sent with HTTP 200 on the routes the suite probes (unknown paths, malformed bodies)."""

from __future__ import annotations

from selftest import Case

CASES: list[Case] = [
    Case(
        "upstream-secret-in-error",
        "no_credential_leak",
        """\
        id: selftest.upstream_secret
        title: an upstream failure quotes no credential
        parametrize: {protocol: [openai, anthropic, gemini]}
        steps:
          - request: {protocol: "{protocol}", operation: chat, model_suffix: "@FAULT@"}
            expect: {no_credential_leak: true}
        """,
        "the response body carries an sk- API key (sk-…cdef)",
        defects=("upstream-secret-in-error",),
        fault="--error-503",
    ),
    Case(
        "key-echoed-in-error-is-a-credential",
        "no_credential_leak",
        """\
        id: selftest.echoed_key
        title: an auth error quotes no credential
        steps:
          - request: {protocol: openai, operation: chat, key: "literal:sk-gp-unknown-0123456789ab"}
            expect: {no_credential_leak: true}
        """,
        "the response body carries an sk- API key",
        defects=("key-echoed-in-error",),
    ),
    Case(
        "unknown-path-html-page",
        "error_envelope",
        """\
        id: selftest.unknown_path
        title: an unknown path is a JSON error
        steps:
          - request: {protocol: openai, method: POST, path: /chat/completions, body: {}}
            expect: {error_envelope: true}
        """,
        "the error is text/html, not JSON",
        defects=("html-error-page",),
    ),
    Case(
        "malformed-json-status-200",
        "status",
        """\
        id: selftest.malformed_json
        title: a body that is not JSON is a 400
        parametrize: {protocol: [openai, anthropic, gemini]}
        steps:
          - request: {protocol: "{protocol}", operation: chat, raw_body: "{{not json"}
            expect: {status: 400}
        """,
        "expected HTTP status 400, got 200",
        defects=("error-status-200",),
    ),
]
