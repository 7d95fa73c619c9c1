"""Gemini ``generateContent`` / ``streamGenerateContent``, the ``gemini`` protocol.

The stream grammar (the ``stream`` check):

Rules (all MUST; each failure names the event or array element):
 1. without ``alt=sse`` a JSON array (``application/json``) whose elements are objects; with
    ``alt=sse`` ``data:`` events; never ``[DONE]``;
 2. every element has ``candidates`` (or a ``promptFeedback`` for a blocked prompt) and no
    ``error``;
 3. some candidate carries a ``finishReason`` (or the prompt was blocked): the stream was not
    cut short (Gemini has no terminator; the end of the body is the signal);
 4. ``usageMetadata`` counts never fall from one element to the next: the last one is
    authoritative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateprobe.protocols._api import (
    DONE,
    Answer,
    Api,
    Delta,
    GrammarOptions,
    Operation,
    Payload,
    Usage,
    as_int,
    dig,
    error_message,
    error_object,
    fail,
    objects_at,
)
from gateprobe.protocols.openai_chat import PROMPT

__all__ = ["GEMINI"]

COUNTS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount")


def check_gemini_stream(events: list[Payload]) -> None:
    for p in events:
        if p.data == DONE:
            raise fail(f"a Gemini stream must not send data: [DONE] ({p.label})", p.label)
        if not isinstance(p.data, dict):
            raise fail(f"{p.label} is not a JSON object", p.label, "an object", p.data)
        if "error" in p.data:
            raise fail(
                f"{p.label} carries an error: {str(p.data['error'])[:120]}",
                f"{p.label}.error",
                "no error",
                p.data["error"],
            )
        if "candidates" not in p.data and "promptFeedback" not in p.data:
            raise fail(f"{p.label} has no candidates", f"{p.label}.candidates")
    if not any(_finished(p.data) for p in events):
        raise fail(
            f"no candidate carries a finishReason: the stream was cut short after "
            f"{events[-1].label}",
            "events[*].candidates[*].finishReason",
            "a finishReason",
            None,
        )
    _usage(events)


def _finished(data: dict[str, Any]) -> bool:
    candidates = data.get("candidates") or []
    if any(isinstance(c, dict) and c.get("finishReason") for c in candidates):
        return True
    return bool((data.get("promptFeedback") or {}).get("blockReason"))


def _usage(events: list[Payload]) -> None:
    previous: dict[str, tuple[int, str]] = {}
    for p in events:
        meta = p.data.get("usageMetadata")
        if not isinstance(meta, dict):
            continue
        for name in COUNTS:
            value = meta.get(name)
            if not isinstance(value, int):
                continue
            before = previous.get(name)
            if before is not None and value < before[0]:
                raise fail(
                    f"{p.label}.usageMetadata.{name} fell from {before[0]} ({before[1]}) to "
                    f"{value}: usage must be cumulative, the last one authoritative",
                    f"{p.label}.usageMetadata.{name}",
                    f">= {before[0]}",
                    value,
                )
            previous[name] = (value, p.label)


class Gemini(Api):
    name = "gemini"
    protocol = "gemini"
    primary = True
    default_prefix = "/v1beta"
    default_auth = "x-goog-api-key"
    credentials = ("x-goog-api-key", "query")
    model_in_body = False
    operations = {
        "chat": Operation(
            "POST",
            "/models/{model}:generateContent",
            "chat",
            {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
        ),
        "models": Operation("GET", "/models", "chat", None),
        "model": Operation("GET", "/models/{model}", "chat", None),
    }
    features = {
        "models": None,
        "chat": None,
        "chat.stream": None,
        "chat.tools": None,
        "chat.json": None,
        "chat.thinking": None,
    }
    stream_modes = ("sse", "array")
    stream_schema = "gemini/generate_content_response"
    output_marker = b'"text"'
    in_band_error = "an element with error"
    # Gemini defines no in-band error: a stream that just ends is allowed (a warning)
    in_band_error_required = False

    def stream_request(self, path: str, body: Any, query: dict[str, str], mode: str) -> str:
        if mode != "array":
            query.setdefault("alt", "sse")
        return path.replace(":generateContent", ":streamGenerateContent")

    def claims_path(self, path: str) -> bool:
        return ":generateContent" in path or ":streamGenerateContent" in path

    def owns_event(self, event: str | None, data: dict[str, Any]) -> bool:
        return isinstance(data.get("candidates"), list)

    def envelope_problems(self, body: Any, status: int | None) -> list[tuple[str, str]]:
        error, out = error_object(body)
        if error is None:
            return out
        if not isinstance(error.get("code"), int) or isinstance(error.get("code"), bool):
            out.append(("$.error.code", "missing or not an integer"))
        elif status is not None and error["code"] != status:
            out.append(("$.error.code", f"{error['code']} differs from the HTTP status {status}"))
        for name in ("message", "status"):
            if not isinstance(error.get(name), str):
                out.append((f"$.error.{name}", "missing or not a string"))
        return out

    def listed_models(self, body: Any) -> list[str] | None:
        models = body.get("models", []) if isinstance(body, dict) else None
        if not isinstance(models, list):
            return None
        return [
            str(m["name"]).removeprefix("models/")
            for m in models
            if isinstance(m, dict) and isinstance(m.get("name"), str)
        ]

    def generates(self, listing: Any, model: str) -> bool:
        # Gemini lists embedding models too: only those that generate content are called
        for entry in listing.get("models", []) if isinstance(listing, dict) else []:
            if not isinstance(entry, dict):
                continue
            if str(entry.get("name", "")).removeprefix("models/") == model:
                methods = entry.get("supportedGenerationMethods")
                return not isinstance(methods, list) or "generateContent" in methods
        return True

    def recognises(self, body: Any) -> bool:
        return isinstance(body, dict) and isinstance(body.get("candidates"), list)

    def plain_answer(self, body: Any) -> Answer:
        answer = Answer()
        if not isinstance(body, dict):
            return answer
        for candidate in (body.get("candidates") or [])[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("thought"):
                    continue
                answer.text += part.get("text") or ""
                if "functionCall" in part:
                    call = part["functionCall"]
                    answer.tools.append((call.get("name", ""), call.get("args")))
            answer.finish = candidate.get("finishReason")
        return answer

    def reasoning_missing(self, body: Any) -> str | None:
        tokens = dig(body, "usageMetadata", "thoughtsTokenCount")
        if any(i.get("thought") is True for i in _parts(body)) or (
            isinstance(tokens, int) and tokens > 0
        ):
            return None
        return "no thought part and no usageMetadata.thoughtsTokenCount"

    def tools_missing(self, body: Any) -> str | None:
        calls = [i["functionCall"] for i in _parts(body) if isinstance(i.get("functionCall"), dict)]
        if not calls:
            return "no functionCall part"
        if not all(isinstance(c.get("args", {}), dict) and c.get("name") for c in calls):
            return "a functionCall has no name or its args are not an object"
        return None

    def check_stream(self, events: list[Payload], options: GrammarOptions) -> None:
        check_gemini_stream(events)

    def classify(self, event: str | None, obj: dict[str, Any]) -> Delta:
        if obj.get("error"):
            return Delta(error=error_message(obj["error"]))
        visible = reasoning = done = False
        for candidate in obj.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                if part.get("thought") and part.get("text"):
                    reasoning = True
                elif part.get("text") or part.get("functionCall"):
                    visible = True
            if candidate.get("finishReason"):
                done = True
        usage = obj.get("usageMetadata")
        if not usage:  # most chunks: no usage to read
            return Delta(visible, reasoning, done=done)
        out = as_int(usage.get("candidatesTokenCount"))
        thoughts = as_int(usage.get("thoughtsTokenCount"))
        if out is not None and thoughts:
            out += thoughts
        return Delta(
            visible,
            reasoning,
            out,
            thoughts,
            done=done,
            input_tokens=as_int(usage.get("promptTokenCount")),
        )

    def classify_body(self, obj: dict[str, Any], operation: str) -> Delta:
        usage = obj.get("usageMetadata") or {}
        return Delta(
            visible=True,
            output_tokens=as_int(usage.get("candidatesTokenCount")),
            input_tokens=as_int(usage.get("promptTokenCount")),
        )

    def plain_usage(self, body: Any) -> Usage:
        # a plain answer counts its thoughts in the completion, as a stream does
        delta = self.classify(None, body) if isinstance(body, dict) else Delta()
        return Usage(delta.input_tokens, delta.output_tokens)

    def carries_output(self, event: str | None, obj: dict[str, Any], visible: bool) -> bool:
        return any(
            isinstance(c, dict)
            and any(
                isinstance(p, dict)
                and (p.get("text") or p.get("functionCall"))
                and not (visible and p.get("thought"))
                for p in ((c.get("content") or {}).get("parts") or [])
            )
            for c in obj.get("candidates") or []
        )

    def joined_answer(self, events: Sequence[Payload]) -> Answer:
        answer = Answer()
        tools: list[tuple[str, Any]] = []
        for p in events:
            if not isinstance(p.data, dict):
                continue
            for candidate in p.data.get("candidates") or []:
                for part in (candidate.get("content") or {}).get("parts") or []:
                    if part.get("thought"):
                        continue
                    answer.add(part.get("text"), p.label)
                    if "functionCall" in part:
                        call = part["functionCall"]
                        tools.append((call.get("name", ""), call.get("args")))
                answer.finish = candidate.get("finishReason") or answer.finish
        answer.tools = tools
        return answer

    def claims_completion(self, p: Payload) -> str | None:
        data = p.data
        if data == DONE:
            return "data: [DONE]"
        if not isinstance(data, dict):
            return None
        for candidate in data.get("candidates") or []:
            if isinstance(candidate, dict) and candidate.get("finishReason"):
                return f"finishReason {candidate['finishReason']!r}"
        return None

    def content_pieces(self, p: Payload) -> int:
        if not isinstance(p.data, dict):
            return 0
        count = 0
        for candidate in p.data.get("candidates") or []:
            parts = (candidate.get("content") or {}).get("parts") or []
            count += any(part.get("text") for part in parts if isinstance(part, dict))
        return count


def _parts(body: Any) -> list[dict[str, Any]]:
    return objects_at(body, "candidates", 0, "content", "parts")


GEMINI = Gemini()
