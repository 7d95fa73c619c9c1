"""The hang breaker: consecutive timeouts stop a run from waiting on a target that went silent.

Unit tests drive ``HangBreaker`` with exchanges made by hand; the others make gateprobe.http
really time out against ``SilentServer`` (accepts, reads, never answers), through
``send_built``, the pytest plugin, and at last ``gateprobe run`` with the full suites and the
usual timeouts of the bundled mock's profile (20 s to read).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from interrupt_support import Command, SilentServer, run_dir, silent_profile
from support import bundled_scenario_count

from gateprobe.breaker import REASON_PREFIX, HangBreaker, active, install, is_timeout, uninstall
from gateprobe.http import Exchange, Limits, RequestRecord
from gateprobe.request import BuiltRequest
from gateprobe.runner import send_built
from gateprobe.target import Target

pytest_plugins = ["pytester"]


def built(read_timeout: float | None = None, fault: str | None = None) -> BuiltRequest:
    return BuiltRequest(
        "GET", "/v1/models", {}, None, None, "openai", None, None,
        fault=fault, read_timeout=read_timeout,
    )  # fmt: skip


def answer(status: int | None, error: str | None = None) -> Exchange:
    return Exchange(
        RequestRecord("GET", "http://t/v1/models", {}, None), status=status, error=error
    )


READ_TIMEOUT = "no response (read timeout) after 20.01 s"


def test_consecutive_timeouts_trip_it_and_any_answer_resets_the_count() -> None:
    breaker = HangBreaker(3)
    for _ in range(2):
        breaker.observe(built(), answer(None, READ_TIMEOUT))
    breaker.observe(built(), answer(502))  # an answer, even an error: the target is there
    assert breaker.consecutive == 0 and not breaker.tripped
    breaker.observe(built(), answer(None, "connect timeout after 5.00 s"))
    breaker.observe(built(), answer(None, READ_TIMEOUT))
    assert not breaker.tripped
    # refused or reset: costs no time, neither counts nor resets
    breaker.observe(built(), answer(None, "transport error before a response: ConnectError"))
    assert breaker.consecutive == 2 and not breaker.tripped
    breaker.observe(built(), answer(None, READ_TIMEOUT))
    assert breaker.tripped and breaker.consecutive == 3
    assert breaker.reason.startswith(f"{REASON_PREFIX} (3 consecutive timeouts; the last: ")
    assert READ_TIMEOUT in breaker.reason


def test_timeouts_a_scenario_asks_for_do_not_count() -> None:
    breaker = HangBreaker(1)
    breaker.observe(built(read_timeout=3), answer(None, READ_TIMEOUT))
    breaker.observe(built(fault="chunks-8,hang"), answer(None, READ_TIMEOUT))
    assert not breaker.tripped and breaker.consecutive == 0
    # a body that stalls after the status line: an answer (that scenario's finding)
    breaker.observe(built(), answer(200, "no data for 20 s while reading the body (read timeout)"))
    assert not breaker.tripped
    breaker.observe(built(fault="error-503"), answer(None, READ_TIMEOUT))
    assert breaker.tripped


def target_at(url: str, read: float) -> Target:
    return Target(name="silent", base_url=url, limits=Limits(connect=2, read=read, total=5))


def test_http_timeouts_are_read_as_timeouts_and_a_tripped_breaker_sends_nothing() -> None:
    with SilentServer() as server, httpx.Client() as client:
        target = target_at(server.url, 0.3)
        # without a breaker installed, nothing changes
        first = send_built(built(), target, client)
        assert first.status is None and is_timeout(first), first.error
        breaker = HangBreaker(2)
        install(target, breaker)
        try:
            assert active(target) is breaker
            assert active(target_at(server.url, 0.3)) is None  # per Target object
            for _ in range(2):
                assert is_timeout(send_built(built(), target, client))
            assert breaker.tripped and server.requests == 3
            started = time.perf_counter()
            refused = send_built(built(), target, client)
            assert time.perf_counter() - started < 0.1
            assert refused.status is None and refused.error == breaker.reason
            assert not is_timeout(refused)  # a refusal is no new timeout
            time.sleep(0.2)
            assert server.requests == 3 and breaker.unsent == 1  # nothing was sent
        finally:
            uninstall(target)
        assert active(target) is None


SUITE = """\
id: hang.deliberate
title: Reads with a short limit of its own, whose timeout does not count
steps:
  - request: {protocol: openai, operation: models, read_timeout: 0.3}
    expect: {status: 200}
