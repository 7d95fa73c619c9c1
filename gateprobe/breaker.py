"""The hang breaker: after a few consecutive timeouts the target counts as stopped answering.

A target that accepts connections and never answers costs every scenario its full read
timeout (20 s on the bundled mock's profile: about an hour for the suites). After
``threshold`` consecutive requests that got no answer within their timeouts, every further
request to that target fails at once with ``the target stopped answering (N consecutive
timeouts)``, and nothing is sent.

What counts: a request that timed out before any answer came (connect, read before the
status line, pool or write timeout). Any answer resets the count, even one whose body then
stalls: the target is there, and the stall is that scenario's finding. A transport error that
is no timeout (refused, reset) neither counts nor resets: it costs no time. A timeout the
scenario asked for does not count: a step with its own ``read_timeout`` (a gateway that should
end a stream after a failure, read with a short limit) or carrying the mock's ``hang``
directive.

Per process and per ``Target`` object: the plugin installs a breaker for its session's
target (``install``) and ``gateprobe.runner.send_built`` consults it; xdist workers each keep
their own count. Without an installed breaker nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateprobe.http import Exchange, RequestRecord
from gateprobe.request import BuiltRequest
from gateprobe.target import Target

__all__ = [
    "DEFAULT_THRESHOLD",
    "REASON_PREFIX",
    "HangBreaker",
    "active",
    "install",
    "is_timeout",
    "uninstall",
]

DEFAULT_THRESHOLD = 3
REASON_PREFIX = "the target stopped answering"

# How gateprobe.http words a request that got no answer in time (status None). Kept in step
# with it by tests/test_breaker.py, which makes http.py time out against a silent server.
_NO_ANSWER = re.compile(
    r"^(?:connect timeout|no response \(read timeout\)|no free connection \(pool timeout\)"
    r"|timeout) after "
)


def is_timeout(exchange: Exchange) -> bool:
    """Did this exchange time out before any answer came?"""
    return exchange.status is None and bool(_NO_ANSWER.match(exchange.error or ""))


def _deliberate(built: BuiltRequest) -> bool:
    """A request whose timeout the scenario expects: no sign of a hung target."""
    tokens = {t.strip() for t in (built.fault or "").split(",")}
    return built.read_timeout is not None or "hang" in tokens


@dataclass
class HangBreaker:
    threshold: int = DEFAULT_THRESHOLD
    consecutive: int = 0
    tripped: bool = False
    last_error: str | None = None
    tripped_by: str | None = None  # the URL of the request that made the count reach the limit
    unsent: int = field(default=0)  # requests refused since

    @property
    def reason(self) -> str:
        return (
            f"{REASON_PREFIX} ({self.consecutive} consecutive timeouts; the last: "
            f"{self.last_error}); not sent"
        )

    def observe(self, built: BuiltRequest, exchange: Exchange) -> None:
        if exchange.status is not None:
            self.consecutive = 0
            return
        if _deliberate(built) or not is_timeout(exchange):
            return
        self.consecutive += 1
        self.last_error = exchange.error
        if self.consecutive >= self.threshold:
            self.tripped = True
            self.tripped_by = exchange.request.url

    def refuse(self, built: BuiltRequest, target: Target) -> Exchange:
        """The exchange of a request not sent because the breaker tripped."""
        self.unsent += 1
        body = built.content
        record = RequestRecord(built.method, target.base_url + built.url, dict(built.headers), body)
        return Exchange(record, error=self.reason)


# id(target) -> (the target itself, kept so the id cannot be reused while installed; breaker)
_ACTIVE: dict[int, tuple[Target, HangBreaker]] = {}


def install(target: Target, breaker: HangBreaker) -> None:
    _ACTIVE[id(target)] = (target, breaker)


def uninstall(target: Target) -> None:
    entry = _ACTIVE.get(id(target))
    if entry is not None and entry[0] is target:
        del _ACTIVE[id(target)]


def active(target: Target) -> HangBreaker | None:
    entry = _ACTIVE.get(id(target))
    return entry[1] if entry is not None and entry[0] is target else None
