"""Locust file of benchmarks/load_capacity.py: one kind of user, picked by BENCH_USER.

stream   gateprobe's streaming user (gateprobe/load/users.py): reads the SSE body as it
         arrives, times every event, writes per-request records, logs LLM rows
bare     a plain FastHttpUser sending the same request (same method, path, headers and
         body, built by the same protocol layer) and reading the whole body at once
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from gateprobe.load.locust_app import build
from gateprobe.load.settings import settings_from_env
from gateprobe.protocol import build_request

_cpu_at_start: list[float] = []


@events.test_start.add_listener
def _start(**_: object) -> None:
    _cpu_at_start.append(time.process_time())


@events.test_stop.add_listener
def _stop(environment: Any, **_: object) -> None:
    # CPU of the run itself, without the interpreter's start and Locust's imports; the
    # request counts are Locust's totals (the LLM rows never add to them)
    cpu = time.process_time() - _cpu_at_start[0]
    total = environment.runner.stats.total
    figures = {"cpu_s": cpu, "requests": total.num_requests, "failures": total.num_failures}
    Path(os.environ["BENCH_CPU_FILE"]).write_text(json.dumps(figures))


if os.environ.get("BENCH_USER") == "bare":
    _settings = settings_from_env()
    _built = build_request(_settings.profile.requests[0].spec(), _settings.target)
    _headers = {**_built.headers, "accept-encoding": "identity", "content-type": "application/json"}
    _body = json.dumps(_built.json_body).encode()

    class BareUser(FastHttpUser):
        host = _settings.target.base_url
        concurrency = 1

        @task
        def send(self) -> None:
            self.client.request(
                _built.method,
                _built.url,
                data=_body,
                headers=_headers,
                name="bare",  # type: ignore[arg-type]
            )
else:
    globals().update(build())
