"""The ``gateprobe`` command line.

    gateprobe run       run the conformance suites against a target (default: the bundled mock)
    gateprobe validate  check scenario and target files against their schemas
    gateprobe mock      serve the bundled mock gateway
    gateprobe demo      start the mock, run the suites against it, print the summary
    gateprobe load      a Locust load run of a profile, with LLM metrics and an SLO gate

Exit codes: 0 success, 1 a check or call failed, 2 usage error (bad option, bad file).
`gateprobe load` adds 3: an SLO was breached.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateprobe import __version__
from gateprobe.errors import UsageError
from gateprobe.mock.config import ConfigError, MockConfig
from gateprobe.mock.defects import DEFECTS, describe_defects

__all__ = ["main"]

EXIT_USAGE = 2


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _add_mock_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mock gateway")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="YAML configuration (accounts, keys, models, channels, limits); fields "
        "it leaves out keep the embedded default, which needs no file",
    )
    group.add_argument(
        "--mode",
        choices=("gateway", "upstream"),
        help="gateway (default): keys, quota, visibility, rate limits; upstream: any "
        "key, no quota, every catalog model on every route of its kind and 404 for the "
        "others, as a provider (put it behind a real gateway)",
    )
    group.add_argument(
        "--defect",
        metavar="NAME",
        action="append",
        default=[],
        help="turn on a known gateway bug; repeatable; 'list' prints them all",
    )
    group.add_argument("--seed", type=int, help="seed of the deterministic output (default 0)")
    group.add_argument(
        "--ttft-ms",
        type=_positive_float,
        metavar="MS",
        help="delay before the first output token (default 0)",
    )
    group.add_argument(
        "--itl-ms",
        type=_positive_float,
        metavar="MS",
        help="delay between output tokens (default 0)",
    )
    group.add_argument(
        "--path-style",
        choices=("standard", "prefixed", "both"),
        help="standard: /v1/messages and /v1beta; prefixed: /claude/v1 and "
        "/gemini/{version}, as some hosted gateways do; both",
    )
    group.add_argument(
        "--insufficient-quota-status",
        type=int,
        metavar="CODE",
        help="status for insufficient balance or key quota (default 402; new-api "
        "and one-api use 403)",
    )
    group.add_argument(
        "--rpm",
        type=int,
        metavar="N",
        help="default requests per minute per key (default unlimited)",
    )


def _mock_config(args: argparse.Namespace) -> MockConfig:
    config = MockConfig.load(args.config) if args.config else MockConfig.default()
    changes: dict[str, object] = {}
    for option, field in (
        ("mode", "mode"),
        ("seed", "seed"),
        ("ttft_ms", "ttft_ms"),
        ("itl_ms", "itl_ms"),
        ("path_style", "path_style"),
        ("insufficient_quota_status", "insufficient_quota_status"),
        ("rpm", "rpm"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            changes[field] = value
    status = changes.get("insufficient_quota_status")
    if status is not None and not (400 <= int(str(status)) <= 599):
        raise UsageError("--insufficient-quota-status must be a 4xx or 5xx status")
    unknown = [d for d in args.defect if d not in DEFECTS]
    if unknown:
        raise UsageError(f"unknown defect {unknown[0]!r}; known defects:\n{describe_defects()}")
    if args.defect:
        changes["defects"] = config.defects | frozenset(args.defect)
    return config.replace(**changes)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument(
        "--strict", action="store_true", help="declared deviations count as failures"
    )
    group.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only scenarios matching the pytest keyword expression",
    )
    group.add_argument(
        "-n",
        dest="workers",
        metavar="N",
        help="run in N processes (pytest-xdist; 'auto' for one per core)",
    )
    group.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where reports/<run-id>/ goes (default: ./reports)",
    )
    group.add_argument(
        "--suites",
        type=Path,
        action="append",
        metavar="DIR",
        help="scenario directory (repeatable; default: the bundled suites)",
    )


def _run(args: argparse.Namespace, target: Path | None) -> int:
    from gateprobe.run import DEFAULT_SUITES, RunOptions, run

    options = RunOptions(
        target=target,
        strict=args.strict,
        keyword=args.keyword,
        workers=args.workers,
        report_root=args.report_dir,
        suites=[p.resolve() for p in args.suites or [DEFAULT_SUITES]],
        mock_config=_mock_config(args),
    )
    if target is not None and (args.defect or args.config):
        raise UsageError("--defect and --config apply to the bundled mock, not to --target")
    return run(options)


def _validate(files: list[Path]) -> int:
    from gateprobe._files import load_documents
    from gateprobe.scenario import load_scenarios, scenario_files
    from gateprobe.target import load_target

    checked = 0
    seen: dict[str, str] = {}  # scenario id -> where it was first defined
    for given in files:
        paths = scenario_files(given) if given.is_dir() else [given]
        if not given.exists():
            raise UsageError("file not found", file=str(given))
        for path in paths:
            docs = load_documents(path)
            is_target = (
                len(docs) == 1 and isinstance(docs[0].data, dict) and ("base_url" in docs[0].data)
            )
            is_load_profile = (
                len(docs) == 1
                and isinstance(docs[0].data, dict)
                and "requests" in docs[0].data
                and "steps" not in docs[0].data
            )
            if is_target:
                load_target(path, env=_PermissiveEnv())
            elif is_load_profile:
                from gateprobe.load.profile import load_profile

                load_profile(path)
            else:
                for scenario in load_scenarios(path, given if given.is_dir() else None):
                    first = seen.setdefault(scenario.id, f"{path}:{scenario.line}")
                    if first != f"{path}:{scenario.line}":
                        raise UsageError(
                            f"duplicate scenario id {scenario.id!r} (first at {first})",
                            file=str(path),
                            line=scenario.line,
                            field="id",
                        )
            checked += 1
            print(f"ok  {path}")
    print(f"{checked} file(s) valid")
    return 0


class _PermissiveEnv(dict[str, str]):
    """Validation checks the file, not this shell: every variable reads as set."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return self.get(key)

    def get(self, key: str, default: object = None) -> str:
        return "http://validated.invalid" if key.endswith("_URL") else "set"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateprobe",
        description="Conformance and load testing for LLM API gateways.",
    )
    parser.add_argument("--version", action="version", version=f"gateprobe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    mock = commands.add_parser(
        "mock",
        help="serve the bundled mock gateway",
        description="Serve the bundled mock gateway: OpenAI-compatible, Claude and Gemini routes, "
        "keys, quota, deterministic output, fault injection. One log line per request "
        "on stderr; Ctrl-C or SIGTERM stops it cleanly.",
        epilog="Per-request faults and timing go in the model name after '--' (for example "
        "gpt-4o-mini--error-503, gpt-4o-mini--ttft-200--itl-20) or in the "
        "x-gateprobe-directives header: error-<status>, fail-after-<n>, cut-after-<n>, "
        "hang, slow-first-<ms>, ttft-<ms>, itl-<ms>, chunks-<n>, fail-attempts-<n> (the first n "
        "upstream attempts fail with 503; the mock retries on the next channel, retry_times "
        "in the config, default 2), mark-<n> (the answer's text begins with the word "
        "gateprobe-mark-<n>: sent the way a fault will be, it shows the directives reach "
        "the upstream through a gateway).\n\n"
        f"Defects:\n{describe_defects()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    mock.add_argument(
        "--port", type=int, default=8787, help="port to bind (default 8787; 0 lets the OS choose)"
    )
    mock.add_argument("--quiet", action="store_true", help="no per-request log lines")
    _add_mock_options(mock)

    run = commands.add_parser(
        "run",
        help="run the conformance suites against a target",
        description="Run the YAML scenario suites against a gateway described by a target "
        "profile, or against the bundled mock when no target is given. Prints a "
        "summary per area and writes reports/<run-id>/ (junit.xml, summary.json, "
        "allure-results/). Exit codes: 0 passed, 1 some failed, 2 usage error.",
    )
    run.add_argument(
        "--target",
        metavar="FILE",
        type=Path,
        help="target profile YAML (default: start and provision the bundled mock)",
    )
    _add_run_options(run)
    _add_mock_options(run)

    validate = commands.add_parser(
        "validate",
        help="check scenario and target files against their schemas",
        description="Validate files: target profiles (any YAML with a base_url) against "
        "schemas/target.schema.json, load profiles (a YAML with requests) against "
        "schemas/load_profile.schema.json, scenario files against "
        "schemas/scenario.schema.json and the check registry. Directories are "
        "searched for *.yaml. Exit 0 when all are valid, 2 otherwise.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", type=Path)

    demo = commands.add_parser(
        "demo",
        help="start the mock, run the suites against it, print the summary",
        description="Start the bundled mock on a free loopback port, run the conformance suites "
        "against it, print the summary per area and where the reports are. With "
        "--defect the mock is a known-broken gateway and the suites say so.",
    )
    _add_run_options(demo)
    _add_mock_options(demo)
    _add_load_parser(commands)
    return parser


