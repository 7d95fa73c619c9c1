"""Reachability preflight: is anything listening at the target's base URL?

A run against a target that is not there (a typo in the URL, a gateway that is down) should
not produce one transport traceback per scenario: every scenario fails at once with the same
one-line reason, and the run says it once. One TCP connection is opened, within the target's
connect timeout; nothing is sent. Behind an HTTP proxy (from the environment) the target is
not probed directly, since only the proxy knows how to reach it.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlsplit

from gateprobe.target import Target

__all__ = ["unreachable"]


def _describe(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError):
        return "no answer within the connect timeout"
    return exc.strerror or str(exc) or type(exc).__name__


def _proxied(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    return (scheme in proxies or "all" in proxies) and not urllib.request.proxy_bypass(host)


def unreachable(target: Target) -> str | None:
    """Why nothing can be sent to ``target`` (one line, no secret), or None if it answers."""
    parts = urlsplit(target.base_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"target {target.name!r} has an invalid port in {target.base_url}"
    if _proxied(parts.scheme, host):
        return None
    try:
        with socket.create_connection((host, port), timeout=target.limits.connect):
            pass
    except OSError as exc:
        where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"  # no userinfo
        return (
            f"target {target.name!r} is unreachable at {where} ({_describe(exc)}); "
            "no request was sent"
        )
    return None
