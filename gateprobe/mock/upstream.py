"""The simulated upstream model: deterministic output, timing and per-request faults.

Output depends only on the seed, the model and the request's content, so the same request
always yields the same text, tool calls and token counts. The mock's tokenizer is simple and
documented: one token per whitespace-separated word of the prompt, plus three per message;
one token per streamed piece of the output.

Directives change one request's behaviour. They travel in the model name, after ``--``
(``gpt-4o-mini--error-503``, ``gpt-4o-mini--ttft-200--itl-20``), so they pass through any
gateway that forwards the model name, or in the ``x-gateprobe-directives`` header
(comma-separated); both combine, the header's values winning:

    error-<status>     the upstream answers HTTP <status> (400-599) before the first byte
    fail-after-<n>     an in-band error after n output tokens of a stream (a plain call: 502)
    cut-after-<n>      the stream ends after n output tokens, without error or terminator
                       (a plain call: 502)
    hang               nothing is sent until the client gives up (or hang_seconds pass)
    ttft-<ms>, slow-first-<ms>, itl-<ms>   time to the first token, between tokens
    chunks-<n>         exactly n output tokens (1-4096)
    fail-attempts-<n>  the first n upstream attempts fail with 503 before the first byte; the
                       gateway retries them on another channel (``gateprobe.mock.retry``)
    mark-<n>           the visible output text begins with the word ``gateprobe-mark-<n>``
                       (one more output token, before the normal words), on every generating
                       route, plain and streamed (then ``gateprobe-mark-<n>-streamed``): sent
                       the way a fault will be sent, it shows that the fault's directives reach
                       the upstream through a gateway, and whether the upstream call streams
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MARK_PREFIX",
    "Completion",
    "DirectiveError",
    "Directives",
    "GenRequest",
    "ToolCall",
    "ToolSpec",
    "embedding",
    "generate",
    "png_image",
    "prompt_tokens",
    "rerank_scores",
    "split_model",
]

WORDS = [
    "the",
    "gateway",
    "streams",
    "tokens",
    "to",
    "every",
    "client",
    "while",
    "quota",
    "settles",
    "after",
    "each",
    "call",
    "and",
    "the",
    "ledger",
    "stays",
    "exact",
    "under",
    "load",
    "so",
    "latency",
    "budgets",
    "hold",
    "across",
    "models",
    "routes",
    "keys",
    "channels",
    "retries",
    "errors",
    "events",
    "chunks",
    "usage",
    "balance",
    "request",
    "response",
    "protocol",
    "header",
    "status",
    "stream",
    "deterministic",
    "mock",
    "upstream",
    "reference",
    "suite",
    "check",
    "verdict",
    "report",
    "probe",
    "schema",
    "envelope",
]

# ``mark-<n>``'s word, which a harness looks for in the answer: gateprobe-mark-<n>.
MARK_PREFIX = "gateprobe-mark-"
MARK_STREAMED = "-streamed"  # appended to the mark's word when the answer is streamed

REASONING_PIECES = {"none": 0, "minimal": 2, "low": 4, "medium": 8, "high": 16, "xhigh": 24}


class DirectiveError(ValueError):
    """A directive in a model name or header is not understood."""


@dataclass(frozen=True)
class Directives:
    error_status: int | None = None  # upstream error before the first byte
    fail_after: int | None = None  # in-band error after N content chunks
    cut_after: int | None = None  # stream ends after N content chunks, without a terminator
    hang: bool = False  # nothing is sent until the client gives up (or hang_seconds pass)
    ttft_ms: float | None = None
    itl_ms: float | None = None
    chunks: int | None = None  # exact number of output tokens
    fail_attempts: int | None = None  # the first N upstream attempts fail with 503 (retried)
    mark: int | None = None  # the visible text begins with the word gateprobe-mark-<mark>

    def merged(self, other: Directives) -> Directives:
        """``other``'s set fields override this one's."""
        values = {}
        for name in self.__dataclass_fields__:
            value = getattr(other, name)
            # ``is``, not ``in (None, False)``: 0 == False, and fail-after-0 or mark-0 is set
            values[name] = getattr(self, name) if value is None or value is False else value
        return Directives(**values)

    @classmethod
    def parse(cls, tokens: list[str]) -> Directives:
        values: dict[str, Any] = {}
        for raw in tokens:
            token = raw.strip().lower()
            if not token:
                continue
            if token == "hang":
                values["hang"] = True
                continue
            name, _, arg = token.rpartition("-")
            if not name or not arg.replace(".", "", 1).isdigit():
                raise DirectiveError(f"unknown directive {raw!r}")
            if name == "mark":
                # the word is matched as text: only a whole number has one spelling
                if not arg.isdigit() or len(arg) > 18:
                    raise DirectiveError(f"directive {raw!r}: the mark must be a whole number")
                values["mark"] = int(arg)
                continue
            number = float(arg)
            if name == "error":
                if not 400 <= number <= 599:
                    raise DirectiveError(f"directive {raw!r}: status must be 400-599")
                values["error_status"] = int(number)
            elif name == "fail-after":
                values["fail_after"] = int(number)
            elif name == "cut-after":
                values["cut_after"] = int(number)
            elif name in ("ttft", "slow-first"):
                values["ttft_ms"] = number
            elif name == "itl":
                values["itl_ms"] = number
            elif name == "fail-attempts":
                if not 1 <= number <= 10:
                    raise DirectiveError(f"directive {raw!r}: attempts must be 1-10")
                values["fail_attempts"] = int(number)
            elif name == "chunks":
                if not 1 <= number <= 4096:
                    raise DirectiveError(f"directive {raw!r}: chunks must be 1-4096")
                values["chunks"] = int(number)
            else:
                raise DirectiveError(f"unknown directive {raw!r}")
        return cls(**values)


NO_DIRECTIVES = Directives()


def split_model(name: str) -> tuple[str, Directives]:
    """``gpt-4o-mini--error-503`` -> (``gpt-4o-mini``, Directives(error_status=503))."""
    if "--" not in name:
        return name, NO_DIRECTIVES
    base, *tokens = name.split("--")
    return base, Directives.parse(tokens)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]


@dataclass
class GenRequest:
    """What a chat-like call asks of the model, whatever its protocol."""

    model: str
    texts: list[str]
    messages: int
    max_tokens: int | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required | <function name>
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    reasoning: str | None = None  # effort level, when reasoning was asked for
    fingerprint: str = ""  # canonical request content that seeds the output


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str
    pieces: list[str]


@dataclass
class Completion:
    pieces: list[str]  # visible output, one token per piece
    reasoning: list[str]
    tool_calls: list[ToolCall]
    prompt_tokens: int
    finish_reason: str  # stop | length | tool_calls
    digest: str  # stable id material for this output

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @functools.cached_property
    def completion_tokens(self) -> int:
        # counted once: a completion is shared by identical requests and never changed
        return len(self.pieces) + len(self.reasoning) + sum(len(c.pieces) for c in self.tool_calls)


def prompt_tokens(texts: list[str], messages: int) -> int:
    return sum(len(t.split()) for t in texts) + 3 * messages


def _digest(seed: int, *parts: str) -> bytes:
    return hashlib.blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=16).digest()


def _rng(seed: int, *parts: str) -> tuple[random.Random, str]:
    digest = _digest(seed, *parts)
    return random.Random(int.from_bytes(digest, "big")), digest.hex()[:24]


class _Entropy:
    """Deterministic bytes from a key: cheaper than seeding a Random on every request."""

    __slots__ = ("_block", "_buffer", "_key", "_position")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._buffer = b""
        self._position = 0
        self._block = 0

    def take(self, n: int) -> bytes:
        while len(self._buffer) - self._position < n:
            more = hashlib.blake2b(self._key + self._block.to_bytes(4, "big"), digest_size=64)
            self._buffer = self._buffer[self._position :] + more.digest()
            self._position = 0
            self._block += 1
        out = self._buffer[self._position : self._position + n]
        self._position += n
        return out


_WORD_PIECES = tuple(word + " " for word in WORDS)


def _words(entropy: _Entropy, n: int) -> list[str]:
    table, size = _WORD_PIECES, len(_WORD_PIECES)
    pieces = [table[b % size] for b in entropy.take(n)]
    if pieces:
        pieces[0] = pieces[0].capitalize()
        pieces[-1] = pieces[-1].rstrip() + "."
    return pieces


def _split(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` (or fewer, if it is short) contiguous non-empty pieces."""
    n = max(1, min(n, len(text)))
    size, extra = divmod(len(text), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def sample_value(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A deterministic value that satisfies the common subset of JSON Schema."""
    if not isinstance(schema, dict):
        return rng.choice(WORDS)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return sample_value(schema[combinator][0], rng, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if isinstance(kind, str):
        kind = kind.lower()  # Gemini's Schema spells types in upper case (OBJECT, STRING)
    if kind == "object":
        if depth > 4:
            return {}
        props = schema.get("properties") or {}
        return {name: sample_value(sub, rng, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [] if depth > 4 else [sample_value(schema.get("items", {}), rng, depth + 1)]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        return rng.randint(low, max(low, int(schema.get("maximum", low + 100))))
    if kind == "number":
        floor = float(schema.get("minimum", 0))
        return round(rng.uniform(floor, float(schema.get("maximum", floor + 100))), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(WORDS) for _ in range(2))


def _sample(schema: Any, rng: random.Random) -> Any:
    """``sample_value``, or ``{}`` for a schema too malformed to follow (never a 500)."""
    try:
        return sample_value(schema, rng)
    except (TypeError, ValueError, AttributeError, OverflowError, RecursionError):
        return {}


def generate(
    req: GenRequest,
    *,
    seed: int,
    min_tokens: int,
    max_tokens: int,
    directives: Directives = NO_DIRECTIVES,
    streamed: bool = False,
) -> Completion:
    key = _digest(seed, req.model, req.fingerprint)
    digest = key.hex()[:24]
    entropy = _Entropy(key)
    if directives.chunks is not None:
        n = directives.chunks
    else:
        n = min_tokens + entropy.take(1)[0] % (max_tokens - min_tokens + 1)
    finish = "stop"
    reasoning: list[str] = []
    if req.reasoning:
        reasoning = _words(entropy, REASONING_PIECES.get(req.reasoning, 8))
    tool_calls: list[ToolCall] = []
    pieces: list[str] = []
    wanted = _chosen_tool(req)
    if wanted is not None:
        rng = random.Random(int.from_bytes(key, "big"))
        # A function's arguments are an object, even when it declares no parameters.
        params = wanted.parameters or {"type": "object"}
        arguments = json.dumps(_sample(params, rng), separators=(",", ":"))
        tool_calls.append(
            ToolCall(f"call_{digest[:16]}", wanted.name, arguments, _split(arguments, n))
        )
        finish = "tool_calls"
    elif req.json_schema is not None or req.json_mode:
        schema = req.json_schema or {"type": "object", "properties": {"answer": {"type": "string"}}}
        rng = random.Random(int.from_bytes(key, "big"))
        text = json.dumps(_sample(schema, rng), separators=(",", ":"))
        pieces = _split(text, n)
    else:
        pieces = _words(entropy, n)
    if directives.mark is not None:
        # first, before max_tokens cuts the answer: a short answer still shows it; a streamed
        # answer says so, since a gateway may turn a client's stream into a plain upstream call
        word = f"{MARK_PREFIX}{directives.mark}{MARK_STREAMED if streamed else ''}"
        pieces.insert(0, word + " " if pieces else word)
    if req.max_tokens is not None:
        budget = max(0, req.max_tokens - len(reasoning))
        if len(pieces) > budget and not tool_calls:
            pieces, finish = pieces[:budget], "length"
    return Completion(
        pieces=pieces,
        reasoning=reasoning,
        tool_calls=tool_calls,
        prompt_tokens=prompt_tokens(req.texts, req.messages),
        finish_reason=finish,
        digest=digest,
    )


def _chosen_tool(req: GenRequest) -> ToolSpec | None:
    if not req.tools or req.tool_choice == "none":
        return None
    if req.tool_choice in ("auto", "required", "any"):
        return req.tools[0]
    for tool in req.tools:
        if tool.name == req.tool_choice:
            return tool
    return req.tools[0]


def embedding(seed: int, model: str, text: str, dimensions: int) -> list[float]:
    rng, _ = _rng(seed, model, "embed", text)
    vector = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vector]


def embedding_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def rerank_scores(seed: int, model: str, query: str, documents: list[str]) -> list[float]:
    query_words = set(query.lower().split())
    scores = []
    for doc in documents:
        words = set(doc.lower().split())
        overlap = len(query_words & words) / (len(query_words | words) or 1)
        rng, _ = _rng(seed, model, "rerank", query, doc)
        scores.append(round(0.9 * overlap + 0.1 * rng.random(), 6))
    return scores


def png_image(seed: int, prompt: str, size: int = 8) -> bytes:
    """A small valid PNG whose colour depends on the prompt."""
    rng, _ = _rng(seed, "image", prompt)
    pixel = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + pixel * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
