"""Locust users on FastHttpUser (geventhttpclient): one class per entry of the request mix.

``user_class_for`` makes a concrete ``LLMUser`` class of each entry of the profile's mix
(named after the entry, weighted as it says); the entry's (protocol, operation) decide the
request it builds and how its answer is read. Each user builds its request once with the
same protocol layer as the conformance suites (``gateprobe.request.build_request`` with
the target profile), then sends it over and over: closed loop (the next when the last
ended, after the think time) or open loop (at the slots of the process's ``Pacer``). The
body is read as it arrives, each read stamped with ``time.perf_counter()`` and handed to a
``RequestTimer`` (see ``metrics.py``), whose figures become the request's
``record.RequestRecord``.

Imported only inside Locust processes (it imports locust, which patches the standard
library with gevent).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar, cast

import gevent
from gevent import GreenletExit
from geventhttpclient.url import URL
from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import CatchResponseError, StopUser

from gateprobe import protocols
from gateprobe.load.framing import ChunkTemplate, ElementTemplate
from gateprobe.load.metrics import RequestTimer
from gateprobe.load.profile import RequestSpec
from gateprobe.load.record import RequestRecord
from gateprobe.load.window import epoch_now
from gateprobe.request import build_request

__all__ = ["LLMUser", "TotalTimeout", "read_some", "user_class_for"]

ERROR_BODY_BYTES = 300
# Read past what the record keeps, and masked before the cut: a key quoted across the cut
# would otherwise keep its first part, too short to be recognised.
_HEAD_BYTES = ERROR_BODY_BYTES + 256
_ABSOLUTE = re.compile(r"^https?://", re.IGNORECASE)


class TotalTimeout(Exception):
    """A request outlived the target's ``timeouts.total``."""


def read_some(raw: Any) -> bytes:
    """Whatever body bytes have arrived (waiting for at least one); b"" at the end.

    geventhttpclient's ``read(n)`` waits for n bytes, which would stamp an event late; this
    returns as soon as one socket read brought body bytes.
    """
    buffer = raw._body_buffer
    if not buffer and not raw.message_complete:
        sock = raw._sock
        if sock is None:
            return b""
        try:
            while not buffer and not raw.message_complete:
                data = sock.recv(raw.block_size)
                if not data:
                    raw.release()
                    break
                raw.feed(data)
        except Exception:
            raw.release()
            raise
    out = bytes(buffer)
    del buffer[:]
    return out


