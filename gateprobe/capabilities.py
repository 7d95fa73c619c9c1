"""The capability vocabulary: what a target profile may claim, and what each claim means.

A scenario ``requires`` capabilities; a target that does not claim one skips the scenario with
that reason. Most are listed under ``capabilities:`` in the profile; a few are implied by other
fields (``auth.required``, ``auth.credentials``) so that a profile says each fact once.
``docs/capabilities.md`` is generated from this module (``python -m gateprobe.capabilities``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable

from gateprobe import protocols

__all__ = ["CAPABILITIES", "IMPLIED", "describe_missing", "is_known", "render_markdown", "unknown"]

_PROTOCOL_FEATURES = {
    "models": "lists its models (GET {prefix}/models) and looks one up",
    "chat": "serves the protocol's chat operation",
    "chat.stream": "streams the chat operation (SSE; Gemini also as a JSON array)",
    "chat.tools": "passes tools (function calling) to the model and back",
    "chat.json": "passes JSON mode / a response schema to the model",
    "chat.reasoning": "passes a reasoning request (reasoning_effort) to a reasoning model",
    "chat.thinking": "passes a thinking request (thinking, thinkingConfig) to the model",
}
CAPABILITIES: dict[str, str] = {
    # each API names the features it has (gateprobe/protocols/), with its own meaning or the
    # one every protocol shares
    **{
        f"{api.protocol}.{feature}": meaning or _PROTOCOL_FEATURES[feature]
        for api in protocols.APIS
        for feature, meaning in api.features.items()
    },
    "mock.faults": (
        "the upstream is gateprobe's mock, so fault directives (error-503, fail-after-3, "
        "cut-after-3, ...) can be injected; each fault is confirmed to reach it first"
    ),
    "upstream.retries": "a failure before the first byte is retried on another channel",
    "deterministic": "the same request always gets the same answer (stream equality)",
    "quota.introspect": "balances can be read (the profile's quota_probe)",
    "quota.model_budget": (
        "a budget tied to a model (target.models.budget), shared by keys, is enforced"
    ),
    "errors.request_id": (
        "error answers carry the request-id header too (no protocol requires it: without "
        "the claim a missing one is a warning)"
    ),
    "stream.cache_control": (
        "event streams carry Cache-Control: no-cache (no protocol requires it: without the "
        "claim a missing one is a warning)"
    ),
}

# Implied by other profile fields, never listed: name or pattern -> where it comes from.
IMPLIED: dict[str, str] = {
    "auth.keys": (
        "the gateway checks keys of its own; implied unless `auth: {required: false}`. "
        "Scenarios about rejected or missing keys need it"
    ),
    "errors.body_limit": (
        "the gateway refuses a body over a limit; implied by `dialect.max_body_bytes` (no "
        "protocol sets a limit, so no limit is assumed)"
    ),
    "auth.<protocol>.<form>": (
        "the protocol's routes accept the credential form (bearer, x-api-key, x-goog-api-key, "
        "query); implied by `auth.credentials` (default: openai bearer; anthropic x-api-key "
        "and bearer; gemini x-goog-api-key and query)"
    ),
}
_IMPLIED_PATTERN = re.compile(
    r"auth\.keys|errors\.body_limit|auth\.(openai|anthropic|gemini)\.[a-z-]+"
)


def unknown(names: Iterable[str]) -> list[str]:
    """The names that are not capabilities (a typo in a profile)."""
    return [n for n in names if not is_known(n)]


def describe_missing(capability: str, target_name: str) -> str:
    """The skip reason for a scenario needing ``capability`` that the target lacks."""
    if capability == "auth.keys":
        return f"target {target_name!r} does not authenticate (auth: {{required: false}})"
    found = re.fullmatch(r"auth\.(\w+)\.([a-z-]+)", capability)
    if found:
        return (
            f"target {target_name!r} does not accept {found.group(2)} credentials on "
            f"{found.group(1)} routes (auth.credentials)"
        )
    return f"capability {capability!r} not claimed by target {target_name!r}"


def is_known(name: str) -> bool:
    return name in CAPABILITIES or _IMPLIED_PATTERN.fullmatch(name) is not None


def _dialect_fields() -> list[tuple[str, str, str]]:
    from gateprobe.schemas import schema_dir
    from gateprobe.target import Dialect

    schema = json.loads((schema_dir() / "target.schema.json").read_text())
    described = schema["properties"]["dialect"]["properties"]
    defaults = Dialect()
    rows = []
    for name in Dialect.__dataclass_fields__:
        default = getattr(defaults, name)
        plain = default is None or isinstance(default, int | str | bool)
        shown = json.dumps(default if plain else dict(default))
        rows.append((name, shown, described.get(name, {}).get("description", "")))
    return rows


def render_markdown() -> str:
    lines = [
        "# Capabilities and dialect fields",
        "",
        "Generated by `python -m gateprobe.capabilities > docs/capabilities.md` from",
        "`gateprobe/capabilities.py`, the `Dialect` of `gateprobe/target.py` and",
        "`schemas/target.schema.json`; do not edit by hand (a test checks it is current).",
        "",
        "A scenario `requires` capabilities; a target that does not claim one skips it with the",
        "reason. A profile listing a name that is not here is refused (file, line, field).",
        "",
        "## Listed under `capabilities:`",
        "",
        "| capability | claims that the gateway ... |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {text} |" for name, text in sorted(CAPABILITIES.items())]
    lines += [
        "",
        "## Implied by other profile fields",
        "",
        "| capability | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {text} |" for name, text in IMPLIED.items()]
    lines += [
        "",
        "## Dialect fields (`dialect:`)",
        "",
        "How the gateway answers where protocols leave room; checks compare with these values.",
        "",
        "| field | default | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | `{default}` | {text} |" for name, default, text in _dialect_fields()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