---
id: hang.first
title: Times out
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200}
---
id: hang.second
title: Times out, and trips the breaker
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200}
---
id: hang.third
title: Fails unsent
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200}
---
id: hang.fourth
title: Fails unsent
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200}
"""

PROFILE = """\
name: silent
base_url: {url}
keys: {{valid: GATEPROBE_SILENT_KEY}}
models: {{chat: gpt-4o-mini}}
capabilities: [openai.models]
timeouts: {{connect: 2, read: 0.5, total: 3}}
"""


@pytest.fixture
def silent(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> SilentServer:
    monkeypatch.setenv("GATEPROBE_SILENT_KEY", "sk-silent-0123456789")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    (pytester.path / "suites" / "hang").mkdir(parents=True)
    (pytester.path / "suites" / "hang" / "all.yaml").write_text(SUITE, "utf-8")
    return SilentServer()


def write_ini(pytester: pytest.Pytester, url: str, *extra: str) -> None:
    (pytester.path / "silent.yaml").write_text(PROFILE.format(url=url), "utf-8")
    lines = ["[pytest]", "addopts = -p no:cacheprovider", "gateprobe_target = silent.yaml"]
    (pytester.path / "pytest.ini").write_text("\n".join([*lines, *extra]) + "\n", "utf-8")


def test_the_plugin_fails_the_rest_unsent_after_the_configured_timeouts(
    pytester: pytest.Pytester, silent: SilentServer
) -> None:
    with silent:
        write_ini(pytester, silent.url, "gateprobe_hang_after = 2")
        started = time.perf_counter()
        result = pytester.runpytest_inprocess(f"--gateprobe-report-dir={pytester.path / 'out'}")
        elapsed = time.perf_counter() - started
        requests = silent.requests
    result.assert_outcomes(failed=5)
    summary = json.loads((pytester.path / "out" / "summary.json").read_text("utf-8"))
    reasons = {r["name"]: r["reason"] for r in summary["scenarios"]}
    for name in ("hang.deliberate", "hang.first", "hang.second"):
        assert "no response (read timeout)" in reasons[name], reasons[name]
    for name in ("hang.third", "hang.fourth"):
        assert reasons[name].startswith(f"transport: {REASON_PREFIX} (2 consecutive timeouts")
    assert requests == 3  # the deliberate one and the two that counted; nothing after
    assert elapsed < 5  # 0.3 + 0.5 + 0.5 s of waiting, then nothing
    result.stdout.fnmatch_lines(
        [
            "hang.third: transport: the target stopped answering (2 consecutive timeouts;*",
            "gateprobe: the target stopped answering after 2 consecutive timeouts: 2 scenario(s)"
            " failed without being sent*",
        ],
        consecutive=False,
    )


def test_the_option_overrides_the_ini_value_and_zero_turns_the_breaker_off(
    pytester: pytest.Pytester, silent: SilentServer
) -> None:
    with silent:
        write_ini(pytester, silent.url, "gateprobe_hang_after = 1")
        result = pytester.runpytest_inprocess("--gateprobe-hang-after=0")
        requests = silent.requests
    result.assert_outcomes(failed=5)
    assert requests == 5  # every scenario was sent and waited for
    assert REASON_PREFIX not in result.stdout.str()


def test_a_bad_value_is_a_usage_error(pytester: pytest.Pytester, silent: SilentServer) -> None:
    write_ini(pytester, silent.url, "gateprobe_hang_after = three")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gateprobe_hang_after*must be a whole number >= 0, not 'three'*"])


@pytest.mark.slow
def test_the_full_suites_against_a_silent_gateway_end_within_two_minutes(tmp_path: Path) -> None:
    with SilentServer() as server:
        profile, env = silent_profile(tmp_path, server)  # read timeout 20 s, as shipped
        command = Command(
            ["run", "--target", str(profile), "--report-dir", str(tmp_path / "reports")], env=env
        )
        started = time.monotonic()
        try:
            command.process.wait(timeout=150)
        finally:
            elapsed = time.monotonic() - started
            command.kill_all()
        requests = server.requests
    print(f"full suites against a silent gateway: {elapsed:.1f} s, {requests} requests")
    assert command.process.returncode == 1, command.output
    assert elapsed < 120, command.output
    summary = json.loads((run_dir(tmp_path / "reports") / "summary.json").read_text("utf-8"))
    total = bundled_scenario_count()
    assert summary["totals"]["fail"] == len(summary["scenarios"]) == total
    unsent = [r for r in summary["scenarios"] if REASON_PREFIX in r["reason"]]
    assert len(unsent) == total - 3
    assert requests == 3  # three read timeouts of 20 s, then nothing more was sent
    assert (
        f"the target stopped answering after 3 consecutive timeouts: {total - 3} scenario(s)"
        in (command.output)
    )


def test_gateprobe_run_takes_hang_after(tmp_path: Path) -> None:
    """``gateprobe run --hang-after 1``: one timeout stops the run from sending anything more."""
    with SilentServer() as server:
        profile, env = silent_profile(tmp_path, server)
        text = profile.read_text("utf-8")
        profile.write_text(text.replace("read: 20,", "read: 1,"), "utf-8")
        assert "read: 1," in profile.read_text("utf-8")
        args = ["run", "--target", str(profile), "--report-dir", str(tmp_path / "reports")]
        command = Command([*args, "--hang-after", "1", "-k", "errors"], env=env)
        try:
            command.process.wait(timeout=60)
        finally:
            command.kill_all()
        requests = server.requests
    assert command.process.returncode == 1, command.output
    assert requests == 1, command.output
    summary = json.loads((run_dir(tmp_path / "reports") / "summary.json").read_text("utf-8"))
    unsent = [r for r in summary["scenarios"] if REASON_PREFIX in r["reason"]]
    assert len(unsent) == len(summary["scenarios"]) - 1 > 10
