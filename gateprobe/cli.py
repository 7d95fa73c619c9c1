"""The ``gateprobe`` command line.

    gateprobe run       run the conformance suites against a target (default: the bundled mock)
    gateprobe validate  check scenario and target files against their schemas
    gateprobe mock      serve the bundled mock gateway
    gateprobe demo      start the mock, run the suites against it, print the summary
    gateprobe load      a Locust load run of a profile, with LLM metrics and an SLO gate
    gateprobe compare   several targets side by side: scenario x target matrix, load figures

Exit codes (gateprobe/exit_codes.py, the same for every command): 0 passed, 1 some scenario
failed, 2 usage or configuration error, 3 an SLO was breached (load), 4 internal error,
130 interrupted. An exception that is not a GateprobeError is an internal error: one line on
stderr, the traceback with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from gateprobe import __version__
from gateprobe._signals import sigterm_interrupts
from gateprobe.errors import (
    DEBUG_ENV,
    GateprobeError,
    UsageError,
    debugging,
    internal_error,
    traceback_of,
)
from gateprobe.exit_codes import MEANINGS, ExitCode, epilog
from gateprobe.mock.config import ConfigError, MockConfig
from gateprobe.mock.defects import DEFECTS, describe_defects

__all__ = ["GateprobeParser", "StoreOnce", "main"]

# Where an action keeps the options given so far, on the namespace being filled (each
# subcommand's parse has a namespace of its own).
_GIVEN = "_gateprobe_given"


class StoreOnce(argparse.Action):
    """argparse's ``store``, except that a second occurrence of the option is a usage error:
    ``--target a.yaml --target b.yaml`` must not quietly run against b.yaml. Options meant to
    repeat say ``action="append"``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        if kwargs.get("nargs") == 0:
            raise ValueError("nargs for store actions must be != 0")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if self.option_strings:
            given: set[str] = namespace.__dict__.setdefault(_GIVEN, set())
            if self.dest in given:
                parser.error(
                    f"{'/'.join(self.option_strings)} given twice (it takes one value; "
                    f"first {getattr(namespace, self.dest)!s}, then {values!s})"
                )
            given.add(self.dest)
        setattr(namespace, self.dest, values)


class _HelpFormatter(argparse.HelpFormatter):
    """Reflows descriptions and epilogs line by line, so an epilog's list keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            # list items ("  0    passed") wrap under their text, not under their number
            hanging = " " * 7 if line.startswith("  ") else ""
            lines.append(
                textwrap.fill(
                    line,
                    width,
                    initial_indent=indent,
                    subsequent_indent=indent + hanging,
                    break_on_hyphens=False,
                )
                if line
                else ""
            )
        return "\n".join(lines)


class GateprobeParser(argparse.ArgumentParser):
    """Every single-valued option of every command is a StoreOnce (subcommands' parsers are of
    this class too), and a usage error exits with ExitCode.USAGE."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


