"""Every stream check, driven by the golden transcripts in fixtures/transcripts/ (no server).

Each transcript states the checks to run and the verdict they must reach: a good stream passes
(with the warnings it lists, and no other); a broken one fails with the named check and a
message (and where) that says what is wrong, naming the event.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateprobe.checks import REGISTRY
from gateprobe.transcript import load_transcript, run_transcript

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
FILES = sorted(ROOT.rglob("*.yaml"))
TRANSCRIPTS = [load_transcript(path) for path in FILES]
STREAM_CHECKS = {
    "stream",
    "stream_incremental",
    "max_ttft_ms",
    "stream_error",
    "stream_equals_plain",
    "stream_cancelled",
}


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=[t.name for t in TRANSCRIPTS])
def test_the_checks_reach_the_transcripts_verdict(transcript: object) -> None:
    from gateprobe.transcript import Transcript

    assert isinstance(transcript, Transcript)
    result = run_transcript(transcript)
    if transcript.verdict == "pass":
        assert result.failures == [], [f.message for f in result.failures]
    else:
        assert result.failures, "expected a failure"
        first = result.failures[0]
        assert first.check == transcript.failure.get("check", first.check)
        assert transcript.failure["message"] in first.message, first.message
        if "where" in transcript.failure:
            assert first.where == transcript.failure["where"], first.where
    found = [w.message for w in result.warnings]
    assert len(found) == len(transcript.warnings), found
    for wanted, message in zip(transcript.warnings, found, strict=True):
        assert wanted in message


def test_every_stream_check_has_a_good_and_a_broken_transcript_per_protocol_it_reads() -> None:
    assert set(REGISTRY) >= STREAM_CHECKS
    for check in STREAM_CHECKS:
        verdicts = {t.verdict for t in TRANSCRIPTS if check in t.expect}
        assert verdicts == {"pass", "fail"}, (check, verdicts)
    for protocol in ("openai", "anthropic", "gemini"):
        for verdict in ("pass", "fail"):
            assert any(
                t.protocol == protocol and t.verdict == verdict and "stream" in t.expect
                for t in TRANSCRIPTS
            ), (protocol, verdict)


def test_a_good_and_a_broken_transcript_exist_for_responses_and_gemini_arrays() -> None:
    kinds = {(t.operation, t.stream, t.verdict) for t in TRANSCRIPTS}
    assert {("responses", "sse", "pass"), ("responses", "sse", "fail")} <= kinds
    assert {("chat", "array", "pass"), ("chat", "array", "fail")} <= kinds
