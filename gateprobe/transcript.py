"""Recorded streams (fixtures/transcripts/) replayed as Exchanges: checks run without a server.

A transcript is a YAML file: the response's status, headers and body as it came off the wire,
when its network chunks arrived, the request that asked for it, the checks to run and what
they must find. fixtures/transcripts/README.md documents the format; ``load_transcript``
validates it (a bad file is a UsageError naming the file and field).

The body goes through the same incremental parsers as a live exchange (gateprobe/sse.py), chunk
by chunk with the recorded arrival times, so the events, their timestamps, the raw frames and
any framing problem are exactly what a live read would have recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from gateprobe import protocols
from gateprobe._files import load_documents
from gateprobe.checks import REGISTRY, CheckContext
from gateprobe.errors import CheckFailed, UsageError
from gateprobe.http import Exchange, RequestRecord, finish_stream, stream_parsers
from gateprobe.target import Dialect, Target

__all__ = ["Reply", "Transcript", "TranscriptResult", "load_transcript", "run_transcript"]

BASE_URL = "http://transcript.invalid"
TRANSCRIPT_MODEL = "gemini-2.5-flash"  # the model of a path that names one (Gemini)
ENDINGS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}
FIELDS = {
    "title",
    "protocol",
    "operation",
    "stream",
    "request",
    "status",
    "headers",
    "line_ending",
    "timing",
    "chunks",
    "body",
    "disconnected",
    "dialect",
    "replies",
    "expect",
    "verdict",
    "failure",
    "warnings",
}


Chunks = tuple[tuple[float, bytes], ...]  # (arrival in seconds, bytes) of each network read


@dataclass(frozen=True)
class Reply:
    """A canned answer to a further request a check sends (``CheckContext.call``)."""

    path: str  # matched as a substring of the request's path
    status: int
    body: Any


@dataclass(frozen=True)
class Transcript:
    path: Path
    title: str
    protocol: str
    operation: str
    stream: str  # "sse" or "array"
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    chunks: Chunks
    expect: dict[str, Any]
    verdict: str  # "pass" or "fail"
    failure: dict[str, str] = field(default_factory=dict)  # check, message, where (substrings)
    warnings: tuple[str, ...] = ()  # substrings of the warnings the checks must give
    disconnected: bool = False
    dialect: dict[str, Any] = field(default_factory=dict)
    replies: tuple[Reply, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    def exchange(self) -> Exchange:
        """The Exchange a live read of this response would have recorded."""
        operation = protocols.operations(self.protocol)[self.operation]
        path = protocols.primary(self.protocol).default_prefix + operation.path
        body = dict(self.request)
        query: dict[str, str] = {}
        api = protocols.api(self.protocol, self.operation)
        path = api.stream_request(
            path.replace("{model}", TRANSCRIPT_MODEL), body, query, self.stream
        )
        if query:
            path += "?" + urlencode(query)
        request = RequestRecord(
            "POST", BASE_URL + path, {"content-type": "application/json"}, json.dumps(body).encode()
        )
        result = Exchange(request, status=self.status, headers=dict(self.headers))
        sse, array = stream_parsers(result, self.stream)
        for at, data in self.chunks:
            if result.ttfb is None:
                result.ttfb = at
            result.chunks.append((at, len(data)))
            if sse is not None:
                sse.feed(data, at)
            elif array is not None:
                array.feed(data, at)
        result.body = b"".join(data for _, data in self.chunks)
        end = self.chunks[-1][0] if self.chunks else 0.0
        result.elapsed = end
        result.disconnected = self.disconnected
        finish_stream(result, sse, array, end)
        return result

    def target(self) -> Target:
        return Target(
            name="transcript",
            base_url=BASE_URL,
            keys={"admin": "transcript-admin-token"},
            dialect=Dialect(**self.dialect),
        )

    def call(self, spec: Mapping[str, Any]) -> Exchange:
        """Answer a check's further request from ``replies``."""
        path = str(spec.get("path", ""))
        request = RequestRecord(str(spec.get("method", "GET")), BASE_URL + path, {}, None)
        for reply in self.replies:
            if reply.path in path:
                body = json.dumps(reply.body).encode()
                headers = {"content-type": "application/json"}
                return Exchange(request, status=reply.status, headers=headers, body=body)
        return Exchange(request, error=f"the transcript has no reply for {path}")


@dataclass
class TranscriptResult:
    failures: list[CheckFailed]
    warnings: list[CheckFailed]
    exchange: Exchange