_RUN_EXIT_CODES = {
    ExitCode.OK: "every scenario passed, was skipped or is a declared deviation",
    ExitCode.FAILED: "some scenario failed",
    ExitCode.USAGE: "usage or configuration error: a bad option or file (named with its "
    "line and field), or no scenario selected",
    ExitCode.INTERNAL: "internal error of gateprobe, also when it broke running a scenario "
    "(that scenario fails as 'internal' and the run goes on); --debug shows the traceback",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); the reports are partial",
}
_VALIDATE_EXIT_CODES = {
    ExitCode.OK: "every file is valid",
    ExitCode.USAGE: "a file is invalid (named with its line and field), or none was found",
    ExitCode.INTERNAL: "internal error of gateprobe (--debug shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
_MOCK_EXIT_CODES = {
    ExitCode.OK: "stopped cleanly (Ctrl-C or SIGTERM is how a mock stops)",
    ExitCode.USAGE: "usage or configuration error: a bad option or --config file, a port in use",
    ExitCode.INTERNAL: "internal error of gateprobe (--debug shows the traceback)",
}
_LOAD_EXIT_CODES = {
    ExitCode.OK: "passed",
    ExitCode.FAILED: "some requests failed (Locust's meaning; with an error_ratio SLO, that "
    "SLO judges the errors instead)",
    ExitCode.USAGE: "usage or configuration error, or Locust ended without a summary",
    ExitCode.SLO_BREACHED: "an SLO was breached",
    ExitCode.INTERNAL: "internal error of gateprobe (--debug shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def _add_debug(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Accepted before and after the command; a command's parser leaves it unset unless given
    # there (SUPPRESS), so it does not undo a `gateprobe --debug run`.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="on an internal error, print the traceback (also GATEPROBE_DEBUG=1); in "
        "`gateprobe run`, a scenario gateprobe broke running shows it too",
    )


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


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}: {text!r}")
    return value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument(
        "--strict", action="store_true", help="declared deviations count as failures"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each failed scenario's whole text (its YAML, resolved values, expected "
        "and actual, the masked exchange, a curl command); by default one line per failed "
        "scenario, grouped by cause, after the table (junit.xml has the whole text always)",
    )
    select = parser.add_argument_group(
        "selection and stopping (pytest's options, passed through)",
        "Nothing selected is a usage error (exit 2). What --lf reruns comes from the reports "
        "themselves: the summary.json of the latest run under --report-dir (./reports by "
        "default); nothing is kept anywhere else.",
    )
    select.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only scenarios matching the pytest keyword expression (ids, files, areas: "
        "-k 'streaming and not cut')",
    )
    select.add_argument(
        "-m",
        dest="markexpr",
        metavar="EXPR",
        help="only scenarios whose marks match the expression (a scenario's marks: -m smoke)",
    )
    select.add_argument(
        "--lf",
        "--last-failed",
        dest="last_failed",
        action="store_true",
        help="only the scenarios that failed in the latest earlier run under --report-dir "
        "(every scenario when none did)",
    )
    stop = select.add_mutually_exclusive_group()
    stop.add_argument(
        "-x",
        "--exitfirst",
        dest="maxfail",
        action="store_const",
        const=1,
        help="stop at the first failed scenario (the table shows what ran)",
    )
    stop.add_argument(
        "--maxfail",
        dest="maxfail",
        type=_positive_int,
        metavar="N",
        help="stop after N failed scenarios",
    )
    group.add_argument(
        "--hang-after",
        type=_non_negative_int,
        metavar="N",
        help="after N consecutive timeouts the target counts as stopped and the remaining "
        "scenarios fail unsent (default 3; 0: never)",
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


def _run(args: argparse.Namespace, target: Path | None) -> ExitCode:
    from gateprobe.run import DEFAULT_SUITES, RunOptions, run

    options = RunOptions(
        target=target,
        strict=args.strict,
        keyword=args.keyword,
        markexpr=args.markexpr,
        maxfail=args.maxfail,
        last_failed=args.last_failed,
        hang_after=args.hang_after,
        workers=args.workers,
        report_root=args.report_dir,
        suites=[p.resolve() for p in args.suites or [DEFAULT_SUITES]],
        mock_config=_mock_config(args),
        # --debug's traceback of a scenario gateprobe broke is in that failure's whole text
        verbose=args.verbose or debugging(),
    )
    if target is not None and (args.defect or args.config):
        raise UsageError("--defect and --config apply to the bundled mock, not to --target")
    return run(options)


def _validate(files: list[Path]) -> ExitCode:
    from gateprobe._files import load_documents
    from gateprobe.scenario import load_scenarios, scenario_files
    from gateprobe.target import load_target

    checked = 0
    seen: dict[str, str] = {}  # scenario id -> where it was first defined
    for given in files:
        paths = scenario_files(given) if given.is_dir() else [given]
        if not given.exists():
            raise UsageError("file not found", file=str(given))
        if not paths:  # "0 file(s) valid" would read as a pass
            raise UsageError("no *.yaml or *.yml file in this directory", file=str(given))
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
    return ExitCode.OK


class _PermissiveEnv(dict[str, str]):
    """Validation checks the file, not this shell: every variable reads as set."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return self.get(key)

    def get(self, key: str, default: object = None) -> str:
        return "http://validated.invalid" if key.endswith("_URL") else "set"


def _build_parser() -> argparse.ArgumentParser:
    parser = GateprobeParser(
        prog="gateprobe",
        description="Conformance and load testing for LLM API gateways.",
        epilog=epilog(MEANINGS) + "\n(the same for every command; each command's --help says "
        "what they mean for it)",
    )
    parser.add_argument("--version", action="version", version=f"gateprobe {__version__}")
    _add_debug(parser, top=True)
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
        f"Defects:\n{describe_defects()}\n\n{epilog(_MOCK_EXIT_CODES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    mock.add_argument(
        "--port", type=int, default=8787, help="port to bind (default 8787; 0 lets the OS choose)"
    )
    mock.add_argument("--quiet", action="store_true", help="no per-request log lines")
    mock.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="upstream mode: serve from N processes sharing the listening socket, so the "
        "mock is not the bottleneck of a load run (default 1; gateway mode keeps its state "
        "per process, so it takes 1 only)",
    )
    _add_mock_options(mock)
    _add_debug(mock)

    run = commands.add_parser(
        "run",
        help="run the conformance suites against a target",
        description="Run the YAML scenario suites against a gateway described by a target "
        "profile, or against the bundled mock when no target is given. Prints a "
        "summary per area and writes reports/<run-id>/ (junit.xml, summary.json, "
        "allure-results/).",
        epilog=epilog(_RUN_EXIT_CODES),
    )
    run.add_argument(
        "--target",
        metavar="FILE",
        type=Path,
        help="target profile YAML (default: start and provision the bundled mock)",
    )
    _add_run_options(run)
    _add_mock_options(run)
    _add_debug(run)

    validate = commands.add_parser(
        "validate",
        help="check scenario and target files against their schemas",
        description="Validate files: target profiles (any YAML with a base_url) against "
        "schemas/target.schema.json, load profiles (a YAML with requests) against "
        "schemas/load_profile.schema.json, scenario files against "
        "schemas/scenario.schema.json and the check registry (each check's name and the "
        "value it takes). Directories are searched for *.yaml.",
        epilog=epilog(_VALIDATE_EXIT_CODES),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", type=Path)
    _add_debug(validate)

    demo = commands.add_parser(
        "demo",
        help="start the mock, run the suites against it, print the summary",
        description="Start the bundled mock on a free loopback port, run the conformance suites "
        "against it, print the summary per area and where the reports are. With "
        "--defect the mock is a known-broken gateway and the suites say so.",
        epilog=epilog(_RUN_EXIT_CODES),
    )
    _add_run_options(demo)
    _add_mock_options(demo)
    _add_debug(demo)
    _add_load_parser(commands)
    _add_compare_parser(commands)
    return parser


def _add_compare_parser(commands: Any) -> None:
    from gateprobe.compare.cli_options import add_compare_parser

    _add_debug(add_compare_parser(commands))


def _add_load_parser(commands: Any) -> None:
    from gateprobe.load.cli_options import add_load_options

    load = commands.add_parser(
        "load",
        help="a Locust load run of a profile, with LLM metrics and an SLO gate",
        description="Run a load profile (loadtests/profiles/*.yaml) against a target with Locust, "
        "headless. Without --target the bundled mock is started in its own process with "
        "the profile's delays. Writes reports/load/<run-id>/: summary.json, requests.jsonl, "
        "Locust's CSV and HTML, PNG plots.",
        epilog=epilog(_LOAD_EXIT_CODES),
    )
    add_load_options(load)
    _add_debug(load)


def _run_mock(args: argparse.Namespace) -> ExitCode:
    from gateprobe.mock.server import serve

    config = _mock_config(args)
    if args.workers > 1 and config.mode != "upstream":
        raise UsageError(
            f"--workers {args.workers} needs --mode upstream: gateway mode keeps keys, quota "
            "and rate limits in the process, so each worker would have its own"
        )
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("gateprobe.mock").setLevel(logging.WARNING if args.quiet else logging.INFO)

    def ready(url: str) -> None:
        print(f"gateprobe mock listening on {url}", flush=True)

    try:
        serve(config, args.host, args.port, ready=ready, workers=args.workers)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return ExitCode.OK


def _exit_code(code: int) -> ExitCode:
    """A load run's exit code (Locust's, or ours) as one of ours."""
    try:
        return ExitCode(code)
    except ValueError:  # killed by a signal, say: nothing the run could report on
        print(f"gateprobe: internal error: the load run ended with status {code}", file=sys.stderr)
        return ExitCode.INTERNAL


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ExitCode:
    if args.command == "mock":
        return _run_mock(args)
    if args.command in ("demo", "run"):
        # from the first moment (the mock's start, provisioning), not only once pytest's
        # session has installed its own handler
        with sigterm_interrupts():
            return _run(args, args.target if args.command == "run" else None)
    if args.command == "validate":
        return _validate(args.files)
    if args.command == "load":
        from gateprobe.load.cli_options import run_from_args

        return _exit_code(run_from_args(args))
    if args.command == "compare":
        from gateprobe.compare.cli_options import run_from_args as compare_from_args

        with sigterm_interrupts():
            return compare_from_args(args)
    parser.error(f"unknown command {args.command!r}")


@contextmanager
def _debug_env(on: bool) -> Iterator[None]:
    """GATEPROBE_DEBUG=1 while the command runs, for the code that runs in pytest."""
    before = os.environ.get(DEBUG_ENV)
    if on:
        os.environ[DEBUG_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = before


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    if "list" in getattr(args, "defect", []):
        print(describe_defects())
        return ExitCode.OK
    with _debug_env(args.debug):
        try:
            return _command(parser, args)
        except (GateprobeError, ConfigError) as exc:
            print(f"gateprobe: error: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        except KeyboardInterrupt:
            return ExitCode.INTERRUPTED
        except Exception as exc:
            if debugging():
                print(traceback_of(exc), file=sys.stderr)
            print(f"gateprobe: internal error: {internal_error(exc)}", file=sys.stderr)
            return ExitCode.INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
