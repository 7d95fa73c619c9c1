"""Self-test cases of the quota checks (gateprobe/checks/quota.py, quota_admission.py, budget.py).

Each billing defect of the mock is caught by the check meant for it: ``no-rollback`` by
``quota_charged: 0`` (a failed call keeps its pre-deduction), ``double-charge`` by
``quota_charged: usage`` and by ``quota_logged`` (the balance loses twice the logged cost),
``overdraft`` by ``quota_burst`` (a balance goes negative) and ``quota_admission`` (nothing is
reserved before the call), ``double-charge-on-retry`` by ``quota_charged: usage`` on a call the
mock retries upstream (charged once per attempt), ``stream-usage-summed`` by ``quota_charged:
usage`` on Claude and Gemini streams (their cumulative usage reports added up). OpenAI's stream
reports its usage once, so summing it changes nothing there: no OpenAI instance in that case.

``budget_enforced`` repeats a call to the profile's ``budget`` model (the mock's
``gpt-4o-mini-budget``, 150 units shared by every key): ``model-budget-ignored`` admits all 12
calls; a dialect naming another ``model_budget_status`` fails on the mock's 429;
``html-error-page`` makes the refusal a page instead of a JSON error. The healing reset restores
the budget, and a mock reused without one refuses the clean run's first call, which also passes.
"""

from __future__ import annotations

from selftest import Case

FAILED_CALL = """\
id: selftest.quota_refund
title: a failed call is refunded
steps:
  - request: {protocol: openai, operation: chat, model: "gpt-4o-mini--error-503"}
    expect: {status: 503, quota_charged: 0}
"""
MIDSTREAM = """\
id: selftest.quota_midstream
title: a mid-stream upstream failure is rolled back (the mock's policy)
steps:
  - request: {protocol: openai, operation: chat, stream: true,
              model: "gpt-4o-mini--chunks-12--fail-after-4"}
    expect: {status: 200, quota_charged: upstream_failure_midstream}
"""
CHARGED = """\
id: selftest.quota_usage
title: a success is charged its usage at its price
parametrize: {protocol: [openai, anthropic, gemini]}
steps:
  - request: {protocol: "{protocol}", operation: chat, body: {}}
    expect: {status: 200, quota_charged: usage}
"""
RETRIED = """\
id: selftest.quota_retry
title: a call retried upstream is charged once
steps:
  - request: {protocol: openai, operation: chat, body: {max_tokens: 16},
              headers: {x-gateprobe-directives: fail-attempts-2}}
    expect: {status: 200, quota_charged: usage}
"""
# No max_tokens: the pre-deduction (up to the model's 1024 tokens) does not cap the summed charge.
STREAMED = """\
id: selftest.quota_stream_usage
title: a stream is charged its last cumulative usage
parametrize: {protocol: [anthropic, gemini]}
steps:
  - request: {protocol: "{protocol}", operation: chat, stream: true, body: {}}
    expect: {status: 200, quota_charged: usage}
"""
LOGGED = """\
id: selftest.quota_logged
title: the usage log matches the call and the charge
steps:
  - request: {protocol: openai, operation: chat}
    expect: {status: 200, quota_logged: true}
"""
BURST = """\
id: selftest.quota_burst
title: a burst against a small quota
steps:
  - request: {protocol: openai, operation: chat, key: low_quota, body: {max_tokens: 8}}
    expect: {quota_burst: {count: 8, quota: 10}}
"""
ADMISSION = """\
id: selftest.quota_admission
title: the admission boundary
steps:
  - request: {protocol: openai, operation: chat, body: {max_tokens: 2000}}
    expect: {status: 200, quota_admission: true}
"""
MODEL_BUDGET = """\
id: selftest.model_budget
title: a model's own budget ends in a refusal that stays
steps:
  - request: {protocol: openai, operation: chat, model_of: budget}
    expect: {budget_enforced: {max_calls: 12}}
"""

CASES: list[Case] = [
    # -- quota_charged ------------------------------------------------------------------------
    Case(
        "no-rollback-upstream-503",
        "quota_charged",
        FAILED_CALL,
        "a call answered HTTP 503 was charged (key 20, account 20 quota units)",
        defects=("no-rollback",),
    ),
    Case(
        "no-rollback-midstream",
        "quota_charged",
        MIDSTREAM,
        "a call ended by an upstream failure mid-stream was charged",
        defects=("no-rollback",),
    ),
    Case(
        "double-charge-usage",
        "quota_charged",
        CHARGED,
        "at its price that is",
        defects=("double-charge",),
    ),
    Case(
        "double-charge-on-retry",
        "quota_charged",
        RETRIED,
        "(3 times that: the call was charged 3 times)",
        defects=("double-charge-on-retry",),
    ),
    Case(
        "stream-usage-summed",
        "quota_charged",
        STREAMED,
        "more than the stream's last cumulative usage: were its usage reports added up?",
        defects=("stream-usage-summed",),
    ),
    # -- quota_logged -------------------------------------------------------------------------
    Case(
        "double-charge-log",
        "quota_logged",
        LOGGED,
        "the usage log says the call cost",
        defects=("double-charge",),
    ),
    # -- quota_burst --------------------------------------------------------------------------
    Case(
        "overdraft-burst",
        "quota_burst",
        BURST,
        "a balance went negative",
        defects=("overdraft",),
    ),
    # -- quota_admission ----------------------------------------------------------------------
    Case(
        "overdraft-admission",
        "quota_admission",
        ADMISSION,
        "the gateway reserved nothing before the call",
        defects=("overdraft",),
    ),
    # -- budget_enforced ----------------------------------------------------------------------
    Case(
        "model-budget-ignored",
        "budget_enforced",
        MODEL_BUDGET,
        "the model budget was never enforced: 12 calls to gpt-4o-mini-budget all answered 200",
        defects=("model-budget-ignored",),
    ),
    Case(
        "model-budget-status",
        "budget_enforced",
        MODEL_BUDGET,
        "was refused with HTTP 429, not the target's model-budget status 402",
        dialect={"model_budget_status": 402},
    ),
    Case(
        "model-budget-refusal-not-json",
        "budget_enforced",
        MODEL_BUDGET,
        "call 4 to gpt-4o-mini-budget is not a JSON error (text/html)",
        defects=("html-error-page",),
    ),
]
