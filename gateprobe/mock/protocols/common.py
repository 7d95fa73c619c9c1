"""Field validation shared by the protocol parsers: every failure is a 400 naming the field."""

from __future__ import annotations

import itertools
import json
from typing import Any

from gateprobe.mock.call_types import Call, Spec
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.state import MockState
from gateprobe.mock.upstream import Completion

__all__ = [
    "WriterBase",
    "canonical",
    "invalid",
    "opt_bool",
    "opt_int",
    "opt_str",
    "req_list",
    "req_str",
    "sse",
]


def invalid(param: str, message: str) -> GatewayError:
    return GatewayError(400, "invalid_request", message, param=param)


def req_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise GatewayError(400, "missing_field", f"Missing required field '{name}'", param=name)
    if not isinstance(value, str) or not value:
        raise invalid(name, f"Field '{name}' must be a non-empty string")
    return value


def opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(name, f"Field '{name}' must be a string")
    return value


def opt_int(body: dict[str, Any], name: str, minimum: int = 1) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(name, f"Field '{name}' must be an integer >= {minimum}")
    return value


def opt_bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(name, f"Field '{name}' must be a boolean")
    return value


def req_list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise GatewayError(400, "missing_field", f"Missing required field '{name}'", param=name)
    if not isinstance(value, list) or not value:
        raise invalid(name, f"Field '{name}' must be a non-empty array")
    return value


# Built once: ``json.dumps`` with non-default options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical(*parts: Any) -> str:
    return _CANONICAL.encode(parts)


def sse(data: str | bytes, event: str | None = None) -> bytes:
    payload = data.encode() if isinstance(data, str) else data
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


_encode_string = json.encoder.encode_basestring  # the C implementation when available


def dumps(obj: Any) -> str:
    if type(obj) is str:
        return _encode_string(obj)
    return _COMPACT.encode(obj)


class WriterBase:
    """Writers read the live state, so defects switched at run time apply at once.

    ``cacheable``: ``parse`` reads only the body, the path model, the query string and the
    configuration, so identical requests may share its result (see ``call_types.Parsed``).
    """

    cacheable = True
    # ``render`` and ``frames`` depend on the spec, the completion, the model, ``created`` and
    # the defects only (not on the request id, headers, ...): identical calls may share them
    pure = False

    def __init__(self, state: MockState) -> None:
        self.state = state

    @property
    def defects(self) -> frozenset[str]:
        return self.state.config.defects

    def end_frames(
        self, call: Call, spec: Spec, completion: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        """A stream's normal end after a cut (``fabricated-finish-on-cut``); none by default."""
        return []

    def stream_pieces(self, completion: Completion) -> list[str]:
        """The text a stream sends, one delta per piece: each piece, or with the
        ``cumulative-deltas`` defect the whole text so far (a client appending deltas shows
        the answer repeated)."""
        if "cumulative-deltas" in self.defects:
            return list(itertools.accumulate(completion.pieces))
        return list(completion.pieces)

    def streamed_usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """A usage report as a stream sends it: with the ``stream-usage-zero`` defect every
        count is 0 (the plain answer to the same request keeps its real counts)."""
        if "stream-usage-zero" not in self.defects:
            return usage
        return {name: _zeroed(value) for name, value in usage.items()}


def _zeroed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _zeroed(v) for k, v in value.items()}
    return 0 if isinstance(value, int) and not isinstance(value, bool) else value
