"""The transcript loader: golden streams replayed into Exchanges, and bad files refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateprobe.errors import UsageError
from gateprobe.transcript import load_transcript, run_transcript

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


def test_the_replayed_exchange_has_the_recorded_timing_and_metrics() -> None:
    exchange = load_transcript(ROOT / "openai" / "chat-good.yaml").exchange()
    assert [round(e.time * 1000) for e in exchange.events] == [0, 200, 220, 240, 260, 280]
    assert exchange.events[-1].data == "[DONE]"
    metrics = exchange.stream_metrics()
    assert metrics is not None
    assert metrics["ttft_ms"] == 200.0 and metrics["ttft_at"] == "event[1]"
    assert metrics["output_events"] == 3 and metrics["events"] == 6
    assert metrics["network_chunks"] == 6
    assert metrics["gaps_ms"]["median"] == pytest.approx(20.0)
    assert (
        exchange.to_dict(load_transcript(ROOT / "openai" / "chat-good.yaml").target().redactor())[
            "stream_metrics"
        ]
        == metrics
    )


def test_line_endings_comments_and_blank_lines_do_not_change_the_events() -> None:
    plain = load_transcript(ROOT / "openai" / "chat-good.yaml").exchange()
    carriage = load_transcript(ROOT / "openai" / "chat-cr-good.yaml").exchange()
    assert carriage.body.count(b"\r") and b"\n" not in carriage.body
    assert [e.data for e in carriage.events] == [e.data for e in plain.events]
    crlf = load_transcript(ROOT / "openai" / "chat-crlf-comments-good.yaml").exchange()
    assert b"\r\n\r\n\r\n" in crlf.body and b": PING\r\n" in crlf.body
    assert len(crlf.events) == len(plain.events)
    assert "\n" in crlf.events[2].data  # the two-line data field, joined
    assert crlf.events[2].raw.count("data:") == 2  # the frame as received, kept for reports


def test_usage_tokens_come_from_the_streams_own_usage() -> None:
    usage = load_transcript(ROOT / "openai" / "chat-usage-good.yaml").exchange().stream_metrics()
    assert usage is not None and usage["output_tokens"] == 3 and usage["tokens_per_event"] == 1.0
    claude = load_transcript(ROOT / "anthropic" / "good.yaml").exchange().stream_metrics()
    assert claude is not None and claude["output_tokens"] == 3
    gemini = load_transcript(ROOT / "gemini" / "array-good.yaml").exchange().stream_metrics()
    assert gemini is not None and gemini["ttft_at"] == "element[0]" and gemini["output_tokens"] == 3


def test_a_buffered_transcript_arrives_in_one_network_chunk() -> None:
    transcript = load_transcript(ROOT / "openai" / "chat-buffered.yaml")
    assert len(transcript.chunks) == 1
    result = run_transcript(transcript)
    assert result.exchange.stream_metrics()["output_span_ms"] == 0.0  # type: ignore[index]


HEAD = "protocol: openai\nverdict: pass\nexpect: {stream: true}\n"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (HEAD + "body: x\nbogus: 1\n", "bogus", "unknown field"),
        (HEAD.replace("openai", "cohere") + "body: x\n", "protocol", "unknown protocol"),
        (HEAD.replace("stream:", "nope:") + "body: x\n", "expect", "registered checks"),
        (HEAD.replace("pass", "maybe") + "body: x\n", "verdict", "pass or fail"),
        (HEAD.replace("pass", "fail") + "body: x\n", "failure", "names its failure"),
        (HEAD + "line_ending: crcr\nbody: x\n", "line_ending", "lf, crlf or cr"),
        (HEAD + "timing: {gap_ms: soon}\nbody: x\n", "timing", "numbers"),
        (HEAD, "body", "body (text) or chunks"),
    ],
)
def test_a_bad_transcript_names_its_file_line_and_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(UsageError) as caught:
        load_transcript(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value) and message in str(caught.value)
    if f"\n{field}:" in f"\n{text}":  # a field that is there: its line too
        assert caught.value.line == next(
            n for n, line in enumerate(text.splitlines(), 1) if line.startswith(field)
        )


def test_reports_keep_a_frame_as_received_only_when_it_is_not_plain() -> None:
    transcript = load_transcript(ROOT / "openai" / "chat-crlf-comments-good.yaml")
    events = transcript.exchange().to_dict(transcript.target().redactor())["events"]
    assert [i for i, e in enumerate(events) if "raw" in e] == [2]  # the two-line data field
    assert events[2]["raw"].count("\ndata: ,") == 1
