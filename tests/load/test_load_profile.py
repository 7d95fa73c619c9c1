"""Load profiles: durations, bundled profiles, overrides, errors that name file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateprobe.errors import UsageError
from gateprobe.load.profile import bundled_profiles, load_profile, parse_duration, profile_dir


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), ("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("1m30s", 90.0), ("250ms", 0.25),
     ("1h", 3600.0), (0.5, 0.5)],
)  # fmt: skip
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "-3", "1m 30s", "m5"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(text)


def test_every_bundled_profile_loads_with_its_requests() -> None:
    names = bundled_profiles()
    assert {"chat-steady", "chat-stream-ramp", "spike", "soak", "mixed-protocols",
            "embeddings", "chat-step"} <= set(names)  # fmt: skip
    for name in names:
        profile = load_profile(name)
        assert profile.name == name
        assert profile.requests and profile.duration > 0
    mixed = load_profile("mixed-protocols")
    assert {(r.protocol, r.operation) for r in mixed.requests} == {
        ("openai", "chat"), ("openai", "responses"), ("anthropic", "chat"), ("gemini", "chat")
    }  # fmt: skip
    assert {r.stream for r in mixed.requests} == {True, "array"}
    soak = load_profile("soak")
    assert (soak.load.mode, soak.load.arrival, soak.load.rate) == ("open", "poisson", 10.0)


def test_shapes_become_user_counts_over_time() -> None:
    spike = load_profile("spike").shape
    assert spike is not None
    assert spike.at(5) == (5, 50.0) and spike.at(25) == (50, 50.0) and spike.at(45) == (5, 50.0)
    assert spike.at(61) is None
    step = load_profile("chat-step").shape
    assert step is not None
    assert [step.at(t)[0] for t in (0, 9.9, 10, 35, 95)] == [2, 2, 4, 8, 20]  # type: ignore[index]
    ramp = load_profile("chat-stream-ramp").shape
    assert ramp is not None and ramp.length == 80 and ramp.peak_users == 40


def test_openai_streams_ask_for_usage_and_overrides_apply() -> None:
    profile = load_profile("chat-steady")
    spec = profile.requests[0].spec()
    assert spec["body"]["stream_options"] == {"include_usage": True}
    changed = profile.with_overrides(
        {"users": 3, "rate": 7, "arrival": "poisson", "duration": "2s", "slo": {"ttft_p50_ms": 9}}
    )
    assert changed.load.users == 3 and changed.load.mode == "open" and changed.load.rate == 7
    assert changed.duration == 2 and changed.run_time == changed.warmup + 2
    assert changed.slo["ttft_p50_ms"] == 9 and changed.slo["error_ratio"] == 0.01
    assert load_profile("spike").with_overrides({"users": 4}).shape is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("name: x\nrequests:\n  - {protocol: openai, operation: chat}\nusers: 3\n",
         4, "users", "unknown field 'users'"),
        ("name: x\nrequests:\n  - protocol: openai\n    operation: chat\n    stream: yes-please\n",
         5, "requests[0].stream", ""),
        ("name: x\nrequests:\n  - {protocol: openai, operation: chat}\nduration: 5 minutes\n",
         4, "duration", ""),
        ("name: x\nrequests:\n  - {protocol: openai, operation: chat}\nload:\n  mode: open\n",
         5, "load.rate", "need a rate"),
        ("name: x\nrequests:\n  - {protocol: openai, operation: chat}\n"
         "  - {protocol: openai, operation: chat}\n", 4, "requests[1].name", "duplicate"),
        ("name: x\nrequests:\n  - {protocol: openai, operation: embeddings, stream: true}\n",
         3, "requests[0].stream", "do not stream"),
        ("name: x\nrequests:\n  - {protocol: anthropic, operation: responses}\n",
         3, "requests[0].operation", "not an operation of anthropic"),
        ("name: x\nrequests:\n  - {protocol: openai, operation: chat}\nslo: {ttft_p98_ms: 3}\n",
         4, "slo.ttft_p98_ms", ""),
    ],
)  # fmt: skip
def test_bad_profiles_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_profile(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert message in str(error)
    assert str(error).startswith(f"{path}:{line}: {field}: ")


def test_unknown_profile_name_lists_the_bundled_ones() -> None:
    with pytest.raises(UsageError, match="chat-steady"):
        load_profile("no-such-profile")


def test_gateprobe_validate_checks_load_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateprobe.cli import main

    assert main(["validate", str(profile_dir())]) == 0
    assert f"{len(bundled_profiles())} file(s) valid" in capsys.readouterr().out
    bad = _write(
        tmp_path, "name: x\nrequests:\n  - {protocol: openai, operation: chat}\nwarmup: 2 days\n"
    )
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}:4: warmup: " in capsys.readouterr().err
