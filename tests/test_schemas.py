"""The protocol JSON Schemas (schemas/<protocol>/*.schema.json) and gateprobe.schemas.

Three layers: every file is a valid draft 2020-12 schema with the house metadata; a table of
hand-written instances (one valid, one invalid with the path the error must name) per case;
and the bundled mock's real answers, streams and error envelopes validate against them.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from support import bearer, claude, goog

from gateprobe import schemas
from gateprobe.errors import GateprobeError
from gateprobe.mock import MockServer
from gateprobe.schemas import (
    SchemaNotFoundError,
    available_schemas,
    load_schema,
    validation_errors,
    validator,
)
from gateprobe.sse import JsonArrayParser, SSEParser

REPO_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
EXPECTED_REFS = {
    "openai/error",
    "openai/models.list",
    "openai/model",
    "openai/chat.completion",
    "openai/chat.completion.chunk",
    "openai/responses.response",
    "openai/responses.stream_event",
    "openai/responses.compaction",
    "openai/embeddings.list",
    "openai/images.response",
    "openai/rerank.response",
    "anthropic/error",
    "anthropic/message",
    "anthropic/models.list",
    "anthropic/stream_event",
    "gemini/error",
    "gemini/generate_content_response",
    "gemini/models.list",
    "gemini/model",
}

# -- the files ---------------------------------------------------------------------------


def test_the_expected_schemas_exist() -> None:
    assert schemas.schema_dir() == REPO_SCHEMAS  # a checkout finds the repository's copy
    assert set(available_schemas()) == EXPECTED_REFS


@pytest.mark.parametrize("ref", sorted(EXPECTED_REFS))
def test_schema_is_valid_draft_2020_12(ref: str) -> None:
    schema = load_schema(ref)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://gateprobe.dev/schemas/{ref}.schema.json"
    assert schema["title"].strip()
    assert len(schema["description"]) > 40
    # gateways add fields: no schema forbids unknown properties
    assert '"additionalProperties": false' not in json.dumps(schema)


def test_nullable_is_translated_not_copied() -> None:
    """OpenAPI 3.0 ``nullable: true`` means nothing to JSON Schema; none may slip in."""
    for ref in EXPECTED_REFS:
        assert '"nullable"' not in json.dumps(load_schema(ref)), ref


# -- the loader --------------------------------------------------------------------------


def test_load_schema_returns_a_private_copy() -> None:
    first = load_schema("openai/error")
    first["title"] = "changed"
    first["properties"].clear()
    again = load_schema("openai/error")
    assert again["title"] == "OpenAI error envelope"
    assert "error" in again["properties"]


@pytest.mark.parametrize(
    "ref", ["openai/nope", "nope/error", "openai", "../schemas/x", "a/b/c", ""]
)
def test_unknown_or_malformed_ref_is_refused(ref: str) -> None:
    with pytest.raises(SchemaNotFoundError):
        load_schema(ref)
    with pytest.raises(LookupError):
        validator(ref)


def test_schema_not_found_is_a_gateprobe_error_and_still_a_lookup_error() -> None:
    # LookupError stays a base: the check arguments' schema_ref format catches that
    assert issubclass(SchemaNotFoundError, GateprobeError)
    assert issubclass(SchemaNotFoundError, LookupError)


def test_validator_is_cached_and_resolves_cross_file_refs() -> None:
    assert validator("openai/models.list") is validator("openai/models.list")
    listing = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1}]}
    # the item's rules live in model.schema.json, reached through $ref
    assert validation_errors("openai/models.list", listing) == [
        ("$.data[0]", "'owned_by' is a required property")
    ]


def test_validation_errors_lists_every_error_best_first() -> None:
    chunk = {
        "object": "chat.completion.chunk",
        "created": "yesterday",
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "robot"}, "finish_reason": None}],
    }
    errors = validation_errors("openai/chat.completion.chunk", chunk)
    paths = [path for path, _ in errors]
    assert paths == ["$", "$.created", "$.choices[0].delta.role"]
    assert "'id' is a required property" in errors[0][1]
    assert validation_errors("openai/chat.completion.chunk", {**chunk, "id": "c"})[0][0] == (
        "$.created"
    )


def test_validation_errors_names_the_closest_branch_of_an_any_of() -> None:
    [(path, message)] = validation_errors(
        "openai/rerank.response",
        {"results": [{"index": 0, "relevance_score": 0.5, "document": {"text": 7}}]},
    )
    assert path == "$.results[0].document"
    assert "closest: $.results[0].document.text: 7 is not of type 'string'" in message


def test_lookup_falls_back_to_the_packaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel has no ../schemas: gateprobe/_schemas is used instead."""
    packaged = tmp_path / "_schemas"
    (packaged / "openai").mkdir(parents=True)
    (packaged / "openai" / "error.schema.json").write_text("{}")
    monkeypatch.setattr(schemas, "SCHEMA_DIRS", (tmp_path / "missing", packaged))
    assert schemas.schema_dir() == packaged
    assert schemas.available_schemas() == ["openai/error"]
    monkeypatch.setattr(schemas, "SCHEMA_DIRS", (tmp_path / "missing", tmp_path / "also"))
    with pytest.raises(SchemaNotFoundError, match="no protocol schemas found"):
        schemas.schema_dir()


