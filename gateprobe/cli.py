"""The ``gateprobe`` command line.

    gateprobe mock   serve the bundled mock gateway
    gateprobe demo   start the mock, call every protocol through it, print what happened

Exit codes: 0 success, 1 a check or call failed, 2 usage error (bad option, bad file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gateprobe import __version__
from gateprobe.mock.config import ConfigError, MockConfig
from gateprobe.mock.defects import DEFECTS, describe_defects

__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2, no traceback."""


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
        "key, no quota, every model name served (put it behind a real gateway)",
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
        "hang, slow-first-<ms>, ttft-<ms>, itl-<ms>, chunks-<n>.\n\n"
        f"Defects:\n{describe_defects()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    mock.add_argument(
        "--port", type=int, default=8787, help="port to bind (default 8787; 0 lets the OS choose)"
    )
    mock.add_argument("--quiet", action="store_true", help="no per-request log lines")
    _add_mock_options(mock)

    demo = commands.add_parser(
        "demo",
        help="start the mock and call every protocol through it",
        description="Start the bundled mock on a free loopback port, make real calls of each "
        "protocol (OpenAI chat, Responses, embeddings, images, rerank, Claude "
        "Messages, Gemini), stream some, provoke a few errors, and print what happened.",
    )
    _add_mock_options(demo)
    return parser


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
            from gateprobe.demo import run_demo

            return run_demo(_mock_config(args))
    except (UsageError, ConfigError) as exc:
        print(f"gateprobe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
