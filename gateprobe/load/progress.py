"""The one-line progress of a running load test (from progress.json or the live runtime)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_progress"]


def format_progress(data: dict[str, Any]) -> str:
    ttft = data.get("ttft_p50_ms")
    itl = data.get("itl_p50_ms")
    phase = " warmup" if data.get("warmup") else ""
    return (
        f"[{data['elapsed_s']:>5.0f}s/{data['run_time_s']:.0f}s{phase}] "
        f"users {data['users']} | req {data['requests']} ({data['requests_per_s']}/s) | "
        f"fail {data['failures']} | TTFT p50 {'-' if ttft is None else f'{ttft} ms'} | "
        f"ITL p50 {'-' if itl is None else f'{itl} ms'} | "
        f"out {data['output_tokens_per_s']} tok/s"
        + (f" | behind {data['behind']}" if data.get("behind") else "")
    )
