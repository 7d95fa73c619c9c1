"""The options of ``gateprobe load`` and their translation into ``LoadOptions``.

Kept beside the load package (``gateprobe/cli.py`` only registers the subcommand) so the
command's surface and its documentation stay in one place.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateprobe.errors import UsageError
from gateprobe.load.launch import LoadOptions, run_load
from gateprobe.load.profile import bundled_profiles, parse_duration
from gateprobe.load.slo import parse_slo_options

__all__ = ["add_load_options", "positive_int", "run_from_args"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        type=Path,
        metavar="FILE",
        help="target profile YAML (default: start the bundled mock with the profile's delays)",
    )
    parser.add_argument(
        "--profile",
        default="chat-steady",
        metavar="NAME|FILE",
        help=f"load profile: a file or a bundled name ({', '.join(bundled_profiles())}); "
        "default chat-steady",
    )
    load = parser.add_argument_group("load (override the profile)")
    load.add_argument(
        "--users",
        type=positive_int,
        metavar="N",
        help="closed loop: concurrent users; open loop: cap on requests in flight",
    )
    load.add_argument(
        "--spawn-rate", type=_positive_float, metavar="R", help="users started per second"
    )
    load.add_argument("--duration", metavar="T", help="measured window after the warmup (30s, 5m)")
    load.add_argument(
        "--warmup", metavar="T", help="excluded from the statistics (default: profile)"
    )
    load.add_argument(
        "--rate",
        type=_positive_float,
        metavar="RPS",
        help="open loop: requests per second (all processes together)",
    )
    load.add_argument(
        "--arrival", choices=("constant", "poisson"), help="open-loop arrival process"
    )
    load.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="threshold (repeatable): ttft_p99_ms=500, itl_p95_ms=50, error_ratio=0.01, "
        "min_output_tokens_per_s=100, goodput_fraction=0.95 with goodput_ttft_ms / "
        "goodput_tpot_ms / goodput_e2e_ms; a breach exits 3",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports") / "load",
        metavar="DIR",
        help="where <run-id>/ goes (default: ./reports/load)",
    )
    run.add_argument(
        "--processes",
        type=positive_int,
        metavar="N",
        help="Locust worker processes on this machine (one per core)",
    )
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument(
        "--mock-ttft-ms",
        type=float,
        metavar="MS",
        help="without --target: the bundled mock's TTFT (default: the profile's, 200)",
    )
    run.add_argument(
        "--mock-itl-ms",
        type=float,
        metavar="MS",
        help="without --target: the bundled mock's ITL (default: the profile's, 20)",
    )
    run.add_argument(
        "--mock-workers",
        type=positive_int,
        metavar="N",
        help="without --target: serve the bundled mock from N processes, in upstream mode "
        "(any key, no quota), so it is not the bottleneck (default 1, gateway mode)",
    )
    overhead = parser.add_argument_group(
        "overhead (what the gateway adds over its upstream; see docs/load.md)"
    )
    overhead.add_argument(
        "--overhead",
        action="store_true",
        help="run the profile straight at --upstream and through --target (the gateway) in "
        "alternating rounds; report gateway - direct per percentile in overhead.json",
    )
    overhead.add_argument(
        "--upstream",
        type=Path,
        metavar="FILE",
        help="with --overhead: target profile addressing the gateway's upstream directly "
        "(fixtures/targets/upstream-mock.yaml for gateprobe mock --mode upstream)",
    )
    overhead.add_argument(
        "--rounds",
        type=positive_int,
        metavar="N",
        help="with --overhead: pairs of runs (default 6); each side measures "
        "duration / N per round, after the warmup",
    )
    distributed = parser.add_argument_group("distributed (Locust master and workers)")
    distributed.add_argument("--master", action="store_true", help="run as the master")
    distributed.add_argument(
        "--expect-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="master: start when N workers are connected",
    )
    distributed.add_argument("--worker", action="store_true", help="run as a worker")
    distributed.add_argument(
        "--master-host", default="127.0.0.1", metavar="HOST", help="worker: the master's address"
    )
    distributed.add_argument(
        "--master-port",
        type=int,
        default=5557,
        metavar="PORT",
        help="master: port to bind; worker: port to connect (default 5557)",
    )
    parser.add_argument(
        "locust_args",
        nargs="*",
        metavar="-- LOCUST_ARGS",
        help="anything after -- goes to Locust as it is",
    )


def _overhead_usage(args: Any) -> None:
    if not args.overhead:
        for given, option in ((args.upstream, "--upstream"), (args.rounds, "--rounds")):
            if given is not None:
                raise UsageError(f"{option} applies to --overhead runs")
        return
    if args.target is None:
        raise UsageError("--overhead needs --target FILE: the gateway's target profile")
    if args.upstream is None:
        raise UsageError(
            "--overhead needs --upstream FILE: a target profile addressing the gateway's "
            "upstream directly (fixtures/targets/upstream-mock.yaml for the bundled mock)"
        )
    if args.master or args.worker:
        raise UsageError("--overhead runs its rounds on this machine; not with --master/--worker")
    if args.mock_workers is not None:
        raise UsageError("--mock-workers applies to the bundled mock; --overhead needs targets")


def run_from_args(args: Any) -> int:
    _overhead_usage(args)
    if args.master and args.worker:
        raise UsageError("--master and --worker exclude each other")
    if args.processes and (args.master or args.worker):
        raise UsageError("--processes starts its own workers; not with --master/--worker")
    for name in ("duration", "warmup"):
        if getattr(args, name) is not None:
            parse_duration(getattr(args, name), what=f"--{name}")
    overrides = {
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration": args.duration,
        "warmup": args.warmup,
        "rate": args.rate,
        "arrival": args.arrival,
        "slo": parse_slo_options(args.slo),
        "mock_ttft_ms": args.mock_ttft_ms,
        "mock_itl_ms": args.mock_itl_ms,
    }
    if args.target is not None and (args.mock_ttft_ms is not None or args.mock_itl_ms is not None):
        raise UsageError("--mock-ttft-ms and --mock-itl-ms apply to the bundled mock, not --target")
    if args.target is not None and args.mock_workers is not None:
        raise UsageError("--mock-workers applies to the bundled mock, not --target")
    options = LoadOptions(
        profile=args.profile,
        target=args.target,
        overrides={k: v for k, v in overrides.items() if v not in (None, {}, [])},
        report_root=args.report_dir,
        processes=args.processes,
        role="master" if args.master else "worker" if args.worker else "local",
        master_host=args.master_host,
        master_port=args.master_port,
        expect_workers=args.expect_workers,
        locust_args=list(args.locust_args),
        mock_workers=args.mock_workers or 1,
        plots=not args.no_plots,
    )
    if args.overhead:
        from gateprobe.load.overhead import OverheadOptions, run_overhead

        return run_overhead(
            OverheadOptions(
                load=options, gateway=args.target, upstream=args.upstream, rounds=args.rounds or 6
            )
        )
    return run_load(options)
