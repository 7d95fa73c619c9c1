"""``gateprobe load --overhead``: what a gateway adds over its upstream, per percentile.

The same load profile runs straight at the upstream (``--upstream``, a target profile that
addresses it directly: *direct*) and through the gateway (``--target``: *gateway*), in
``--rounds`` pairs within one command. Each side of a round is an ordinary load run
(``launch.run_load``: its own Locust process, warmup and run directory under the overhead
run's), measuring ``duration / rounds`` seconds after the profile's warmup, so ``--duration``
stays the measured time of each side in total. Pairs alternate their order (direct first,
then gateway first, ...): a machine that drifts over the run slows the first and the second
run of the pairs alike, instead of always the same side.

Written to ``<report-dir>/<overhead-id>/overhead.json`` (format in ``docs/load.md``), with a
table on stdout: per metric and percentile the median over the pairs of gateway - direct,
and its spread (``overhead_stats.py``). The upstream's CPU is sampled over every run
(``mock_cpu.py``): a saturated upstream mock is warned about, since then both sides measure
its queueing. No SLO verdict is given (the rounds are slices of a run; each round's own
summary.json keeps its SLO results). Exit codes: 0 done; 1 some requests failed in some
round (the figures of failed requests are left out, as in any load run); 2 usage error or a
round that could not run; 130 interrupted (overhead.json of the pairs completed, marked
interrupted).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from gateprobe._signals import sigterm_interrupts
from gateprobe.errors import UsageError
from gateprobe.load.launch import EXIT_INTERRUPTED, EXIT_USAGE, LoadOptions, run_load
from gateprobe.load.mock_cpu import CpuWatch, saturation_warning
from gateprobe.load.overhead_stats import added_figures, format_table, request_figures
from gateprobe.load.profile import load_profile
from gateprobe.load.settings import new_run_id, profile_keys
from gateprobe.target import Target, load_target

__all__ = ["MIN_ROUND_S", "OverheadOptions", "run_overhead"]

MIN_ROUND_S = 1.0  # a shorter measured window holds too few requests to have percentiles
EXIT_FAILED = 1
EXIT_SLO = 3
SIDES = ("direct", "gateway")


@dataclass
class OverheadOptions:
    load: LoadOptions  # the profile, overrides, processes, report root: as for one run
    gateway: Path
    upstream: Path
    rounds: int = 6
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class _Run:
    round: int
    side: str
    name: str
    code: int
    summary: dict[str, Any] | None


def _check(options: OverheadOptions) -> tuple[Any, dict[str, Target], float]:
    if options.rounds < 2:
        raise UsageError("--rounds must be >= 2: the spread of the overhead needs pairs")
    profile = load_profile(options.load.profile).with_overrides(options.load.overrides)
    if profile.shape is not None:
        raise UsageError(
            f"--overhead needs a steady profile: {profile.name}'s {profile.shape.kind} shape "
            "changes the load within a run, and each round runs a slice of it"
        )
    per_round = profile.duration / options.rounds
    if per_round < MIN_ROUND_S:
        raise UsageError(
            f"each of the {options.rounds} rounds would measure {per_round:g} s (--duration "
            f"{profile.duration:g} s per side in total): give a longer --duration or fewer "
            "--rounds"
        )
    needed = profile_keys(profile)
    targets = {
        "direct": load_target(options.upstream, needed_keys=needed),
        "gateway": load_target(options.gateway, needed_keys=needed),
    }
    return profile, targets, per_round


def _order(round_number: int) -> tuple[str, str]:
    return SIDES if round_number % 2 else (SIDES[1], SIDES[0])


def _round_line(run: _Run, rounds: int) -> str:
    head = f"round {run.round}/{rounds} {run.side:<7}"
    if run.summary is None:
        return f"{head} no summary (exit {run.code})"
    metrics = run.summary.get("metrics") or {}
    cells = []
    for name in ("ttft_ms", "itl_ms", "e2e_ms"):
        p50 = (metrics.get(name) or {}).get("p50")
        if p50 is not None:
            cells.append(f"{name.removesuffix('_ms').upper()} p50 {p50:.2f} ms")
    requests = run.summary.get("requests") or {}
    return (
        f"{head} {requests.get('ok', 0)} ok, {requests.get('failed', 0)} failed; "
        + ", ".join(cells)
        + f" (exit {run.code})"
    )


def run_overhead(options: OverheadOptions) -> int:
    profile, targets, per_round = _check(options)
    out = options.out
    overhead_id = new_run_id()
    out_dir = options.load.report_root / overhead_id
    out_dir.mkdir(parents=True, exist_ok=True)
    watches = {side: CpuWatch(targets[side].base_url).start() for side in SIDES}
    print(
        f"overhead run {overhead_id}: profile {profile.name}, {options.rounds} rounds of "
        f"{per_round:g} s per side after a {profile.warmup:g} s warmup; direct "
        f"{targets['direct'].base_url}, gateway {targets['gateway'].base_url}; reports in "
        f"{out_dir}/",
        file=out,
        flush=True,
    )
    runs: list[_Run] = []
    interrupted = failed_to_run = False
    started = time.time()
    try:
        with sigterm_interrupts():
            for number in range(1, options.rounds + 1):
                for side in _order(number):
                    run = _one_run(options, targets, side, number, per_round, out_dir)
                    runs.append(run)
                    print(_round_line(run, options.rounds), file=out, flush=True)
                    if run.code == EXIT_INTERRUPTED:
                        interrupted = True
                    elif run.code == EXIT_USAGE or run.summary is None:
                        failed_to_run = True
                    if interrupted or failed_to_run:
                        break
                if interrupted or failed_to_run:
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for watch in watches.values():
            watch.stop()
    report = _report(
        overhead_id, options, profile, targets, runs, watches, per_round, started, interrupted
    )
    redact = [t.redactor() for t in targets.values()]
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    for redactor in redact:
        text = redactor.text(text)
    (out_dir / "overhead.json").write_text(text, "utf-8")
    print(format_table(report["metrics"]), file=out)
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=out)
    print(f"overhead: {out_dir / 'overhead.json'}", file=out, flush=True)
    if interrupted:
        return EXIT_INTERRUPTED
    if failed_to_run:
        return EXIT_USAGE
    return EXIT_FAILED if any(r.code == EXIT_FAILED for r in runs) else 0


def _one_run(
    options: OverheadOptions,
    targets: Mapping[str, Target],
    side: str,
    number: int,
    per_round: float,
    out_dir: Path,
) -> _Run:
    name = f"round-{number}-{side}"
    console = io.StringIO()
    path = options.upstream if side == "direct" else options.gateway
    load = replace(
        options.load,
        target=path,
        overrides={**options.load.overrides, "duration": f"{per_round:g}s"},
        report_root=out_dir,
        run_id=name,
        plots=False,
        progress=False,
        out=console,
    )
    try:
        code = run_load(load)
    finally:  # the round's own console output, beside its reports
        text = targets[side].redactor().text(console.getvalue())
        with contextlib.suppress(OSError):
            (out_dir / name / "console.txt").write_text(text, "utf-8")
    summary_path = out_dir / name / "summary.json"
    summary = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else None
    if summary is None and code not in (0, EXIT_INTERRUPTED):
        tail = "\n".join(text.splitlines()[-10:])
        print(f"{name} ended without a summary:\n{tail}", file=options.out)
    return _Run(number, side, name, code, summary)


def _saturation(
    runs: list[_Run], watches: Mapping[str, CpuWatch], targets: Mapping[str, Target]
) -> tuple[dict[str, Any], list[str]]:
    """The upstream's CPU per run (saturation judged on it); the gateway's for reference."""
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for role, watch in (("upstream", watches["direct"]), ("gateway", watches["gateway"])):
        per_run: list[dict[str, Any]] = []
        for run in runs:
            window = (run.summary or {}).get("window") or {}
            cpu = watch.figures(window.get("opened"), window.get("closed"))
            per_run.append({"round": run.round, "side": run.side, "cpu": cpu})
        available = [r["cpu"] for r in per_run if r["cpu"].get("available")]
        worst = max(available, key=lambda c: float(c["max_demand"]), default=None)
        out[role] = {
            "url": targets["direct" if role == "upstream" else "gateway"].base_url,
            "available": worst is not None,
            "reason": None if worst is not None else watch.reason or "no run was sampled",
            "pids": watch.pids,
            "max_busy": max((float(c["max_busy"]) for c in available), default=None),
            "max_demand": worst["max_demand"] if worst else None,
            "threshold": worst["threshold"] if worst else None,
            "saturated": bool(worst and worst["saturated"]) if role == "upstream" else None,
            "per_run": per_run,
        }
        if role == "upstream" and worst is not None:
            warning = saturation_warning(worst)
            if warning is not None:
                saturated = [
                    f"{r['round']} {r['side']}" for r in per_run if r["cpu"].get("saturated")
                ]
                warnings.append(f"{warning} (in runs: {', '.join(saturated)})")
    return out, warnings


def _report(
    overhead_id: str,
    options: OverheadOptions,
    profile: Any,
    targets: Mapping[str, Target],
    runs: list[_Run],
    watches: Mapping[str, CpuWatch],
    per_round: float,
    started: float,
    interrupted: bool,
) -> dict[str, Any]:
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        if run.summary is not None and run.code != EXIT_INTERRUPTED:
            by_round.setdefault(run.round, {})[run.side] = run.summary
    pairs = [
        (sides["direct"], sides["gateway"])
        for _, sides in sorted(by_round.items())
        if len(sides) == 2
    ]
    saturation, warnings = _saturation(runs, watches, targets)
    failed = sum(int((r.summary or {}).get("requests", {}).get("failed") or 0) for r in runs)
    if failed:
        warnings.append(
            f"{failed} requests failed over the runs; the latencies are those of the "
            "requests that succeeded (each run's summary.json has its error classes)"
        )
    for run in runs:
        for warning in (run.summary or {}).get("warnings", []):
            if not warning.startswith("the run was interrupted"):
                warnings.append(f"round {run.round} {run.side}: {warning}")
    if interrupted:
        warnings.append(f"interrupted after {len(pairs)} complete pairs of {options.rounds}")
    return {
        "kind": "gateprobe-overhead",
        "version": 1,
        "id": overhead_id,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "interrupted": interrupted,
        "profile": {**profile.metadata(), "duration_per_round_s": per_round},
        "rounds": {
            "asked": options.rounds,
            "pairs": len(pairs),
            "order": [
                [r.side for r in runs if r.round == n] for n in sorted({r.round for r in runs})
            ],
            "runs": [
                {"round": r.round, "side": r.side, "dir": r.name, "exit": r.code} for r in runs
            ],
        },
        "targets": {side: targets[side].metadata() for side in SIDES},
        "metrics": added_figures(pairs),
        "requests": {side: request_figures([p[i] for p in pairs]) for i, side in enumerate(SIDES)},
        "saturation": saturation,
        "warnings": warnings,
    }
