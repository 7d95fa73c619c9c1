"""Self-test cases of the single-response checks: status, headers, envelopes, schemas, secrets."""

from __future__ import annotations

from selftest import Case, unknown_key_scenario

CASES: list[Case] = [
    # -- error_envelope -----------------------------------------------------------------------
    Case(
        "html-error-page",
        "error_envelope",
        unknown_key_scenario("html", "{error_envelope: true}"),
        "the error is text/html, not JSON",
        defects=("html-error-page",),
    ),
    Case(
        "openai-envelope-on-messages",
        "error_envelope",
        unknown_key_scenario("envelope", "{error_envelope: true}").replace(
            "[openai, anthropic, gemini]", "[anthropic]"
        ),
        "not a valid anthropic error envelope: $.type: expected 'error', got None",
        defects=("openai-envelope-on-messages",),
    ),
    Case(
        "error-status-200",
        "error_envelope",
        unknown_key_scenario("status200", "{error_envelope: true}"),
        "an error came with HTTP status 200",
        defects=("error-status-200",),
    ),
    # -- status -------------------------------------------------------------------------------
    Case(
        "auth-bypass",
        "status",
        unknown_key_scenario("bypass", '{status: "{target.dialect.auth_error_status}"}'),
        "expected HTTP status 401, got 200",
        defects=("auth-bypass",),
    ),
    # -- no_secret_echo -----------------------------------------------------------------------
    Case(
        "key-echoed-in-error",
        "no_secret_echo",
        unknown_key_scenario("echo", "{no_secret_echo: true}"),
        "the response echoes the API key in its body",
        defects=("key-echoed-in-error",),
    ),
    # -- headers ------------------------------------------------------------------------------
    Case(
        "429-without-retry-after",
        "headers",
        """\
        id: selftest.retry_after
        title: an upstream 429 tells when to retry
        steps:
          - request: {protocol: openai, operation: chat, model: gpt-4o-mini--error-429}
            expect: {status: 429, headers: {retry-after: true}}
        """,
        "header retry-after: expected present, got None",
        defects=("429-without-retry-after",),
    ),
    # -- request_id ---------------------------------------------------------------------------
    Case(
        "request-id-header-not-sent",
        "request_id",
        """\
        id: selftest.request_id
        title: the dialect's request-id header comes back
        steps:
          - request: {protocol: openai, operation: models}
            expect: {status: 200, request_id: true}
        """,
        "no x-oneapi-request-id header in the response",
        dialect={"request_id_header": "x-oneapi-request-id"},
    ),
    Case(
        "request-id-missing-on-a-claimed-error",
        "request_id",
        """\
        id: selftest.request_id_error
        title: an error carries the request id when the target claims errors.request_id
        steps:
          - request:
              {protocol: openai, operation: chat, key: "literal:sk-gp-unknown-0123456789abcdef"}
            expect: {status: 401, request_id: true}
        """,
        "no x-oneapi-request-id header in the error response",
        dialect={"request_id_header": "x-oneapi-request-id"},
    ),
    # -- json_schema --------------------------------------------------------------------------
    Case(
        "schema-openai-envelope-on-messages",
        "json_schema",
        """\
        id: selftest.schema_error
        title: a Claude error validates as a Claude error
        steps:
          - request: {protocol: anthropic, operation: chat, key: disabled}
            expect: {json_schema: anthropic/error}
        """,
        "does not match anthropic/error",
        defects=("openai-envelope-on-messages",),
    ),
    Case(
        "schema-html-error-page",
        "json_schema",
        """\
        id: selftest.schema_html
        title: an OpenAI error validates as an OpenAI error
        steps:
          - request: {protocol: openai, operation: chat, key: disabled}
            expect: {json_schema: openai/error}
        """,
        "the response body is not JSON",
        defects=("html-error-page",),
    ),
    Case(
        "schema-wrong-ref",
        "json_schema",
        """\
        id: selftest.schema_ref
        title: the Claude model list read as an OpenAI one
        steps:
          - request: {protocol: anthropic, operation: models}
            expect: {status: 200, json_schema: openai/models.list}
        """,
        "does not match openai/models.list",
        clean_scenario="""\
        id: selftest.schema_ref
        title: the Claude model list read as a Claude one
        steps:
          - request: {protocol: anthropic, operation: models}
            expect: {status: 200, json_schema: anthropic/models.list}
        """,
    ),
    # -- json ---------------------------------------------------------------------------------
    Case(
        "gemini-no-usage-metadata",
        "json",
        """\
        id: selftest.json_usage
        title: a Gemini answer reports its usage
        steps:
          - request: {protocol: gemini, operation: chat}
            expect: {status: 200, json: {usageMetadata: {}, candidates: [{finishReason: STOP}]}}
        """,
        "$.usageMetadata: expected {}, got '<missing>'",
        defects=("gemini-no-usage-metadata",),
    ),
    # -- content_type -------------------------------------------------------------------------
    Case(
        "content-type-html-error-page",
        "content_type",
        unknown_key_scenario("ctype", "{status: 401, content_type: application/json}"),
        "expected Content-Type application/json, got text/html",
        defects=("html-error-page",),
    ),
]