class LLMUser(FastHttpUser):
    """Sends one request of the profile's mix (``spec``, set by ``user_class_for``).

    The request goes through the user's geventhttpclient connection pool (FastHttpUser's
    timeouts, TLS settings and pool), not through ``FastHttpSession.request``: that wrapper
    would report a stream at its headers, and its bookkeeping (URL building, header copies,
    a response proxy) cost the streaming user about 200 µs of CPU per request, most of what
    a bare request costs. The user fires Locust's ``request`` event itself, once, when the
    body ended.
    """

    abstract = True
    spec: ClassVar[RequestSpec]
    runtime: ClassVar[Any] = None  # gateprobe.load.runtime.Runtime, set by the locustfile
    network_timeout = 120.0
    connection_timeout = 30.0
    concurrency = 1  # one connection per user: a user has one request in flight

    def on_start(self) -> None:
        built = build_request(self.spec.spec(), self.runtime.settings.target)
        headers = dict(built.headers)
        headers.setdefault("accept-encoding", "identity")  # a compressed stream hides timing
        body = built.content
        if body is None and built.json_body is not None:
            body = json.dumps(built.json_body).encode()
            headers.setdefault("content-type", "application/json")
        session: Any = self.client
        url = built.url if _ABSOLUTE.match(built.url) else session.base_url + built.url
        split = URL(url)
        self._http = session.client.clientpool.get_client(split)
        self._request_uri = split.quoted_uri
        # the profile's keys and this request's own (a literal key): masked in the URL given
        # to the request event's listeners (Gemini's ?key=) and in the records' errors
        self._redactor = self.runtime.settings.target.redactor([built.secret])
        self._url = self._redactor.text(url)
        self._method = built.method.upper()
        self._headers = headers
        self._body = body or b""
        self._stream = built.stream
        self._template: ChunkTemplate | ElementTemplate | None = None  # the last stream's
        self._request_event = self.environment.events.request
        self._request_id_header = self.runtime.settings.target.dialect.request_id_header
        self._total_timeout = float(self.runtime.settings.target.limits.total)
        self._update_loop_time = gevent.get_hub().loop.update_now

    def wait_time(self) -> float:
        return float(self.runtime.settings.profile.load.think_time)

    @task
    def send(self) -> None:
        runtime = self.runtime
        pacer = runtime.pacer
        slot: float | None = None
        if pacer is not None:
            slot = pacer.claim()
            delay = slot - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
        window = runtime.window
        if window.closed is not None:
            # the measured window closed and the run is stopping its users: sending on would
            # only make requests it cuts
            raise StopUser()
        wall = epoch_now()
        start = time.perf_counter()
        lag = pacer.lag_ms(slot, start) if pacer is not None and slot is not None else None
        timer = RequestTimer(
            self.spec.protocol, self.spec.operation, self._stream, start, self._template
        )
        failure: Exception | None = None  # no answer, or the body broke off
        status = 0
        head = b""
        raw: Any = None
        deadline = gevent.Timeout(self._total_timeout)
        # a timer counts from the loop's cached time, taken before this greenlet ran (longer
        # before on a busy loop or a starved machine): the timeout would fire early
        self._update_loop_time()
        deadline.start()
        try:
            # every status is an answer to read (its error body; the connection stays
            # usable): RequestTimer.finish judges success
            raw = self._http.request(self._method, self._request_uri, self._body, self._headers)
            status = int(raw.status_code)
            keep_head = not 200 <= status < 300
            while chunk := read_some(raw):
                timer.feed(chunk, time.perf_counter())
                if keep_head and len(head) < _HEAD_BYTES:
                    head += chunk[: _HEAD_BYTES - len(head)]
        except Exception as exc:  # refused, reset, read timeout, not HTTP
            failure = exc
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            failure = TotalTimeout(
                f"no complete answer within the target's timeouts.total ({self._total_timeout:g} s)"
            )
        except GreenletExit:  # the run ended (or the user was stopped) mid-request
            self._unfinished(timer, wall, raw)
            raise
        finally:
            deadline.close()
            if raw is not None and (failure is not None or not raw.message_complete):
                raw.release()  # a broken connection is not handed back to the pool
        end = time.perf_counter()
        # the user's and the runtime's keys are set by _add and Runtime.add
        record = cast(RequestRecord, timer.finish(end, status))
        self._template = timer.template or self._template
        if failure is not None:
            record["ok"] = False
            record["error_class"] = (
                "timeout" if "timeout" in type(failure).__name__.lower() else "connection"
            )
            record["error"] = self._redactor.text(f"{type(failure).__name__}: {failure}")[:300]
        elif not 200 <= status < 300:
            error = self._redactor.text(head.decode("utf-8", "replace"))
            record["error"] = error[:ERROR_BODY_BYTES]
        elif record.get("error"):  # an in-band error or a broken stream, quoted from the body
            record["error"] = self._redactor.text(str(record["error"]))
        if window.closed is not None:
            self._after_window(record, wall, raw)
            return
        self._request_event.fire(
            request_type=self._method,
            name=self.spec.name,
            response_time=record["e2e_ms"],
            response_length=timer.bytes,
            # a stable message (no request ids) so Locust groups failures by cause
            exception=None
            if record["ok"]
            else CatchResponseError(f"{record['error_class']} (status {status})"),
            context=self.context(),
            response=raw,
            url=self._url,
            start_time=wall,
        )
        self._add(record, wall, raw, lag)

    def _add(self, record: RequestRecord, wall: float, raw: Any, lag: float | None) -> None:
        spec = self.spec
        record["name"] = spec.name
        record["protocol"] = spec.protocol
        record["operation"] = spec.operation
        record["stream"] = self._stream
        record["start"] = round(wall, 6)
        record["request_id"] = raw.get(self._request_id_header) if raw is not None else None
        record["schedule_lag_ms"] = round(lag, 3) if lag is not None else None
        self.runtime.add(record)

    def _after_window(self, record: RequestRecord, wall: float, raw: Any) -> None:
        """A request that ended after the measured window closed, while the run stopped its
        users (they run again while Locust waits for each to stop): in flight when the
        window closed, so unfinished for the run, and never in Locust's table."""
        late_ms = (epoch_now() - float(self.runtime.window.closed)) * 1000.0
        answer = f"; its answer: {record['error']}" if record.get("error") else ""
        record["ok"] = False
        record["unfinished"] = True
        record["error_class"] = "unfinished"
        record["error"] = (
            f"in flight when the measured window closed (it ended {late_ms:.0f} ms after)" + answer
        )
        # no schedule lag, as for the other unfinished ones: the lag counts measured sends
        self._add(record, wall, raw, None)

    def _unfinished(self, timer: RequestTimer, wall: float, raw: Any) -> None:
        """A request still in flight when the run stopped its user: recorded apart (neither
        ok nor failed, never in Locust's table), so a hang shows in the summary."""
        status = int(raw.status_code) if raw is not None else 0
        record = cast(RequestRecord, timer.finish(time.perf_counter(), status))
        record["ok"] = False
        record["unfinished"] = True
        record["error_class"] = "unfinished"
        record["error"] = (
            f"still in flight after {record['e2e_ms'] / 1000:.1f} s when the run ended"
        )
        self._add(record, wall, raw, None)


def user_class_for(spec: RequestSpec, host: str, runtime: Any) -> type[LLMUser]:
    """A concrete user class for one entry of the mix, weighted as the profile says.

    Named after the entry (Locust shows the class names; its request rows are named by the
    entry's name, which the users give each request). The entry's (protocol, operation)
    decide the request ``on_start`` builds and how ``RequestTimer`` reads its answer.
    """
    operation = protocols.operations(spec.protocol).get(spec.operation)
    if operation is None or operation.body is None:  # a load run sends requests with a body
        raise ValueError(f"no load user sends {spec.protocol} {spec.operation}")
    class_name = "".join(ch if ch.isalnum() else "_" for ch in spec.name)
    return type(
        class_name,
        (LLMUser,),
        {
            "abstract": False,
            "spec": spec,
            "weight": spec.weight,
            "host": host,
            "runtime": runtime,
            # the target's timeouts (also the suites'): between bytes, and to connect
            "network_timeout": float(runtime.settings.target.limits.read),
            "connection_timeout": float(runtime.settings.target.limits.connect),
            "__module__": __name__,
        },
    )