def _add_load_parser(commands: Any) -> None:
    from gateprobe.load.cli_options import add_load_options

    load = commands.add_parser(
        "load",
        help="a Locust load run of a profile, with LLM metrics and an SLO gate",
        description="Run a load profile (loadtests/profiles/*.yaml) against a target with Locust, "
        "headless. Without --target the bundled mock is started in its own process with "
        "the profile's delays. Writes reports/load/<run-id>/: summary.json, requests.jsonl, "
        "Locust's CSV and HTML, PNG plots. Exit codes: 0 passed, 1 some requests failed, "
        "2 usage error or Locust crashed, 3 an SLO was breached.",
    )
    add_load_options(load)


def _run_mock(args: argparse.Namespace) -> int:
    from gateprobe.mock.server import serve

    config = _mock_config(args)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("gateprobe.mock").setLevel(logging.WARNING if args.quiet else logging.INFO)

    def ready(url: str) -> None:
        print(f"gateprobe mock listening on {url}", flush=True)

    try:
        serve(config, args.host, args.port, ready=ready)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if "list" in getattr(args, "defect", []):
        print(describe_defects())
        return 0
    try:
        if args.command == "mock":
            return _run_mock(args)
        if args.command == "demo":
            return _run(args, None)
        if args.command == "run":
            return _run(args, args.target)
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "load":
            from gateprobe.load.cli_options import run_from_args

            return run_from_args(args)
    except (UsageError, ConfigError) as exc:
        print(f"gateprobe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
