"""``gateprobe compare``: several targets side by side, run now or read from earlier runs.

    gateprobe compare --target A.yaml --target B.yaml [--profile LOAD] --report-dir D
    gateprobe compare RUN_DIR RUN_DIR ...

Either way it writes ``<report-dir>/<compare-id>/compare.json`` and ``compare.html`` and prints
the rows that differ. Run mode keeps each target's own reports beside them
(``targets/<label>/run/<run-id>/``, ``targets/<label>/load/<run-id>/``), so any one of them
can be opened, or compared again, on its own.

Exit codes follow diff(1) and gateprobe's own: 0 every row agrees, 1 some row differs,
2 usage error (a bad --target, a directory that holds no run), 4 internal error,
130 interrupted (the comparison of what ran is written).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gateprobe.compare.matrix import Column, build_comparison
from gateprobe.compare.targets import (
    TargetSpec,
    bundled_mock,
    parse_target,
    unique_labels,
    write_mock_profile,
)
from gateprobe.compare.terminal import format_comparison
from gateprobe.errors import UsageError
from gateprobe.exit_codes import ExitCode

__all__ = ["CompareOptions", "compare", "read_run_dir"]


@dataclass
class CompareOptions:
    targets: Sequence[str] = ()
    dirs: Sequence[Path] = ()
    profile: str | None = None  # a load profile: each target also gets a load run
    load_overrides: dict[str, Any] = field(default_factory=dict)
    report_root: Path = Path("reports") / "compare"
    strict: bool = False
    keyword: str | None = None
    markexpr: str | None = None
    workers: str | None = None
    suites: Sequence[Path] | None = None
    conformance: bool = True  # --load-only: no conformance run
    out: TextIO = field(default_factory=lambda: sys.stdout)


def compare(options: CompareOptions) -> ExitCode:
    if bool(options.targets) == bool(options.dirs):
        raise UsageError("give either --target (twice or more) or run directories, not both")
    items = options.targets or options.dirs
    if len(items) < 2:
        raise UsageError("a comparison needs at least two targets or run directories")
    from gateprobe.load.settings import new_run_id

    compare_dir = options.report_root.resolve() / new_run_id()
    interrupted = False
    if options.dirs:
        columns = _columns_of_dirs(options.dirs)
    else:
        specs = [parse_target(text) for text in options.targets]
        _validate(specs, options)
        columns, interrupted = _run_targets(specs, compare_dir, options)
    if not columns:
        raise UsageError("nothing ran, so there is nothing to compare")
    return _write(columns, compare_dir, options, interrupted)


def _write(
    columns: list[Column], compare_dir: Path, options: CompareOptions, interrupted: bool
) -> ExitCode:
    comparison = build_comparison(columns, profile=options.profile)
    comparison["interrupted"] = interrupted
    compare_dir.mkdir(parents=True, exist_ok=True)
    path = compare_dir / "compare.json"
    path.write_text(json.dumps(comparison, indent=2), "utf-8")
    from gateprobe.report.html import write_compare_report, write_or_warn

    html = write_or_warn(write_compare_report, compare_dir, options.out)  # never the verdict
    print(format_comparison(comparison), file=options.out)
    print(f"comparison: {path}" + (f" and {html}" if html else ""), file=options.out)
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED if comparison["differing"] else ExitCode.OK


def read_run_dir(path: Path) -> tuple[str, Mapping[str, Any]]:
    """A run directory's kind (``run`` or ``load``) and its summary; UsageError otherwise."""
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise UsageError("not a run directory (no summary.json in it)", file=str(path))
    try:
        summary = json.loads(summary_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable summary.json: {exc}", file=str(summary_path)) from None
    if isinstance(summary, dict) and isinstance(summary.get("scenarios"), list):
        return "run", summary
    if isinstance(summary, dict) and isinstance(summary.get("metrics"), dict):
        return "load", summary
    raise UsageError(
        "summary.json is neither a conformance run's nor a load run's", file=str(summary_path)
    )


def _columns_of_dirs(dirs: Sequence[Path]) -> list[Column]:
    """One column per directory; a conformance run and a load run of the same target (by
    the target's name) share one, the way ``compare --target --profile`` lays them out."""
    found: dict[str, dict[str, Any]] = {}
    for path in dirs:
        kind, summary = read_run_dir(path)
        name = str((summary.get("target") or {}).get("name") or path.name)
        slot = found.setdefault(name, {})
        if kind in slot:  # the same target twice (two releases of one gateway, say)
            name = _free_name(found, f"{name} ({path.name})")
            slot = found.setdefault(name, {})
        slot[kind] = (path.resolve(), summary)
    columns = []
    for label, slot in found.items():
        run, load = slot.get("run"), slot.get("load")
        columns.append(
            Column(
                label,
                run_dir=run[0] if run else None,
                run_summary=run[1] if run else None,
                load_dir=load[0] if load else None,
                load_summary=load[1] if load else None,
            )
        )
    return columns


def _free_name(found: Mapping[str, Any], name: str) -> str:
    candidate, n = name, 1
    while candidate in found:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


def _validate(specs: list[TargetSpec], options: CompareOptions) -> None:
    """Every target file and the load profile, before anything runs (a usage error after the
    first target's run would waste it)."""
    from gateprobe.target import load_target

    profile = None
    if options.profile:
        from gateprobe.load.profile import load_profile

        profile = load_profile(options.profile).with_overrides(options.load_overrides)
    for spec in specs:
        if spec.file is not None:
            if options.conformance:
                load_target(spec.file)
            if profile is not None:
                from gateprobe.load.settings import profile_keys

                load_target(spec.file, needed_keys=profile_keys(profile))


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "target"


def _run_targets(
    specs: list[TargetSpec], compare_dir: Path, options: CompareOptions
) -> tuple[list[Column], bool]:
    columns: list[Column] = []
    labels = unique_labels(specs)
    for number, (spec, label) in enumerate(zip(specs, labels, strict=True), start=1):
        home = compare_dir / "targets" / _slug(label)
        print(f"\n== target {number}/{len(specs)}: {label} ==", file=options.out, flush=True)
        profile = write_mock_profile(spec, label, home) if spec.is_mock else spec.file
        assert profile is not None
        run_dir = load_dir = None
        stopped = False
        try:
            if options.conformance:
                run_dir, stopped = _conformance(spec, profile, home / "run", options)
            if options.profile and not stopped:
                load_dir, stopped = _load(spec, profile, home / "load", options)
        except KeyboardInterrupt:  # between the runs, or while a mock started or stopped
            stopped = True
        columns.append(_column(label, run_dir, load_dir))
        if stopped:
            return columns, True
    return columns, False


def _column(label: str, run_dir: Path | None, load_dir: Path | None) -> Column:
    run = read_run_dir(run_dir)[1] if run_dir else None
    load = read_run_dir(load_dir)[1] if load_dir else None
    return Column(label, run_dir=run_dir, run_summary=run, load_dir=load_dir, load_summary=load)


def _only_run(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if (p / "summary.json").is_file())
    return runs[-1] if runs else None


def _conformance(
    spec: TargetSpec, profile: Path, root: Path, options: CompareOptions
) -> tuple[Path | None, bool]:
    """The run directory, and whether the run was interrupted."""
    from gateprobe.run import DEFAULT_SUITES, RunOptions, run

    run_options = RunOptions(
        target=profile,
        strict=options.strict,
        keyword=options.keyword,
        markexpr=options.markexpr,
        workers=options.workers,
        report_root=root,
        suites=[Path(p).resolve() for p in options.suites or [DEFAULT_SUITES]],
    )
    if spec.is_mock:
        with bundled_mock(spec, profile):
            code = run(run_options)
    else:
        code = run(run_options)
    return _only_run(root), code == ExitCode.INTERRUPTED


def _load(
    spec: TargetSpec, profile: Path, root: Path, options: CompareOptions
) -> tuple[Path | None, bool]:
    """The load run's directory, and whether the run was interrupted."""
    from gateprobe.load.launch import LoadOptions, run_load
    from gateprobe.load.profile import load_profile

    assert options.profile is not None
    load_options = LoadOptions(
        profile=options.profile,
        target=profile,
        overrides=dict(options.load_overrides),
        report_root=root,
        out=options.out,
    )
    if spec.is_mock:
        delays = load_profile(options.profile).with_overrides(options.load_overrides)
        with bundled_mock(spec, profile, ttft_ms=delays.mock_ttft_ms, itl_ms=delays.mock_itl_ms):
            code = run_load(load_options)
    else:
        code = run_load(load_options)
    return _only_run(root), code == ExitCode.INTERRUPTED
