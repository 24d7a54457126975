"""Anthropic's error dialect: the gateway's error values in Anthropic's envelope, types and statuses.

Registered for the Anthropic routes in server.py's dialect table (api/dialect.py); the Anthropic SDKs
read the request id from `request-id`, so every answer on these routes carries it beside `x-request-id`.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApiError

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    500: "api_error", 503: "overloaded_error", 529: "overloaded_error"}
TOO_LONG_WORDING = "prompt is too long"  # Claude Code matches these words and compacts the conversation


def anthropic_status(error: ApiError) -> int:
    """503 ("no account can serve now", upstream busy) is Anthropic's 529: the SDKs and Claude Code
    treat that as "overloaded, try again"."""
    return 529 if error.status == 503 else error.status


def anthropic_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_message(error: ApiError) -> str:
    if error.code == "context_length_exceeded" and TOO_LONG_WORDING not in error.message:
        return f"{TOO_LONG_WORDING}: {error.message}"
    return error.message


def anthropic_body(error: ApiError, request_id: str | None = None) -> dict[str, Any]:
    """`{"type": "error", "error": {"type", "message"}, "request_id"}`."""
    return {"type": "error",
            "error": {"type": anthropic_type(anthropic_status(error)), "message": anthropic_message(error)},
            "request_id": request_id}


def anthropic_sse_bytes(error: ApiError, request_id: str | None = None) -> bytes:
    """The `event: error` that ends an Anthropic stream which already started."""
    data = json.dumps(anthropic_body(error, request_id), ensure_ascii=False, separators=(",", ":"))
    return b"event: error\ndata: " + data.encode() + b"\n\n"


class AnthropicDialect:
    """api/dialect.py's `ErrorDialect` for Anthropic clients."""

    def status(self, error: ApiError) -> int:
        return anthropic_status(error)

    def body(self, error: ApiError, request_id: str | None) -> bytes:
        return json.dumps(anthropic_body(error, request_id), ensure_ascii=False, separators=(",", ":")).encode()

    def stream_event(self, error: ApiError, request_id: str | None) -> bytes:
        return anthropic_sse_bytes(error, request_id)

    def id_headers(self, request_id: str) -> list[tuple[bytes, bytes]]:
        rid = request_id.encode()
        return [(b"x-request-id", rid), (b"request-id", rid)]


ANTHROPIC = AnthropicDialect()

__all__ = ["ANTHROPIC", "TOO_LONG_WORDING", "AnthropicDialect", "anthropic_body", "anthropic_message",
           "anthropic_sse_bytes", "anthropic_status", "anthropic_type"]
