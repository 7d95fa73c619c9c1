"""Gateway errors and their envelopes on each protocol's routes.

``GatewayError`` is the one exception the request path raises for an answer that is not a
success. The route's protocol decides the envelope:

    OpenAI     {"error": {"message", "type", "param", "code"}}
    Anthropic  {"type": "error", "error": {"type", "message"}, "request_id"}
    Gemini     {"error": {"code", "message", "status"}}

Every message ends with ``(request id: <id>)``, as new-api and one-api do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANTHROPIC_TYPES", "GEMINI_STATUS", "GatewayError", "envelope"]

# Documented Anthropic error types by HTTP status.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# google.rpc status names by HTTP status.
GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# OpenAI-style `type` by status; `code` carries the specific reason.
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """An error answer: HTTP status, a stable machine code, a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        openai_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        # The OpenAI envelope's `type` when the status's usual one says too little (OpenAI's
        # own quota error is type and code `insufficient_quota`); the other envelopes keep
        # the documented type or status of the HTTP status.
        self.openai_type = openai_type


def envelope(protocol: str, error: GatewayError, request_id: str, status: int) -> dict[str, Any]:
    """The JSON body of ``error`` on a route of ``protocol`` (openai, anthropic, gemini)."""
    message = f"{error.message} (request id: {request_id})"
    if protocol == "anthropic":
        return {
            "type": "error",
            "error": {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id,
        }
    if protocol == "gemini":
        return {
            "error": {
                "code": status,
                "message": message,
                "status": GEMINI_STATUS.get(status, "INTERNAL" if status >= 500 else "UNKNOWN"),
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": error.code.upper(),
                        "domain": "gateprobe.mock",
                    }
                ],
            }
        }
    return {
        "error": {
            "message": message,
            "type": error.openai_type
            or OPENAI_TYPES.get(
                status, "upstream_error" if status >= 500 else "invalid_request_error"
            ),
            "param": error.param,
            "code": error.code,
        }
    }
