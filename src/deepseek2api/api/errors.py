"""Gateway errors as HTTP answers: one place decides status, type, code and Retry-After.

Clients map the *status* to an exception class and decide on retries from it (CONFORMANCE.md §1.4),
so the status must say what happened: 4xx for what the caller can fix, 429 for "wait", 502 for a
broken upstream, 503 for "no account can serve this now".
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field

from ..deepseek.errors import ErrorKind
from ..deepseek.events import UpstreamError

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 120  # openai-python refuses to retry at all above 120 s


@dataclass(slots=True)
class ApiError(Exception):
    """An error answer in the OpenAI envelope."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body_bytes(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False, separators=(",", ":")).encode()

    def sse_bytes(self) -> bytes:
        """The error as the SSE event that ends a stream which already started (no [DONE] after it)."""
        return b"data: " + self.body_bytes() + b"\n\n"

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            seconds = min(MAX_RETRY_AFTER, max(1, math.ceil(self.retry_after)))
            headers["retry-after"] = str(seconds)
            headers["retry-after-ms"] = str(seconds * 1000)
            if self.retry_after >= MAX_RETRY_AFTER:
                # The SDKs would block for the capped wait and most likely fail again: let them fail now.
                headers.setdefault("x-should-retry", "false")
        return headers


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


def unauthorized(message: str = "Invalid API key. Send a configured key as 'Authorization: Bearer <key>'.") -> ApiError:
    return ApiError(401, message, "invalid_request_error", None, "invalid_api_key")


def not_found(message: str, code: str = "not_found", param: str | None = None) -> ApiError:
    return ApiError(404, message, "invalid_request_error", param, code)


# What the user sees when every account that was tried failed for this reason.
_UPSTREAM_ANSWERS: dict[ErrorKind, tuple[int, str, str, str]] = {
    ErrorKind.TOKEN_INVALID: (503, "server_error", "upstream_auth_failed",
                              "DeepSeek rejected the account's token even after a fresh login"),
    ErrorKind.BAD_CREDENTIALS: (503, "server_error", "upstream_auth_failed",
                                "DeepSeek refused the account's login (check the password in config)"),
    ErrorKind.ACCOUNT_MUTED: (503, "server_error", "upstream_account_muted",
                              "DeepSeek muted the account; a prompt that draws a mute is not sent on to another "
                              "account, because the prompt itself may be the cause"),
    ErrorKind.ACCOUNT_BANNED: (503, "server_error", "upstream_account_banned",
                               "DeepSeek banned the account; a prompt that draws a ban is not sent on to another "
                               "account, because the prompt itself may be the cause"),
    ErrorKind.RATE_LIMITED: (503, "server_error", "upstream_rate_limited", "DeepSeek is rate-limiting the accounts"),
    ErrorKind.BUSY: (503, "server_error", "upstream_busy", "DeepSeek is busy"),
    ErrorKind.POW_REJECTED: (502, "server_error", "upstream_pow_rejected", "DeepSeek rejected the proof-of-work answer"),
    ErrorKind.WAF_BLOCKED: (502, "server_error", "upstream_blocked",
                            "DeepSeek's firewall answered with a challenge page instead of the API"),
    ErrorKind.CLIENT_TOO_OLD: (502, "server_error", "upstream_client_outdated",
                               "DeepSeek rejected the client version; update `upstream.headers` in the config"),
    ErrorKind.INPUT_TOO_LONG: (400, "invalid_request_error", "context_length_exceeded",
                               "the conversation is longer than DeepSeek's web chat accepts"),
    ErrorKind.CONTENT_FILTER: (400, "invalid_request_error", "content_filter",
                               "DeepSeek's content filter refused the request"),
    ErrorKind.NETWORK: (502, "server_error", "upstream_unreachable", "DeepSeek could not be reached"),
    ErrorKind.STREAM_CUT: (502, "server_error", "upstream_stream_cut",
                           "DeepSeek's stream ended before the reply finished"),
    ErrorKind.PROTOCOL: (502, "server_error", "upstream_protocol_error",
                         "DeepSeek answered in a way the gateway does not understand"),
}


# Failures a retry seconds later cannot fix (the operator must act, or the wait is hours). The SDKs retry
# every 5xx twice by default, so these say `x-should-retry: false` (CONFORMANCE.md §0 rule 6, §5.5).
_PERMANENT = frozenset({ErrorKind.TOKEN_INVALID, ErrorKind.BAD_CREDENTIALS, ErrorKind.ACCOUNT_MUTED,
                        ErrorKind.ACCOUNT_BANNED, ErrorKind.CLIENT_TOO_OLD})
NO_RETRY = {"x-should-retry": "false"}


def from_upstream(error: UpstreamError, *, attempts: int = 1, passthrough: bool = False) -> ApiError:
    """The HTTP answer for a turn that failed upstream before anything was sent."""
    if passthrough and error.kind in (ErrorKind.TOKEN_INVALID, ErrorKind.BAD_CREDENTIALS):
        return ApiError(401, "DeepSeek rejected the token sent as the API key", "invalid_request_error", None,
                        "invalid_api_key")
    status, type_, code, text = _UPSTREAM_ANSWERS.get(error.kind, _UPSTREAM_ANSWERS[ErrorKind.PROTOCOL])
    tried = f" (tried {attempts} account{'s' if attempts != 1 else ''})" if attempts > 1 else ""
    param = "messages" if error.kind is ErrorKind.INPUT_TOO_LONG else None
    retry_after = None
    if status == 503:
        retry_after = error.retry_after or 5.0
    headers = dict(NO_RETRY) if error.kind in _PERMANENT else {}
    return ApiError(status, f"{text}{tried}: {client_detail(error)}", type_, param, code, retry_after, headers)


_OWN_NETWORK_WORDING = ("no data from upstream for", "no response from upstream within", ": timed out")


def client_detail(error: UpstreamError) -> str:
    """What a client may read about an upstream failure. Transport errors name hosts, ports and the
    proxy an account goes through: those stay in the gateway's log (issue 17 item 7)."""
    if error.kind is not ErrorKind.NETWORK:
        return error.message
    log.warning("upstream unreachable: %s", error.message)
    text = error.message.split(" (via proxy ", 1)[0]
    if any(own in text for own in _OWN_NETWORK_WORDING):  # worded by the gateway: no host in it
        return text
    where = text.split(": ", 1)[0] if ": " in text else "upstream call"
    return f"{where}: connection failed (details in the gateway log)"
