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

import gevent
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from gateprobe.load.locust_app import build
from gateprobe.load.settings import settings_from_env
from gateprobe.load.window import sleep_until
from gateprobe.request import build_request

_runner: list[Any] = []


@events.init.add_listener
def _init(environment: Any, **_: object) -> None:
    _runner.append(environment.runner)


@events.spawning_complete.add_listener
def _measure(**_: object) -> None:
    gevent.spawn(_measure_for, float(os.environ["BENCH_SECONDS"]))


def _measure_for(seconds: float) -> None:
    # This file ends the run, the same way for both kinds: Locust's --run-time starts before
    # the users are up and counts from gevent's cached loop time, stale by the imports (the
    # stream kind's are heavier), so it cut the runs short, and unevenly.
    runner = _runner[0]
    runner.stats.reset_all()  # from now on: every user has started
    cpu, start = time.process_time(), time.perf_counter()
    loop = gevent.get_hub().loop
    sleep_until(start + seconds, sleep=gevent.sleep, before_sleep=loop.update_now)
    # the span's figures, taken before stopping (stopping costs CPU and lets requests end);
    # the request counts are Locust's totals (the LLM rows never add to them)
    total = runner.stats.total
    figures = {
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - start,
        "requests": total.num_requests,
        "failures": total.num_failures,
    }
    Path(os.environ["BENCH_CPU_FILE"]).write_text(json.dumps(figures))
    runner.quit()


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
