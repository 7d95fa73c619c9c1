"""Everything the mock remembers between requests, in one place the admin API can reset."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from gateprobe._redact import mask_headers, mask_secret
from gateprobe.mock.asgi import parse_query
from gateprobe.mock.config import ChannelConfig, MockConfig, ModelConfig
from gateprobe.mock.defects import PHANTOM_MODEL
from gateprobe.mock.ledger import Ledger
from gateprobe.mock.upstream import Directives
from gateprobe.mock.usage import RateLimiter, UsageLog

__all__ = ["LoopLag", "MockState", "ResultCache", "ScheduledFault"]

# Capabilities one generating model serves in upstream mode: a gateway in front may turn a
# chat call into a Responses call (LiteLLM sends Anthropic /v1/messages upstream to
# /v1/responses) and keeps the client's model name, so a provider serving one serves both.
GENERATING = frozenset(("chat", "responses"))


@dataclass
class ScheduledFault:
    directives: Directives
    remaining: int
    model: str | None = None
    key: str | None = None
    path: str | None = None

    def matches(self, model: str, key: str | None, path: str) -> bool:
        return (
            (self.model is None or self.model == model)
            and (self.key is None or self.key == key)
            and (self.path is None or self.path == path)
        )


class LoopLag:
    """How late the event loop wakes up: the mock's own saturation, reported by /health.

    A load test reads it to tell a slow target from a mock that could not keep up.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=1200)
        self.times: deque[float] = deque(maxlen=1200)  # wall clock of each sample
        self.worst = 0.0

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = max(0.0, (time.perf_counter() - started - self.interval) * 1000.0)
            self.samples.append(lag)
            self.times.append(time.time())
            self.worst = max(self.worst, lag)

    def snapshot(self, since: float | None = None) -> dict[str, float]:
        """Percentiles of the kept samples; with ``since`` (epoch seconds), of those taken
        after it (a load run asks for its measured window only; ``max`` stays all-time)."""
        if since is None:
            ordered = sorted(self.samples)
        else:
            ordered = sorted(
                s for s, t in zip(self.samples, self.times, strict=False) if t >= since
            )
        if not ordered:
            return {"last": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
        return {
            "last": round(self.samples[-1], 3),
            "p50": round(ordered[len(ordered) // 2], 3),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
            "max": round(self.worst, 3),
            "samples": len(ordered),
        }


class ResultCache:
    """A small LRU of results that identical requests share (see ``call_types.Parsed``).

    Bounded in entries and in the request bytes its keys hold. The request path runs on one
    event loop; a reset from another thread replaces the cache instead of clearing it, so
    a request in flight only ever touches the cache it started with.
    """

    def __init__(self, entries: int = 512, key_bytes: int = 1 << 20) -> None:
        self.entries = entries
        self.key_bytes = key_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` under ``key``; ``size`` is what the key holds (its body bytes)."""
        if self.entries <= 0 or size > self.key_bytes // 8:
            return
        items = self._items
        old = items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        items[key] = (value, size)
        self.size += size
        while len(items) > self.entries or self.size > self.key_bytes:
            _, (_, dropped) = items.popitem(last=False)
            self.size -= dropped

    def __len__(self) -> int:
        return len(self._items)


class MockState:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.loop_lag = LoopLag()
        self.ledger = Ledger(config)
        self.usage = UsageLog(config.usage_log_size)
        self.limiter = RateLimiter(config.rate_window_seconds)
        # request id, method, path, raw query, headers, raw body (see ``remember``)
        self.received: deque[tuple[str, str, str, bytes, dict[str, str], bytes]] = deque(maxlen=200)
        self.faults: list[ScheduledFault] = []
        # the upstream attempts of retried calls, by request id (few: only retries are kept)
        self.attempts: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        # upstream mode: failed attempts so far per request content (``fail-attempts-N``)
        self.failed_attempts: OrderedDict[str, int] = OrderedDict()
        self.results = ResultCache()
        self._lock = threading.Lock()
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)
        self._index(config)

    def _index(self, config: MockConfig) -> None:
        self.models: dict[str, ModelConfig] = {m.id: m for m in config.models}
        self.channels: dict[str, ChannelConfig] = {c.id: c for c in config.channels}

    def reset(self, config: MockConfig | None = None) -> None:
        config = config or self.config
        self.config = config
        self.ledger.reset(config)
        self.usage.clear(config.usage_log_size)
        self.limiter = RateLimiter(config.rate_window_seconds)
        self.received.clear()
        self.attempts.clear()
        self.failed_attempts.clear()
        with self._lock:
            self.faults.clear()
        self._index(config)
        self.results = ResultCache()

    def set_defects(self, defects: frozenset[str]) -> None:
        self.config = self.config.replace(defects=defects)
        self.ledger.config = self.config
        self.results = ResultCache()  # results are made under one config object

    @property
    def defects(self) -> frozenset[str]:
        return self.config.defects

    def request_id(self) -> str:
        return f"gp-{self._prefix}-{next(self._counter):08x}"

    # -- models --------------------------------------------------------------------------

    def model(self, name: str) -> ModelConfig | None:
        """The catalog's model named ``name`` (without directives), or None, in either mode."""
        return self.models.get(name)

    def serves(self, model: ModelConfig, protocol: str, capability: str) -> bool:
        """Whether a ``capability`` call on a route of ``protocol`` may use ``model``.

        A gateway offers a model on the protocols it configures. Upstream mode is a provider
        behind a gateway that translates protocols and keeps the client's model name (LiteLLM
        sends Gemini-format calls upstream as chat completions), so there only the capability
        counts: a chat model answers on every chat-like route.
        """
        caps = model.capabilities
        if self.config.mode == "upstream":
            if capability in GENERATING:
                return not GENERATING.isdisjoint(caps)
            return capability in caps
        return protocol in model.protocols and capability in caps

    def listed(self, visible: list[ModelConfig], protocol: str) -> list[ModelConfig]:
        """Which of ``visible`` the model list (and lookup) of ``protocol`` shows.

        Upstream mode shows what that protocol's routes serve: the OpenAI list is the whole
        catalog (each model callable on the route of its capability); the Anthropic and
        Gemini ones, whose routes only generate, the chat models.
        """
        if self.config.mode != "upstream":
            return [m for m in visible if protocol in m.protocols]
        if protocol == "openai":
            return visible
        return [m for m in visible if not GENERATING.isdisjoint(m.capabilities)]

    def visible_models(
        self, variant: str | None, allow: tuple[str, ...] | None
    ) -> list[ModelConfig]:
        """Models a key of ``variant`` with allow-list ``allow`` may list and call."""
        defects = self.defects
        if "variant-not-honoured" in defects:
            variant = None
        out = [
            m
            for m in self.config.models
            if (variant is None or m.variants is None or variant in m.variants)
            and (allow is None or m.id in allow)
        ]
        if "model-callable-not-listed" in defects:
            out = [m for m in out if "embeddings" not in m.capabilities]
        if "model-listed-not-callable" in self.defects:
            out.append(ModelConfig(id=PHANTOM_MODEL, capabilities=("chat",)))
        return out

    def channel_for(self, model: str, pinned: str | None) -> ChannelConfig | None:
        if pinned is not None:
            channel = self.channels.get(pinned)
            return channel if channel is not None and channel.serves(model) else None
        for channel in self.config.channels:
            if channel.serves(model):
                return channel
        return None

    # -- faults and the record of received requests --------------------------------------

    def schedule(self, fault: ScheduledFault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take_fault(self, model: str, key: str | None, path: str) -> Directives | None:
        if not self.faults:
            return None
        with self._lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(model, key, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault.directives
        return None

    def remember(
        self,
        request_id: str,
        method: str,
        path: str,
        raw_query: bytes,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """Keep what the upstream received, so suites can check pass-through.

        The parts are kept as they came (``body`` is the raw JSON text, which parsed): the
        parsing and masking happen only when someone reads them (``received_records``).
        """
        self.received.append((request_id, method, path, raw_query, headers, body))

    def record_attempts(self, request_id: str, attempts: list[dict[str, Any]]) -> None:
        """Keep a retried call's upstream attempts, shown with its received request."""
        self.attempts[request_id] = attempts
        while len(self.attempts) > (self.received.maxlen or 200):
            self.attempts.popitem(last=False)

    def received_records(self, limit: int = 0) -> list[dict[str, Any]]:
        """The last ``limit`` (0: all) requests received, oldest first, secrets masked."""
        items = list(self.received)
        if limit:
            items = items[-limit:]
        out = []
        for request_id, method, path, raw_query, headers, body in items:
            query = parse_query(raw_query)
            if "key" in query:
                query["key"] = mask_secret(query["key"])
            record = {
                "request_id": request_id,
                "method": method,
                "path": path,
                "query": query,
                "headers": mask_headers(headers),
                "body": json.loads(body),
            }
            attempts = self.attempts.get(request_id)
            if attempts is not None:
                record["attempts"] = attempts
            out.append(record)
        return out
