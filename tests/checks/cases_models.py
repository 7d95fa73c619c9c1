"""Self-test cases of the model-list checks: ``model_listed`` and ``models_match_calls``.

The mock's model defects: a listed model every call refuses, callable models left out of the
list, and a key's model variant ignored (every key lists and calls every variant).
"""

from __future__ import annotations

from selftest import Case

MATCH = """\
id: selftest.models_match
title: listed models are callable, unlisted ones are not
parametrize: {{protocol: [{protocols}]}}
steps:
  - request: {{protocol: "{{protocol}}", operation: models}}
    expect: {{models_match_calls: true}}
"""

CASES: list[Case] = [
    Case(
        "model-listed-not-callable",
        "models_match_calls",
        MATCH.format(protocols="openai, anthropic, gemini"),
        "gp-phantom-model is listed but not callable (HTTP 404)",
        defects=("model-listed-not-callable",),
    ),
    Case(
        "model-callable-not-listed",
        "models_match_calls",
        MATCH.format(protocols="openai"),
        "text-embedding-3-small is callable but not listed (HTTP 200)",
        defects=("model-callable-not-listed",),
    ),
    Case(
        "variant-listed-for-another-variant",
        "model_listed",
        """\
        id: selftest.variant_listed
        title: a key of another variant is not shown the variant's models
        parametrize: {protocol: [openai, anthropic, gemini]}
        steps:
          - request: {protocol: "{protocol}", operation: models, key: valid}
            expect: {model_listed: [{model_of: variant_only, listed: false}]}
        """,
        "model gpt-4o-pro is in the list, but this key may not use it",
        defects=("variant-not-honoured",),
    ),
    Case(
        "embeddings-model-missing-from-list",
        "model_listed",
        """\
        id: selftest.model_in_list
        title: the target's embeddings model is listed
        steps:
          - request: {protocol: openai, operation: models}
            expect: {model_listed: [{model_of: embeddings}]}
        """,
        "model text-embedding-3-small is not in the list",
        defects=("model-callable-not-listed",),
    ),
    Case(
        "variant-not-honoured-call",
        "status",
        """\
        id: selftest.variant_call
        title: a key of another variant cannot call the variant's model
        steps:
          - request: {protocol: openai, operation: chat, key: valid, model_of: variant_only}
            expect: {status: "{target.dialect.unknown_model_status}"}
        """,
        "expected HTTP status 404, got 200",
        defects=("variant-not-honoured",),
    ),
]