def run_transcript(transcript: Transcript) -> TranscriptResult:
    """Run the transcript's ``expect`` checks on its replayed exchange, as the runner would."""
    exchange = transcript.exchange()
    ctx = CheckContext(
        exchange,
        transcript.target(),
        f"transcript.{transcript.name}",
        transcript.protocol,
        transcript.stream,
        call=transcript.call,
        operation=transcript.operation,
    )
    failures = []
    for name, argument in transcript.expect.items():
        failures.extend(ctx.run(name, argument))
    return TranscriptResult(failures, ctx.warnings, exchange)


def _chunks(data: dict[str, Any], bad: Callable[[str, str], UsageError]) -> Chunks:
    ending = ENDINGS.get(str(data.get("line_ending", "lf")))
    if ending is None:
        raise bad("must be lf, crlf or cr", "line_ending")
    if "chunks" in data:
        chunks = data["chunks"]
        if not isinstance(chunks, list) or not all(
            isinstance(c, dict) and isinstance(c.get("data"), str) for c in chunks
        ):
            raise bad("must be a list of {at_ms, data}", "chunks")
        return tuple(
            (float(c.get("at_ms", 0)) / 1000, c["data"].replace("\n", ending).encode())
            for c in chunks
        )
    body = data.get("body")
    if not isinstance(body, str):
        raise bad("a body (text) or chunks are required", "body")
    if data.get("stream", "sse") == "array":
        # one element (one line of the file) per network chunk, its line end kept
        frames = [line + ending for line in body.splitlines()]
    else:
        # one SSE frame (up to and including its blank line) per network chunk; every byte
        # of the body goes on the wire as written (extra blank lines, comments, a cut frame)
        frames = [part.replace("\n", ending) for part in re.split(r"(?<=\n\n)", body) if part]
    timing = data.get("timing") or {}
    if not isinstance(timing, dict) or not all(isinstance(v, int | float) for v in timing.values()):
        raise bad("must map start_ms, first_gap_ms, gap_ms, buffered to numbers", "timing")
    start = timing.get("start_ms", 0) / 1000
    gap = timing.get("gap_ms", 0) / 1000
    first = timing.get("first_gap_ms", gap * 1000) / 1000
    if timing.get("buffered"):  # everything in one network read
        return ((start, "".join(frames).encode()),)
    times = [start + (first + (i - 1) * gap if i else 0.0) for i in range(len(frames))]
    return tuple((t, f.encode()) for t, f in zip(times, frames, strict=True))


def load_transcript(path: Path) -> Transcript:
    """Read and validate one transcript file; bad input is a UsageError naming file and field."""
    docs = load_documents(path)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise UsageError("a transcript is one YAML mapping", file=str(path))
    doc = docs[0]
    data: dict[str, Any] = doc.data

    def bad(message: str, name: str) -> UsageError:
        return UsageError(message, file=str(path), line=doc.line_of(name), field=name)

    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise bad(f"unknown field (known: {', '.join(sorted(FIELDS))})", unknown[0])
    protocol = data.get("protocol")
    operation = data.get("operation", "chat")
    streamed = protocol in protocols.PROTOCOLS and operation in protocols.operations(protocol)
    if not streamed or protocols.operations(str(protocol))[operation].method != "POST":
        raise bad(f"unknown protocol/operation {protocol}/{operation}", "protocol")
    expect = data.get("expect")
    if not isinstance(expect, dict) or not expect or set(expect) - set(REGISTRY):
        raise bad("must map registered checks to their arguments", "expect")
    verdict = data.get("verdict")
    if verdict not in ("pass", "fail"):
        raise bad("must be pass or fail", "verdict")
    failure = data.get("failure") or {}
    if verdict == "fail" and not (isinstance(failure, dict) and failure.get("message")):
        raise bad("a failing transcript names its failure's message", "failure")
    replies = tuple(
        Reply(str(r["path"]), int(r.get("status", 200)), r.get("body"))
        for r in data.get("replies") or []
    )
    return Transcript(
        path=path,
        title=str(data.get("title", path.stem)),
        protocol=str(protocol),
        operation=str(operation),
        stream=str(data.get("stream", "sse")),
        request=dict(data.get("request") or {}),
        status=int(data.get("status", 200)),
        headers={str(k).lower(): str(v) for k, v in (data.get("headers") or {}).items()},
        chunks=_chunks(data, bad),
        expect=dict(expect),
        verdict=verdict,
        failure={str(k): str(v) for k, v in failure.items()},
        warnings=tuple(str(w) for w in data.get("warnings") or ()),
        disconnected=bool(data.get("disconnected", False)),
        dialect=dict(data.get("dialect") or {}),
        replies=replies,
    )
