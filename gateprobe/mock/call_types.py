"""What one request carries through the mock: the handler's context, the call, its answer.

The types the pipeline's stages (``admission``, ``answer``, ``settle``), the protocol writers
and ``retry`` share. They live here, apart from the stages, so that every module that needs
one imports it from a module that imports none of them: no import cycles, no type-only
imports.

    RequestContext  what the app hands a route's handler: the request and how to answer it
    Spec            a parsed call, whatever the endpoint: what a writer needs to answer it
    Parsed          what one body parses to and generates; shared by identical requests
    Call            an admitted call: what admission found and reserved, what the writer
                    renders from, what the answer delivers and the settlement charges
    Writer, Frame   a protocol's parser and renderer, and the stream frames it renders
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateprobe.mock.asgi import Receive, Request, Send
from gateprobe.mock.config import ChannelConfig, MockConfig, ModelConfig
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.ledger import KeyState, Reservation
from gateprobe.mock.upstream import (
    NO_DIRECTIVES,
    Completion,
    DirectiveError,
    Directives,
    GenRequest,
    generate,
    split_model,
)

__all__ = ["Call", "Frame", "Parsed", "RequestContext", "Spec", "Writer"]


@dataclass(slots=True)
class RequestContext:
    """One request as a route's handler gets it: built once per request by the app.

    ``send`` is the app's tracking send (it notes that the response started, so a late
    error is logged instead of answered); ``log`` is the request's usage record, which the
    app adds to the usage log when the handler returns, whatever happened.
    """

    request: Request
    request_id: str
    send: Send
    receive: Receive
    path_model: str | None  # the model named in the path (Gemini, /v1/models/{id}), if any
    log: dict[str, Any]


@dataclass
class Spec:
    """A parsed call: what the writer needs to answer, whatever the endpoint."""

    model: str
    capability: str  # chat | responses | embeddings | images | rerank
    stream: bool = False
    gen: GenRequest | None = None  # set for generating endpoints
    prompt_tokens: int = 0  # for endpoints that do not generate (embeddings, images, rerank)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    """An admitted call, from admission (``admission.admit``) to its settlement.

    The writers render from the first fields (ids, model, channel, key, directives, the
    second ``created``); the answer and the settlement also use the rest. One object per
    call on the hot path, so what the stages hand on rides here rather than in another.
    """

    request: Request
    request_id: str
    upstream_id: str
    protocol: str
    model: ModelConfig
    model_name: str  # as the client sent it
    channel: ChannelConfig
    key: KeyState | None
    directives: Directives
    created: int
    prompt_tokens: int
    spec: Spec  # the call's own: a stream's is a copy of the shared one (see ``admit``)
    completion: Completion | None  # None for endpoints that do not generate
    parsed: Parsed  # the shared parse, whose memo keeps the writer's pure outputs
    writer: Writer
    pinned: str | None  # the channel the client pinned: such a call is not retried
    reservation: Reservation | None = None  # set last in admission; None when no key pays
    retries: int = 0  # upstream attempts that failed before the one that answered


Frame = tuple[bytes, int]  # bytes on the wire, completion tokens they carry


class Writer(Protocol):
    """A protocol's parser and renderer.

    ``parse`` must depend only on the body, the path model, the query string and the
    configuration when ``cacheable`` is true: its result is then shared by identical
    requests, so ``render`` and ``frames`` must not change the spec or the completion.
    """

    protocol: str
    cacheable: bool
    pure: bool  # render and frames depend on spec, completion, model, created, defects only

    def parse(self, body: Any, request: Request, path_model: str | None) -> Spec: ...

    def render(self, call: Call, spec: Spec, completion: Completion | None) -> dict[str, Any]: ...

    def frames(self, call: Call, spec: Spec, completion: Completion) -> list[Frame]: ...

    def error_frames(
        self, call: Call, spec: Spec, error: GatewayError, sent: int
    ) -> list[bytes]: ...

    def end_frames(
        self, call: Call, spec: Spec, completion: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        """The protocol's normal end of a stream, after ``sent`` frames that carried
        ``delivered`` output tokens (the ``fabricated-finish-on-cut`` defect)."""
        ...

    def stream_content_type(self, spec: Spec) -> str: ...


class Parsed:
    """What one request body parses to, and what the model generates for it.

    Identical requests (same writer, path model, query string and body bytes, under the same
    configuration object) share one ``Parsed`` from the state's ``ResultCache``, so nothing
    in it is changed after it is made: not the spec, not the completions. ``completion``
    only fills its memo, once per (model, chunks, mark), with what ``generate`` returns for them.
    """

    __slots__ = (
        "_completions",
        "_outputs",
        "base",
        "config",
        "directive_error",
        "directives",
        "spec",
    )

    def __init__(self, config: MockConfig, spec: Spec) -> None:
        self.config = config
        self.spec = spec
        self.directive_error: str | None = None  # the name's directives do not parse
        try:
            # the model name without its directives, and the directives in it
            self.base, self.directives = split_model(spec.model)
        except DirectiveError as exc:
            self.base, self.directives = spec.model, NO_DIRECTIVES
            self.directive_error = str(exc)
        self._completions: dict[tuple[str, int | None, int | None], Completion] = {}
        self._outputs: dict[tuple[Any, ...], Any] = {}

    def completion(self, model: ModelConfig, directives: Directives) -> Completion:
        gen = self.spec.gen
        assert gen is not None
        # a model id names one ModelConfig per config; the other directives change timing
        memo = (model.id, directives.chunks, directives.mark)
        found = self._completions.get(memo)
        if found is not None:
            return found
        reasoning = gen.reasoning if "reasoning" in model.capabilities else None
        if gen.model != model.id or gen.reasoning != reasoning:
            # directives in the name never change the words (chunks and mark their number)
            gen = dataclasses.replace(gen, model=model.id, reasoning=reasoning)
        config = self.config
        found = generate(
            gen,
            seed=config.seed,
            min_tokens=config.min_output_tokens,
            max_tokens=min(config.max_output_tokens, model.max_output_tokens),
            directives=directives,
            streamed=self.spec.stream,
        )
        if len(self._completions) < 4:
            self._completions[memo] = found
        return found

    def output(self, key: tuple[Any, ...]) -> Any:
        """What ``keep`` kept under ``key``: a rendered answer, or None."""
        return self._outputs.get(key)

    def keep(self, key: tuple[Any, ...], value: Any) -> None:
        outputs = self._outputs
        if len(outputs) >= 4:  # keys carry the second of ``created``: old ones are dead
            outputs.clear()
        outputs[key] = value
