"""Defects that lose request options on the way upstream, as a careless gateway does.

A gateway that rebuilds the request from the fields it knows forwards the prompt but drops
what it does not model: reasoning settings, tools, response formats. The mock reproduces
that by removing those fields from the parsed body before its writers read it, so the
answer shows what an upstream that never saw them would send.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DROPPING_DEFECTS", "drop_options"]

# defect -> top-level fields, and Gemini generationConfig fields, that it removes
_TOP = {
    "reasoning-dropped": ("reasoning_effort", "reasoning", "thinking"),
    "tools-dropped": ("tools", "tool_choice", "toolConfig", "tool_config"),
    "json-mode-dropped": ("response_format", "text"),
}
_GENERATION_CONFIG = {
    "reasoning-dropped": ("thinkingConfig", "thinking_config"),
    "tools-dropped": (),
    "json-mode-dropped": (
        "responseMimeType",
        "response_mime_type",
        "responseSchema",
        "responseJsonSchema",
    ),
}
DROPPING_DEFECTS = frozenset(_TOP)


def drop_options(body: dict[str, Any], defects: frozenset[str]) -> dict[str, Any]:
    """``body`` without the fields the active dropping defects lose (a copy when any)."""
    active = DROPPING_DEFECTS & defects
    if not active:
        return body
    out = dict(body)
    for defect in active:
        for name in _TOP[defect]:
            out.pop(name, None)
        for key in ("generationConfig", "generation_config"):
            config = out.get(key)
            if isinstance(config, dict):
                out[key] = {k: v for k, v in config.items() if k not in _GENERATION_CONFIG[defect]}
    return out
