"""Which credential a request presents, by the header rules of its route's protocol.

    OpenAI routes     Authorization: Bearer <key> (the scheme is case-insensitive);
                      x-api-key is honoured on /v1/models only, as new-api does
    Claude routes     x-api-key wins over Authorization: Bearer
    Gemini routes     x-goog-api-key wins over ?key=, which wins over Authorization: Bearer

A credential that is present but unusable (``Basic …``, no scheme, an empty value) is
malformed; one that is absent is missing. Both end as 401 in the route's envelope.
"""

from __future__ import annotations

from typing import NamedTuple

from gateprobe.mock.asgi import Request
from gateprobe.mock.errors import GatewayError

__all__ = ["Credential", "present_credential"]


class Credential(NamedTuple):
    secret: str
    source: str  # the header or parameter it came from


def _bearer(value: str, lowercase: bool = True) -> str:
    scheme, sep, token = value.partition(" ")
    if not lowercase and scheme != "Bearer":
        scheme = ""  # one-api trims only the exact prefix "Bearer "
    if not sep or scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise GatewayError(
            401,
            "malformed_api_key",
            "Malformed Authorization header: expected 'Authorization: Bearer <key>'",
        )
    return token.strip()


def present_credential(
    request: Request,
    protocol: str,
    *,
    honour_x_api_key: bool,
    models_route: bool = False,
    lowercase_bearer: bool = True,
) -> Credential:
    headers = request.headers
    if protocol == "anthropic" or (models_route and protocol == "openai"):
        value = headers.get("x-api-key", "").strip()
        if value and honour_x_api_key:
            return Credential(value, "x-api-key")
    if protocol == "gemini":
        value = headers.get("x-goog-api-key", "").strip()
        if value:
            return Credential(value, "x-goog-api-key")
        value = request.query.get("key", "").strip()
        if value:
            return Credential(value, "?key=")
    authorization = headers.get("authorization")
    if authorization is not None:
        if not authorization.strip():
            raise GatewayError(401, "missing_api_key", "No API key provided")
        return Credential(_bearer(authorization, lowercase_bearer), "authorization")
    raise GatewayError(401, "missing_api_key", "No API key provided")
