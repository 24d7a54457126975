"""Limits on what a client may send, checked for every request whatever server runs the app.

The server's own protocol (http_limits.py) stops an oversized or slow request head before it is read;
this module is the ASGI-level rule for the same limits plus the body read time, so `uvicorn app:app`
without that protocol still answers 431 / 408 instead of serving the request. It
also decides which `Access-Control-Request-Headers` names a preflight may echo back: only names the
gateway knows, never whatever a client put there (a 1 MB list was echoed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from .errors import ApiError

# Browsers need Authorization listed explicitly: the `*` wildcard does not cover it (CONFORMANCE §5.3).
ALLOWED_REQUEST_HEADERS = (
    "authorization", "content-type", "x-api-key", "x-request-id", "openai-organization", "openai-project",
    "openai-beta", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access",
    "x-stainless-arch", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
    "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
    "x-stainless-async",
)
# SDKs add headers under these prefixes over time (x-stainless-helper-method, openai-…); echo such names.
_ECHOED_PREFIXES = ("x-stainless-", "openai-", "anthropic-")
_HEADER_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")
_MAX_ECHOED = 16


class ServerLimits(Protocol):
    max_header_bytes: int
    max_headers: int
    body_timeout: float


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_header_bytes: int = 65_536
    max_headers: int = 100
    body_timeout: float = 300.0


def request_limits(server: ServerLimits) -> RequestLimits:
    return RequestLimits(server.max_header_bytes, server.max_headers, server.body_timeout)


def head_error(headers: list[tuple[bytes, bytes]], limits: RequestLimits) -> ApiError | None:
    """A 431 when the request's headers are over the limits (None when they are fine)."""
    if len(headers) > limits.max_headers:
        return _too_large(f"The request has {len(headers)} headers; at most {limits.max_headers} are accepted "
                          "(server.max_headers).")
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > limits.max_header_bytes:
        return _too_large(f"The request headers are {size} bytes; at most {limits.max_header_bytes} are accepted "
                          "(server.max_header_bytes).")
    return None


def body_timeout_error(limits: RequestLimits) -> ApiError:
    return ApiError(408, f"The request body did not arrive within {limits.body_timeout:g} s "
                         "(server.body_timeout).", "invalid_request_error", None, "request_timeout")


def allowed_request_headers(requested: str) -> str:
    """The Access-Control-Allow-Headers value: the known names plus a few well-formed SDK ones asked for."""
    known = set(ALLOWED_REQUEST_HEADERS)
    extra: list[str] = []
    for raw in requested[:4096].split(","):
        name = raw.strip().lower()
        if (name and name not in known and name not in extra and _HEADER_NAME.match(name)
                and name.startswith(_ECHOED_PREFIXES)):
            extra.append(name)
            if len(extra) >= _MAX_ECHOED:
                break
    return ", ".join((*ALLOWED_REQUEST_HEADERS, *extra))


def _too_large(message: str) -> ApiError:
    return ApiError(431, message, "invalid_request_error", None, "request_headers_too_large")
