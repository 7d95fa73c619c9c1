"""``gateprobe compare`` interrupted mid-run: the comparison of what ran is written, exit 130.

Ctrl-C while the second target's load run is measuring: the first target's runs are whole,
the second's load run is stopped the way ``gateprobe load`` stops (its partial summary,
marked interrupted), and compare.json covers both, marked interrupted; nothing is left
running.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from interrupt_support import Command


def test_ctrl_c_writes_the_comparison_of_what_ran(tmp_path: Path) -> None:
    command = Command(
        [
            "compare", "--target", "mock", "--target", "mock:label=second",
            "--profile", "chat-steady", "--load-only",
            "--duration", "6s", "--warmup", "1s", "--users", "2",
            "--report-dir", str(tmp_path),
        ]
    )  # fmt: skip
    try:
        # the second target's load run is under way (Locust writes its progress as it runs)
        command.wait_until(
            lambda: bool(list(tmp_path.glob("*/targets/second/load/*/progress.json"))),
            120,
            "the second load run measuring",
        )
        elapsed = command.interrupt(signal.SIGINT, group=True)
        assert command.process.returncode == 130, command.output
        assert elapsed < 20, elapsed
        assert not command.left_behind(), command.left_behind()
    finally:
        command.kill_all()
    (found,) = tmp_path.glob("*/compare.json")
    comparison = json.loads(found.read_text("utf-8"))
    assert comparison["interrupted"] is True
    first, second = comparison["load"]["targets"]
    assert first["interrupted"] is False and first["metrics"]["ttft_ms"]["count"] > 0
    assert second["label"] == "second"
    assert "comparison: " in command.output
