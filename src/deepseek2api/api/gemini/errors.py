"""Google's error dialect: the gateway's `ApiError` values in the envelope the Gemini SDKs read.

`{"error": {"code": 429, "message": "…", "status": "RESOURCE_EXHAUSTED", "details": [...]}}`: the
status name follows the HTTP status (google.rpc.Code), `details` carries an `ErrorInfo` with the
gateway's own error code as `reason`, and a `RetryInfo` with `retryDelay` when the client should
wait (the Gemini CLI reads that one before it retries a 429).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from ..dialect import RenderedDialect
from ..errors import MAX_RETRY_AFTER, ApiError

_STATUS_NAMES: Final = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                        404: "NOT_FOUND", 405: "UNIMPLEMENTED", 409: "ABORTED", 413: "INVALID_ARGUMENT",
                        422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                        500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                        504: "DEADLINE_EXCEEDED"}
PREFIXES: Final = ("/v1beta/", "/gemini/")


def is_gemini_path(path: str) -> bool:
    """`/v1beta/…`, and `/v1/models/{model}:{method}` (the SDKs' `v1` API version)."""
    return path.startswith(PREFIXES) or (path.startswith("/v1/models/") and ":" in path)


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def gemini_body(error: ApiError) -> dict[str, Any]:
    details: list[dict[str, Any]] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                      "reason": (error.code or "error").upper(), "domain": "deepseek2api"}]
    if error.retry_after is not None:
        seconds = min(MAX_RETRY_AFTER, max(1, math.ceil(error.retry_after)))
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"})
    return {"error": {"code": error.status, "message": error.message, "status": status_name(error.status),
                      "details": details}}


def render(error: ApiError, request_id: str | None) -> tuple[int, bytes]:
    """Status and body of `error` on a Gemini path (a RenderedDialect in server.py's table)."""
    return error.status, json.dumps(gemini_body(error), ensure_ascii=False, separators=(",", ":")).encode()


def stream_event(error: ApiError, request_id: str | None) -> bytes:
    """The last event of a `?alt=sse` stream (the SDKs read an `error` chunk as the failure). A streamed
    JSON array gets none from the middleware: its content type is not a stream's (api/middleware.py)."""
    return b"data: " + render(error, request_id)[1] + b"\n\n"


GEMINI: Final = RenderedDialect(render, stream_event)  # registered for is_gemini_path in server.py's table