# -- the table: hand-written instances ----------------------------------------------------

DELETE = object()


def changed(base: dict[str, Any], *edits: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted-path edits (``choices.0.delta``); DELETE removes."""
    out = copy.deepcopy(base)
    for path, value in edits:
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return out


OPENAI_ERROR = {
    "error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
MODEL = {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}
MODELS = {"object": "list", "data": [MODEL], "success": True}
USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
CHAT = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1677652288,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {**USAGE, "prompt_tokens_details": {"cached_tokens": 0}},
}
CHAT_TOOLS = changed(
    CHAT,
    ("choices.0.finish_reason", "tool_calls"),
    ("choices.0.message.content", None),
    (
        "choices.0.message.tool_calls",
        [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    ),
)
CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
}
USAGE_CHUNK = {**CHUNK, "choices": [], "usage": USAGE}
TOOL_CHUNK = changed(
    CHUNK,
    (
        "choices.0.delta",
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
    ),
)
RESPONSE = {
    "id": "resp_67ccd2bed1ec8190",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-4.1",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "In a peaceful grove...", "annotations": []}
            ],
        },
        {
            "type": "function_call",
            "id": "fc_12345",
            "call_id": "call_12345",
            "name": "get_weather",
            "arguments": '{"location":"Paris"}',
            "status": "completed",
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "temperature": 1.0,
    "top_p": 1.0,
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 123,
    },
    "metadata": {},
}
TEXT_DELTA = {
    "type": "response.output_text.delta",
    "sequence_number": 4,
    "item_id": "msg_123",
    "output_index": 0,
    "content_index": 0,
    "delta": "In",
    "logprobs": [],
}
COMPLETED = {"type": "response.completed", "sequence_number": 9, "response": RESPONSE}
STREAM_ERROR = {
    "type": "error",
    "sequence_number": 1,
    "code": "ERR_SOMETHING",
    "message": "Something went wrong",
    "param": None,
}
COMPACTION = {
    "id": "resp_001",
    "object": "response.compaction",
    "created_at": 1764967971,
    "output": [
        {
            "id": "msg_000",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_text", "text": "Create a landing page."}],
        },
        {"id": "cmp_001", "type": "compaction", "encrypted_content": "gAAAAABpM0Yj"},
    ],
    "usage": RESPONSE["usage"],
}
EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}
IMAGES = {
    "created": 1713833628,
    "data": [{"b64_json": "iVBORw0KGgo=", "revised_prompt": "a cat"}],
    "usage": {
        "total_tokens": 100,
        "input_tokens": 50,
        "output_tokens": 50,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
    },
}
RERANK = {
    "model": "jina-reranker-v2-base-multilingual",
    "usage": {"total_tokens": 15},
    "results": [
        {"index": 1, "document": {"text": "Paris"}, "relevance_score": 0.92},
        {"index": 0, "relevance_score": 0.11},
    ],
}
ANTHROPIC_ERROR = {
    "type": "error",
    "error": {"type": "not_found_error", "message": "The requested resource was not found."},
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
}
MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me see.", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "Hi! My name is Claude."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503},
}
ANTHROPIC_MODELS = {
    "data": [
        {
            "type": "model",
            "id": "claude-sonnet-4-5-20250929",
            "display_name": "Claude Sonnet 4.5",
            "created_at": "2025-09-29T00:00:00Z",
        }
    ],
    "has_more": False,
    "first_id": "claude-sonnet-4-5-20250929",
    "last_id": "claude-sonnet-4-5-20250929",
}
MESSAGE_START = {
    "type": "message_start",
    "message": {
        **MESSAGE,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    },
}
BLOCK_START = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},
}
TEXT_BLOCK_DELTA = {
    "type": "content_block_delta",
    "index": 0,
    "delta": {"type": "text_delta", "text": "Hello"},
}
JSON_DELTA = {
    "type": "content_block_delta",
    "index": 1,
    "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
}
THINKING_DELTA = {
    "type": "content_block_delta",
    "index": 0,
    "delta": {"type": "thinking_delta", "thinking": "Let me solve this"},
}
SIGNATURE_DELTA = {
    "type": "content_block_delta",
    "index": 0,
    "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
}
MESSAGE_DELTA = {
    "type": "message_delta",
    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    "usage": {"output_tokens": 15},
}
ANTHROPIC_STREAM_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
GEMINI_ERROR = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "X"}],
    }
}
GEMINI = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True},
                    {"text": "Hello"},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc",
}
GEMINI_BLOCKED = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}}
GEMINI_MODELS = {
    "models": [
        {
            "name": "models/gemini-2.5-flash",
            "version": "001",
            "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
    ],
    "nextPageToken": "Ch5tb2RlbHM",
}

# (schema ref, valid instance, invalid instance, the path an error of the invalid one names)
TABLE: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("openai/error", OPENAI_ERROR, changed(OPENAI_ERROR, ("error.code", DELETE)), "$.error"),
    ("openai/error", OPENAI_ERROR, changed(OPENAI_ERROR, ("error.param", 3)), "$.error.param"),
    ("openai/error", OPENAI_ERROR, {"message": "flat, no envelope"}, "$"),
    ("openai/model", MODEL, changed(MODEL, ("object", "engine")), "$.object"),
    ("openai/model", MODEL, changed(MODEL, ("created", "2024-01-01")), "$.created"),
    ("openai/models.list", MODELS, changed(MODELS, ("data.0.id", DELETE)), "$.data[0]"),
    ("openai/models.list", MODELS, changed(MODELS, ("object", "models")), "$.object"),
    ("openai/chat.completion", CHAT, changed(CHAT, ("choices", [])), "$.choices"),
    (
        "openai/chat.completion",
        CHAT,
        changed(CHAT, ("choices.0.finish_reason", None)),
        "$.choices[0].finish_reason",
    ),
    (
        "openai/chat.completion",
        CHAT_TOOLS,
        changed(CHAT_TOOLS, ("choices.0.message.tool_calls.0.function.arguments", {"city": 1})),
        "$.choices[0].message.tool_calls[0].function.arguments",
    ),
    (
        "openai/chat.completion",
        CHAT,
        changed(CHAT, ("choices.0.message.content", DELETE)),
        "$.choices[0].message",
    ),
    (
        "openai/chat.completion",
        CHAT,
        changed(CHAT, ("usage.total_tokens", 2.5)),
        "$.usage.total_tokens",
    ),
    (
        "openai/chat.completion.chunk",
        CHUNK,
        changed(CHUNK, ("choices.0.delta.content", 5)),
        "$.choices[0].delta.content",
    ),
    (
        "openai/chat.completion.chunk",
        TOOL_CHUNK,
        changed(TOOL_CHUNK, ("choices.0.delta.tool_calls.0.index", DELETE)),
        "$.choices[0].delta.tool_calls[0]",
    ),
    (
        "openai/chat.completion.chunk",
        {**CHUNK, "usage": None},
        changed(CHUNK, ("choices.0.finish_reason", "done")),
        "$.choices[0].finish_reason",
    ),
    # choices may be empty only on the usage chunk ...
    ("openai/chat.completion.chunk", USAGE_CHUNK, {**CHUNK, "choices": []}, "$"),
    (
        "openai/chat.completion.chunk",
        USAGE_CHUNK,
        {**CHUNK, "choices": [], "usage": None},
        "$.usage",
    ),
    # ... and the usage chunk has no choices
    ("openai/chat.completion.chunk", USAGE_CHUNK, {**CHUNK, "usage": USAGE}, "$.choices"),
    (
        "openai/chat.completion.chunk",
        USAGE_CHUNK,
        changed(USAGE_CHUNK, ("usage.prompt_tokens", "9")),
        "$.usage.prompt_tokens",
    ),
    ("openai/responses.response", RESPONSE, changed(RESPONSE, ("status", "done")), "$.status"),
    ("openai/responses.response", RESPONSE, changed(RESPONSE, ("output", None)), "$.output"),
    (
        "openai/responses.response",
        RESPONSE,
        changed(RESPONSE, ("output.0.content.0.annotations", DELETE)),
        "$.output[0].content[0]",
    ),
    (
        "openai/responses.response",
        RESPONSE,
        changed(RESPONSE, ("output.1.arguments", {"location": "Paris"})),
        "$.output[1].arguments",
    ),
    (
        "openai/responses.response",
        RESPONSE,
        changed(RESPONSE, ("usage.output_tokens_details", DELETE)),
        "$.usage",
    ),
    ("openai/responses.response", RESPONSE, changed(RESPONSE, ("status", "failed")), "$.error"),
    ("openai/responses.stream_event", TEXT_DELTA, changed(TEXT_DELTA, ("delta", 1)), "$.delta"),
    (
        "openai/responses.stream_event",
        TEXT_DELTA,
        changed(TEXT_DELTA, ("sequence_number", DELETE)),
        "$",
    ),
    (
        "openai/responses.stream_event",
        TEXT_DELTA,
        changed(TEXT_DELTA, ("content_index", "0")),
        "$.content_index",
    ),
    ("openai/responses.stream_event", COMPLETED, changed(COMPLETED, ("response", DELETE)), "$"),
    (
        "openai/responses.stream_event",
        COMPLETED,
        changed(COMPLETED, ("response.status", "in_progress")),
        "$.response.status",
    ),
    (
        "openai/responses.stream_event",
        COMPLETED,
        changed(COMPLETED, ("response.model", DELETE)),
        "$.response",
    ),
    (
        "openai/responses.stream_event",
        STREAM_ERROR,
        changed(STREAM_ERROR, ("message", None)),
        "$.message",
    ),
    (
        "openai/responses.stream_event",
        {"type": "response.web_search_call.searching", "sequence_number": 3, "item_id": "ws"},
        {"type": "response.web_search_call.searching", "sequence_number": 1.5},
        "$.sequence_number",
    ),
    (
        "openai/responses.compaction",
        COMPACTION,
        changed(COMPACTION, ("object", "response")),
        "$.object",
    ),
    (
        "openai/responses.compaction",
        COMPACTION,
        changed(COMPACTION, ("output", COMPACTION["output"][:1])),
        "$.output",
    ),
    (
        "openai/responses.compaction",
        COMPACTION,
        changed(COMPACTION, ("output.1.encrypted_content", DELETE)),
        "$.output[1]",
    ),
    (
        "openai/embeddings.list",
        EMBEDDINGS,
        changed(EMBEDDINGS, ("data.0.embedding", [0.1, "0.2"])),
        "$.data[0].embedding[1]",
    ),
    (
        "openai/embeddings.list",
        changed(EMBEDDINGS, ("data.0.embedding", "AACAPwAAAEA=")),
        changed(EMBEDDINGS, ("data.0.embedding", "not base64!")),
        "$.data[0].embedding",
    ),
    ("openai/embeddings.list", EMBEDDINGS, changed(EMBEDDINGS, ("usage", DELETE)), "$"),
    ("openai/images.response", IMAGES, changed(IMAGES, ("data.0.b64_json", DELETE)), "$.data[0]"),
    (
        "openai/images.response",
        changed(IMAGES, ("data.0", {"url": "https://example.com/a.png"}), ("usage", DELETE)),
        changed(IMAGES, ("created", None)),
        "$.created",
    ),
    (
        "openai/rerank.response",
        RERANK,
        changed(RERANK, ("results.0.relevance_score", "high")),
        "$.results[0].relevance_score",
    ),
    (
        "openai/rerank.response",
        RERANK,
        changed(RERANK, ("results.1.index", DELETE)),
        "$.results[1]",
    ),
    (
        "anthropic/error",
        ANTHROPIC_ERROR,
        changed(ANTHROPIC_ERROR, ("error.type", "server_error")),
        "$.error.type",
    ),
    ("anthropic/error", ANTHROPIC_ERROR, OPENAI_ERROR, "$"),
    ("anthropic/message", MESSAGE, changed(MESSAGE, ("stop_reason", None)), "$.stop_reason"),
    ("anthropic/message", MESSAGE, changed(MESSAGE, ("role", "model")), "$.role"),
    (
        "anthropic/message",
        MESSAGE,
        changed(MESSAGE, ("content.2.input", '{"city":"Paris"}')),
        "$.content[2].input",
    ),
    (
        "anthropic/message",
        MESSAGE,
        changed(MESSAGE, ("usage.input_tokens", DELETE)),
        "$.usage",
    ),
    (
        "anthropic/models.list",
        ANTHROPIC_MODELS,
        changed(ANTHROPIC_MODELS, ("data.0.created_at", 1735689600)),
        "$.data[0].created_at",
    ),
    (
        "anthropic/models.list",
        ANTHROPIC_MODELS,
        changed(ANTHROPIC_MODELS, ("has_more", DELETE)),
        "$",
    ),
    (
        "anthropic/stream_event",
        MESSAGE_START,
        changed(MESSAGE_START, ("message.id", DELETE)),
        "$.message",
    ),
    (
        "anthropic/stream_event",
        BLOCK_START,
        changed(BLOCK_START, ("content_block.text", DELETE)),
        "$.content_block",
    ),
    (
        "anthropic/stream_event",
        TEXT_BLOCK_DELTA,
        changed(TEXT_BLOCK_DELTA, ("delta.type", "text")),
        "$.delta.type",
    ),
    (
        "anthropic/stream_event",
        JSON_DELTA,
        changed(JSON_DELTA, ("delta.partial_json", {"location": "x"})),
        "$.delta.partial_json",
    ),
    (
        "anthropic/stream_event",
        THINKING_DELTA,
        changed(THINKING_DELTA, ("delta", {"type": "thinking_delta", "text": "x"})),
        "$.delta",
    ),
    (
        "anthropic/stream_event",
        SIGNATURE_DELTA,
        changed(SIGNATURE_DELTA, ("index", DELETE)),
        "$",
    ),
    (
        "anthropic/stream_event",
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_stop", "index": -1},
        "$.index",
    ),
    (
        "anthropic/stream_event",
        MESSAGE_DELTA,
        changed(MESSAGE_DELTA, ("usage.output_tokens", "15")),
        "$.usage.output_tokens",
    ),
    (
        "anthropic/stream_event",
        {"type": "message_stop"},
        changed(MESSAGE_DELTA, ("delta.stop_reason", "stop")),
        "$.delta.stop_reason",
    ),
    ("anthropic/stream_event", {"type": "ping"}, {"type": 3}, "$.type"),
    (
        "anthropic/stream_event",
        ANTHROPIC_STREAM_ERROR,
        changed(ANTHROPIC_STREAM_ERROR, ("error.message", DELETE)),
        "$.error",
    ),
    ("gemini/error", GEMINI_ERROR, changed(GEMINI_ERROR, ("error.code", "400")), "$.error.code"),
    (
        "gemini/error",
        GEMINI_ERROR,
        changed(GEMINI_ERROR, ("error.status", "invalid argument")),
        "$.error.status",
    ),
    (
        "gemini/generate_content_response",
        GEMINI,
        changed(GEMINI, ("candidates.0.finishReason", "stop")),
        "$.candidates[0].finishReason",
    ),
    (
        "gemini/generate_content_response",
        GEMINI,
        changed(GEMINI, ("usageMetadata.totalTokenCount", "5")),
        "$.usageMetadata.totalTokenCount",
    ),
    (
        "gemini/generate_content_response",
        changed(GEMINI, ("usageMetadata", DELETE)),
        changed(GEMINI, ("candidates.0.content.parts.2.functionCall.args", "{}")),
        "$.candidates[0].content.parts[2].functionCall.args",
    ),
    ("gemini/generate_content_response", GEMINI_BLOCKED, {"modelVersion": "x"}, "$"),
    (
        "gemini/models.list",
        GEMINI_MODELS,
        changed(GEMINI_MODELS, ("models.0.name", "gemini-2.5-flash")),
        "$.models[0].name",
    ),
    (
        "gemini/models.list",
        GEMINI_MODELS,
        changed(GEMINI_MODELS, ("models.0.inputTokenLimit", "1048576")),
        "$.models[0].inputTokenLimit",
    ),
    (
        "gemini/model",
        GEMINI_MODELS["models"][0],
        {**GEMINI_MODELS["models"][0], "name": "gemini-2.5-flash"},
        "$.name",
    ),
    (
        "gemini/model",
        GEMINI_MODELS["models"][0],
        {**GEMINI_MODELS["models"][0], "supportedGenerationMethods": "generateContent"},
        "$.supportedGenerationMethods",
    ),
]


def test_the_table_covers_every_schema() -> None:
    assert {ref for ref, *_ in TABLE} == EXPECTED_REFS


@pytest.mark.parametrize(
    ("ref", "valid", "invalid", "path"),
    TABLE,
    ids=[f"{ref}:{path}" for ref, _, _, path in TABLE],
)
def test_table_valid_passes_invalid_fails(
    ref: str, valid: dict[str, Any], invalid: dict[str, Any], path: str
) -> None:
    assert validation_errors(ref, valid) == []
    errors = validation_errors(ref, invalid)
    assert errors, f"{ref} accepted an invalid instance"
    assert path in [p for p, _ in errors], errors


def test_gateway_extra_fields_are_accepted() -> None:
    extended = changed(
        MODELS,
        ("data.0.supported_endpoint_types", ["openai", "anthropic"]),
        ("data.0.owned_by", "custom"),
    )
    assert validation_errors("openai/models.list", extended) == []
    assert validation_errors("openai/chat.completion", {**CHAT, "x_gateway": {"a": 1}}) == []
    assert validation_errors("gemini/error", changed(GEMINI_ERROR, ("error.extra", 1))) == []


# -- the mock's real answers ----------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def assert_valid(ref: str, instance: Any) -> None:
    errors = validation_errors(ref, instance)
    assert errors == [], f"{ref}: {errors}\n{json.dumps(instance)[:2000]}"


def sse_payloads(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    with client.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            parser.feed(chunk, time.monotonic())
    assert parser.close(time.monotonic()) is None
    return [(e.event, e.data) for e in parser.events]


def sse_json(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[str | None, dict[str, Any]]]:
    frames = sse_payloads(client, path, body, headers)
    return [(event, json.loads(data)) for event, data in frames if data != "[DONE]"]


CHAT_PATH = "/v1/chat/completions"


def chat(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello schema"}], **extra}


def test_mock_chat_completions(client: httpx.Client) -> None:
    for body in (
        chat(),
        chat("o3-mini", reasoning_effort="low"),
        chat(tools=[WEATHER_TOOL], tool_choice="required"),
        chat(max_tokens=1),
    ):
        answer = client.post(CHAT_PATH, json=body, headers=bearer())
        assert answer.status_code == 200
        assert_valid("openai/chat.completion", answer.json())
    streams = [
        chat(stream=True),
        chat(
            "o3-mini", reasoning_effort="low", stream=True, stream_options={"include_usage": True}
        ),
        chat(
            tools=[WEATHER_TOOL],
            tool_choice="required",
            stream=True,
            stream_options={"include_usage": True},
        ),
    ]
    for body in streams:
        chunks = sse_json(client, CHAT_PATH, body, bearer())
        assert len(chunks) >= 3
        for _, chunk in chunks:
            assert_valid("openai/chat.completion.chunk", chunk)
    # the streams above had the shapes worth checking
    assert chunks[-1][1]["choices"] == [] and chunks[-1][1]["usage"]
    assert any(c["choices"] and "tool_calls" in c["choices"][0]["delta"] for _, c in chunks)


def test_mock_responses(client: httpx.Client) -> None:
    bodies = [
        {"model": "gpt-4o-mini", "input": "hello schema"},
        {"model": "o3-mini", "input": "think", "reasoning": {"effort": "low"}},
        {
            "model": "gpt-4o-mini",
            "input": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {}}],
            "tool_choice": "required",
        },
        {"model": "gpt-4o-mini", "input": "cut short", "max_output_tokens": 1},
    ]
    seen: set[str] = set()
    for body in bodies:
        answer = client.post("/v1/responses", json=body, headers=bearer())
        assert answer.status_code == 200
        assert_valid("openai/responses.response", answer.json())
        for event, data in sse_json(client, "/v1/responses", {**body, "stream": True}, bearer()):
            assert event == data["type"]
            assert_valid("openai/responses.stream_event", data)
            seen.add(data["type"])
    assert {
        "response.created",
        "response.completed",
        "response.incomplete",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_text.delta",
        "response.content_part.added",
        "response.output_item.done",
    } <= seen


def test_mock_responses_stream_failure_event(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini--fail-after-2", "input": "hello", "stream": True}
    events = sse_json(client, "/v1/responses", body, bearer())
    assert events[-1][1]["type"] == "response.failed"
    failed = events[-1][1]["response"]
    created = events[0][1]["response"]
    assert failed["id"] == created["id"]
    # the spec's Response requires the echoed settings on every response, failed ones too
    for key in ("tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p"):
        assert failed[key] == created[key], key
    for _, data in events:
        assert_valid("openai/responses.stream_event", data)


def test_mock_compaction(client: httpx.Client) -> None:
    for payload in (
        "hello schema",
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    ):
        answer = client.post(
            "/v1/responses/compact",
            json={"model": "gpt-4o-mini", "input": payload},
            headers=bearer(),
        )
        assert answer.status_code == 200
        assert_valid("openai/responses.compaction", answer.json())


def test_mock_embeddings_images_rerank(client: httpx.Client) -> None:
    for fmt in ("float", "base64"):
        body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": fmt}
        answer = client.post("/v1/embeddings", json=body, headers=bearer()).json()
        assert isinstance(answer["data"][0]["embedding"], list if fmt == "float" else str)
        assert_valid("openai/embeddings.list", answer)
    for fmt in ("b64_json", "url"):
        body = {"model": "gpt-image-1", "prompt": "a cat", "n": 2, "response_format": fmt}
        answer = client.post("/v1/images/generations", json=body, headers=bearer()).json()
        assert fmt in answer["data"][0]
        assert_valid("openai/images.response", answer)
    for docs in (["a", "b"], [{"text": "a"}, {"text": "b"}]):
        body = {"model": "bge-reranker-v2-m3", "query": "q", "documents": docs}
        assert_valid(
            "openai/rerank.response", client.post("/v1/rerank", json=body, headers=bearer()).json()
        )


def test_mock_model_lists(client: httpx.Client) -> None:
    assert_valid("openai/models.list", client.get("/v1/models", headers=bearer()).json())
    assert_valid("openai/model", client.get("/v1/models/gpt-4o-mini", headers=bearer()).json())
    assert_valid("anthropic/models.list", client.get("/v1/models", headers=claude()).json())
    assert_valid("gemini/models.list", client.get("/v1beta/models", headers=goog()).json())


MESSAGES_PATH = "/v1/messages"


def message(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hello schema"}],
        **extra,
    }


def test_mock_anthropic_messages(client: httpx.Client) -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}
    bodies = [
        message(),
        message(thinking={"type": "enabled", "budget_tokens": 1024}),
        message(tools=[tool], tool_choice={"type": "any"}),
    ]
    kinds: set[str] = set()
    for body in bodies:
        answer = client.post(MESSAGES_PATH, json=body, headers=claude())
        assert answer.status_code == 200
        assert_valid("anthropic/message", answer.json())
        for event, data in sse_json(client, MESSAGES_PATH, {**body, "stream": True}, claude()):
            assert event == data["type"]
            assert_valid("anthropic/stream_event", data)
            kinds.add(data["type"] + ":" + data.get("delta", {}).get("type", ""))
    assert {
        "message_start:",
        "ping:",
        "content_block_delta:text_delta",
        "content_block_delta:thinking_delta",
        "content_block_delta:signature_delta",
        "content_block_delta:input_json_delta",
        "message_delta:",
        "message_stop:",
    } <= kinds


def test_mock_anthropic_stream_error_event(client: httpx.Client) -> None:
    body = message(model="claude-sonnet-4-5--fail-after-2", stream=True)
    events = sse_json(client, MESSAGES_PATH, body, claude())
    assert events[-1][0] == "error"
    for _, data in events:
        assert_valid("anthropic/stream_event", data)
    assert_valid("anthropic/error", events[-1][1])


GEMINI_MODEL = "/v1beta/models/gemini-2.5-flash"


def gemini(**extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hello schema"}]}], **extra}


def gemini_array(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    parser = JsonArrayParser()
    path = f"{GEMINI_MODEL}:streamGenerateContent"
    with client.stream("POST", path, json=body, headers=goog()) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            parser.feed(chunk, time.monotonic())
    assert parser.close(time.monotonic()) is None
    return [json.loads(e.text) for e in parser.elements]


def test_mock_gemini(client: httpx.Client) -> None:
    tools = [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ]
        }
    ]
    bodies = [
        gemini(),
        gemini(generationConfig={"thinkingConfig": {"includeThoughts": True}}),
        gemini(tools=tools),
    ]
    for body in bodies:
        answer = client.post(f"{GEMINI_MODEL}:generateContent", json=body, headers=goog())
        assert answer.status_code == 200
        assert_valid("gemini/generate_content_response", answer.json())
        elements = gemini_array(client, body)
        sse = sse_json(client, f"{GEMINI_MODEL}:streamGenerateContent?alt=sse", body, goog())
        assert len(elements) == len(sse) >= 1
        for element in [*elements, *(data for _, data in sse)]:
            assert_valid("gemini/generate_content_response", element)


def test_mock_gemini_stream_error_element(client: httpx.Client) -> None:
    body = gemini()
    path = "/v1beta/models/gemini-2.5-flash--fail-after-2:streamGenerateContent?alt=sse"
    events = sse_json(client, path, body, goog())
    assert "error" in events[-1][1]
    assert_valid("gemini/error", events[-1][1])
    for _, data in events[:-1]:
        assert_valid("gemini/generate_content_response", data)


def test_mock_error_envelopes(client: httpx.Client) -> None:
    cases: list[tuple[str, Callable[[], httpx.Response]]] = [
        (
            "openai/error",
            lambda: client.post(CHAT_PATH, json={"model": "gpt-4o-mini"}, headers=bearer()),
        ),
        ("openai/error", lambda: client.post(CHAT_PATH, json=chat(), headers=bearer("disabled"))),
        (
            "openai/error",
            lambda: client.post(CHAT_PATH, json=chat("gpt-4o-mini--error-503"), headers=bearer()),
        ),
        ("openai/error", lambda: client.get("/v1/models/no-such-model", headers=bearer())),
        (
            "anthropic/error",
            lambda: client.post(MESSAGES_PATH, json={"model": "x"}, headers=claude()),
        ),
        (
            "anthropic/error",
            lambda: client.post(MESSAGES_PATH, json=message(), headers=claude("expired")),
        ),
        (
            "anthropic/error",
            lambda: client.post(
                MESSAGES_PATH, json=message(model="claude-sonnet-4-5--error-529"), headers=claude()
            ),
        ),
        (
            "gemini/error",
            lambda: client.post(f"{GEMINI_MODEL}:generateContent", json={}, headers=goog()),
        ),
        (
            "gemini/error",
            lambda: client.post(
                f"{GEMINI_MODEL}:generateContent", json=gemini(), headers=goog("disabled")
            ),
        ),
        (
            "gemini/error",
            lambda: client.post(
                "/v1beta/models/gemini-2.5-flash--error-500:generateContent",
                json=gemini(),
                headers=goog(),
            ),
        ),
    ]
    for ref, call in cases:
        answer = call()
        assert answer.status_code >= 400
        assert_valid(ref, answer.json())
    # in-band error of a chat stream: the envelope inside a data: event
    body = chat("gpt-4o-mini--fail-after-2", stream=True)
    *_, (_, last) = sse_json(client, CHAT_PATH, body, bearer())
    assert_valid("openai/error", last)


# -- defects the schemas must catch ---------------------------------------------------------


def test_schemas_catch_the_usage_chunk_with_choices_defect(
    mock_factory: Callable[..., MockServer],
) -> None:
    broken = mock_factory(defects=frozenset({"usage-chunk-with-choices"}))
    with httpx.Client(base_url=broken.url, timeout=10.0) as client:
        body = chat(stream=True, stream_options={"include_usage": True})
        chunks = [c for _, c in sse_json(client, CHAT_PATH, body, bearer())]
    assert [p for p, _ in validation_errors("openai/chat.completion.chunk", chunks[-1])] == [
        "$.choices"
    ]
    for chunk in chunks[:-1]:
        assert_valid("openai/chat.completion.chunk", chunk)


def test_schemas_catch_the_openai_envelope_on_messages_defect(
    mock_factory: Callable[..., MockServer],
) -> None:
    broken = mock_factory(defects=frozenset({"openai-envelope-on-messages"}))
    with httpx.Client(base_url=broken.url, timeout=10.0) as client:
        answer = client.post(MESSAGES_PATH, json={"model": "x"}, headers=claude())
    assert answer.status_code == 400
    assert validation_errors("anthropic/error", answer.json())
    assert_valid("openai/error", answer.json())


def test_a_gemini_chunk_may_carry_finish_reason_null_as_proto3_json_allows() -> None:
    from gateprobe.schemas import validation_errors

    chunk = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}}]}
    chunk["candidates"][0]["finishReason"] = None
    assert validation_errors("gemini/generate_content_response", chunk) == []
    chunk["candidates"][0]["finishReason"] = "stop"  # a wrong enum spelling still fails
    assert validation_errors("gemini/generate_content_response", chunk)
