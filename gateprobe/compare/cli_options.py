"""The options of ``gateprobe compare`` and their translation into ``CompareOptions``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateprobe.compare.command import CompareOptions, compare
from gateprobe.errors import UsageError
from gateprobe.exit_codes import ExitCode, epilog
from gateprobe.load.cli_options import positive_int

__all__ = ["add_compare_parser", "run_from_args"]

_EXIT_CODES = {
    ExitCode.OK: "every scenario has the same verdict on every target",
    ExitCode.FAILED: "some scenario's verdict differs between targets (as diff(1) exits 1)",
    ExitCode.USAGE: "usage or configuration error: a bad --target or option, a directory "
    "that holds no run",
    ExitCode.INTERNAL: "internal error of gateprobe (--debug shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted; compare.json covers the targets that ran",
}


def add_compare_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "compare",
        help="several targets side by side: a scenario x target matrix, load figures",
        description="Compare gateways: run the suites (and, with --profile, a load run) "
        "against each --target in turn, or read earlier run directories (reports/<run-id>/, "
        "reports/load/<run-id>/). Writes <report-dir>/<compare-id>/compare.json and "
        "compare.html: verdict and reason per scenario and target, the rows that differ "
        "first, counts per area per target, and load figures side by side (TTFT, ITL, TPOT, "
        "e2e percentiles, tokens/s, error classes). The terminal shows the rows that differ.",
        epilog="A --target is a profile file, or the bundled mock: 'mock', or "
        "'mock:OPTION=VALUE,...' with defect=NAME (repeatable; a known gateway bug), "
        "insufficient-quota-status=CODE and path-style=prefixed (a dialect: the mock does it "
        "and its profile declares it), seed=N, label=NAME (the column's name).\n\n"
        + epilog(_EXIT_CODES),
    )
    parser.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="earlier run directories to compare (conformance or load; a conformance and a "
        "load run of the same target share a column)",
    )
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="FILE|mock[:OPTIONS]",
        help="a target to run now (repeat: two or more)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="also a load run of this profile against each target (gateprobe load's profiles)",
    )
    parser.add_argument(
        "--load-only", action="store_true", help="with --profile: the load runs only"
    )
    parser.add_argument(
        "--duration", metavar="T", help="with --profile: the measured window of each load run"
    )
    parser.add_argument("--warmup", metavar="T", help="with --profile: the warmup of each load run")
    parser.add_argument(
        "--users",
        type=positive_int,
        metavar="N",
        help="with --profile: concurrent users of each load run",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports") / "compare",
        metavar="DIR",
        help="where <compare-id>/ goes (default: ./reports/compare)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="declared deviations count as failures"
    )
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only matching scenarios")
    parser.add_argument("-m", dest="markexpr", metavar="EXPR", help="only scenarios so marked")
    parser.add_argument("-n", dest="workers", metavar="N", help="pytest-xdist processes per run")
    parser.add_argument(
        "--suites", type=Path, action="append", metavar="DIR", help="scenario directory"
    )
    return parser


def run_from_args(args: argparse.Namespace) -> ExitCode:
    from gateprobe.load.profile import parse_duration

    if args.dirs and (args.profile or args.load_only):
        raise UsageError("--profile and --load-only run targets: they take --target, not RUN_DIR")
    if args.load_only and not args.profile:
        raise UsageError("--load-only needs --profile")
    for name in ("duration", "warmup"):
        value = getattr(args, name)
        if value is not None:
            if not args.profile:
                raise UsageError(f"--{name} applies to the load runs: it needs --profile")
            parse_duration(value, what=f"--{name}")
    overrides = {
        k: v
        for k, v in (("duration", args.duration), ("warmup", args.warmup), ("users", args.users))
        if v is not None
    }
    options = CompareOptions(
        targets=list(args.targets),
        dirs=list(args.dirs),
        profile=args.profile,
        load_overrides=overrides,
        report_root=args.report_dir,
        strict=args.strict,
        keyword=args.keyword,
        markexpr=args.markexpr,
        workers=args.workers,
        suites=args.suites,
        conformance=not args.load_only,
    )
    return compare(options)
