"""Gateway errors as values: what went wrong, as an `ApiError` with its status, type, param and code.

Turn failures (`TurnFailed` with an upstream kind), pool exhaustion and refused attachments all become
an `ApiError` here (`from_failure`); routes and serving code raise or hand over these values and never
build envelopes of their own. How an `ApiError` is written on the wire is its surface's error dialect
(api/dialect.py, the one rendering every error answer goes through).
Clients map the *status* to an exception class and decide on retries from it (docs/clients.md),
so the status must say what happened: 4xx for what the caller can fix, 429 for "wait", 502 for a
broken upstream, 503 for "no account can serve this now".
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from ..chat.attachments import AttachmentError, AttachmentProblem
from ..chat.errors import (
    AnswerRejected,
    ErrorKind,
    RejectKind,
    TurnFailed,
    UpstreamError,
)
from ..chat.history_file import PromptTooLong
from ..pool.errors import PassthroughExhausted, PoolExhausted, PoolUnavailable

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

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

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


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope, all four keys always present."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class RequestInvalid(ApiError):
    """A request we will not serve: `invalid_request_error` with a param path (400 unless said)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = "invalid_value",
                 status: int = 400) -> None:
        super().__init__(status, message, "invalid_request_error", param, code)


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
    ErrorKind.POW_REJECTED: (502, "server_error", "upstream_pow_rejected",
                             "DeepSeek rejected the proof-of-work answer"),
    ErrorKind.WAF_BLOCKED: (502, "server_error", "upstream_blocked",
                            "DeepSeek's firewall answered with a challenge page instead of the API"),
    ErrorKind.CLIENT_TOO_OLD: (502, "server_error", "upstream_client_outdated",
                               "DeepSeek refuses the gateway's client version (no account is at fault)"),
    ErrorKind.NEEDS_TOKEN: (503, "server_error", "upstream_needs_token",
                            "DeepSeek refuses the account's password login (risk control) or its pasted token "
                            "expired: the account needs a token pasted from a browser"),
    ErrorKind.EMPTY_ANSWER: (502, "server_error", "upstream_empty_answer", "DeepSeek sent an empty answer"),
    ErrorKind.MODE_DISABLED: (400, "invalid_request_error", "model_mode_disabled",
                              "the requested model's mode is disabled for the accounts"),
    ErrorKind.INPUT_TOO_LONG: (400, "invalid_request_error", "context_length_exceeded",
                               "the conversation is longer than DeepSeek's web chat accepts"),
    ErrorKind.FILE_TOO_LARGE: (413, "invalid_request_error", "file_too_large",
                               "DeepSeek refused an attached file as too large (or its text as too long)"),
    ErrorKind.FILE_UNSUPPORTED: (400, "invalid_request_error", "unsupported_file",
                                 "DeepSeek cannot read this kind of attached file"),
    ErrorKind.FILE_PARSE_FAILED: (400, "invalid_request_error", "file_parse_failed",
                                  "DeepSeek could not parse an attached file"),
    ErrorKind.TOO_MANY_FILES: (400, "invalid_request_error", "too_many_files",
                               "more files are attached than DeepSeek takes in one turn"),
    ErrorKind.FILE_NOT_READY: (502, "server_error", "file_not_ready",
                               "DeepSeek did not finish parsing the attached files"),
    ErrorKind.VISION_UNAVAILABLE: (503, "server_error", "vision_unavailable",
                                   "vision is not available: DeepSeek's web chat cannot read images right now"),
    ErrorKind.CONTENT_FILTER: (400, "invalid_request_error", "content_filter",
                               "DeepSeek's content filter refused the request"),
    ErrorKind.NETWORK: (502, "server_error", "upstream_unreachable", "DeepSeek could not be reached"),
    ErrorKind.STREAM_CUT: (502, "server_error", "upstream_stream_cut",
                           "DeepSeek's stream ended before the reply finished"),
    ErrorKind.PROTOCOL: (502, "server_error", "upstream_protocol_error",
                         "DeepSeek answered in a way the gateway does not understand"),
}


# Failures a retry seconds later cannot fix (the operator must act, or the wait is hours). The SDKs retry
# every 5xx twice by default, so these say `x-should-retry: false` (docs/clients.md).
_PERMANENT = frozenset({ErrorKind.TOKEN_INVALID, ErrorKind.BAD_CREDENTIALS, ErrorKind.ACCOUNT_MUTED,
                        ErrorKind.ACCOUNT_BANNED, ErrorKind.CLIENT_TOO_OLD, ErrorKind.NEEDS_TOKEN})
NO_RETRY = {"x-should-retry": "false"}
_ABOUT_MESSAGES = frozenset({ErrorKind.INPUT_TOO_LONG, ErrorKind.FILE_TOO_LARGE, ErrorKind.FILE_UNSUPPORTED,
                             ErrorKind.FILE_PARSE_FAILED, ErrorKind.TOO_MANY_FILES})
_ATTACHMENT_CODES: dict[AttachmentProblem, str] = {
    AttachmentProblem.TOO_LARGE: "file_too_large",
    AttachmentProblem.TOO_MANY: "too_many_files",
    AttachmentProblem.UNSUPPORTED: "unsupported_file",
    AttachmentProblem.INVALID: "invalid_value",
    AttachmentProblem.REMOTE_DISABLED: "unsupported_value",
    AttachmentProblem.REMOTE_REFUSED: "invalid_image_url",
    AttachmentProblem.REMOTE_FAILED: "image_fetch_failed",
}


def from_attachment(exc: AttachmentError) -> ApiError:
    """A refused image or document: 413 for size, 400 for the rest, `param` naming the part."""
    return ApiError(exc.status, str(exc), "invalid_request_error", exc.part or None,
                    _ATTACHMENT_CODES.get(exc.problem, "invalid_value"))


def prompt_too_long(exc: PromptTooLong) -> ApiError:
    return ApiError(400, f"the conversation is too long even with its earlier turns attached as a file: {exc}",
                    "invalid_request_error", "messages", "context_length_exceeded")


def from_upstream(error: UpstreamError, *, attempts: int = 1, passthrough: bool = False) -> ApiError:
    """The HTTP answer for a turn that failed upstream before anything was sent."""
    if passthrough and error.kind in (ErrorKind.TOKEN_INVALID, ErrorKind.BAD_CREDENTIALS):
        return ApiError(401, "DeepSeek rejected the token sent as the API key", "invalid_request_error", None,
                        "invalid_api_key")
    status, type_, code, text = _UPSTREAM_ANSWERS.get(error.kind, _UPSTREAM_ANSWERS[ErrorKind.PROTOCOL])
    tried = f" (tried {attempts} account{'s' if attempts != 1 else ''})" if attempts > 1 else ""
    param = "messages" if error.kind in _ABOUT_MESSAGES else "model" if error.kind is ErrorKind.MODE_DISABLED else None
    retry_after = None
    if status == 503:
        retry_after = error.retry_after or 5.0
    headers = dict(NO_RETRY) if error.kind in _PERMANENT else {}
    detail = client_detail(error)
    said = detail.lower().removeprefix("upstream ") in text.lower()  # the detail only restates the summary
    message = f"{text}{tried}" if said or not detail else f"{text}{tried}: {detail}"
    return ApiError(status, message, type_, param, code, retry_after, headers)


# A complete answer that missed the shape the request demanded: the request was valid and the model did
# not comply (even after the one repair round). 422, and no retry advice: the same request may well work.
_REJECTED_PARAM = {RejectKind.TOOL_CALL_REQUIRED: "tool_choice",
                   RejectKind.INVALID_STRUCTURED_OUTPUT: "response_format"}


def from_rejected(exc: AnswerRejected) -> ApiError:
    """The 422 for an answer without the call `tool_choice` required, or without valid JSON."""
    return ApiError(422, f"The model's answer was rejected: {exc.message}.", "invalid_request_error",
                    _REJECTED_PARAM.get(exc.kind), exc.kind.value)


def from_pool(exc: PoolExhausted) -> ApiError:
    """The 429 for a pool that cannot serve now, with a Retry-After estimate and the reason."""
    # No usable account at all (banned, bad credentials, none configured): retrying cannot help.
    headers = {} if exc.reason.retry_can_help else dict(NO_RETRY)
    return ApiError(429, exc.message, "rate_limit_error", None, f"pool_{exc.reason.value}",
                    retry_after=exc.retry_after, headers=headers)


def from_unavailable(exc: PoolUnavailable) -> ApiError:
    """The 503 for a shared pool that cannot answer (Redis down or recovering): fail closed, retry later."""
    return ApiError(503, exc.message, "server_error", None, f"pool_{exc.kind}", retry_after=exc.retry_after)


def internal_error(request_id: str | None = None) -> ApiError:
    if request_id is None:
        return ApiError(500, "internal error in the gateway; see its log", "server_error", None, "internal_error")
    return ApiError(500, f"Internal error in the gateway; see its log (request {request_id}).", "server_error",
                    None, "internal_error")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than the gateway's limit of {limit} bytes "
                         "(server.max_body_bytes).", "invalid_request_error", None, "request_too_large")


def shutting_down() -> ApiError:
    return ApiError(503, "The gateway is shutting down; send the request again.", "server_error", None,
                    "server_shutting_down", retry_after=1)


def client_closed() -> ApiError:
    """For the access log and the (unread) answer when the client hung up before the reply was complete."""
    return ApiError(499, "The client closed the connection before the reply was complete.",
                    "invalid_request_error", None, "client_closed")


def from_failure(exc: BaseException, *, attempts: int = 1, passthrough: bool = False) -> ApiError | None:
    """The answer for whatever ended a turn; None for a cancellation (the client is gone)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AttachmentError):
        return from_attachment(exc)
    if isinstance(exc, PromptTooLong):
        return prompt_too_long(exc)
    if isinstance(exc, TurnFailed):
        return from_upstream(exc.error, attempts=attempts, passthrough=passthrough)
    if isinstance(exc, PoolExhausted):
        return from_pool(exc)
    if isinstance(exc, PoolUnavailable):
        return from_unavailable(exc)
    if isinstance(exc, AnswerRejected):
        return from_rejected(exc)
    if isinstance(exc, PassthroughExhausted):
        return unauthorized(str(exc))
    if isinstance(exc, Exception):
        log.error("unexpected failure in a chat turn", exc_info=exc)
        return internal_error()
    return None


_OWN_NETWORK_WORDING = ("no data from upstream for", "no response from upstream within", ": timed out")


def client_detail(error: UpstreamError) -> str:
    """What a client may read about an upstream failure. Transport errors name hosts, ports and the
    proxy an account goes through: those stay in the gateway's log."""
    if error.kind is not ErrorKind.NETWORK:
        return error.message
    log.warning("upstream unreachable: %s", error.message)
    text = error.message.split(" (via proxy ", 1)[0]
    if any(own in text for own in _OWN_NETWORK_WORDING):  # worded by the gateway: no host in it
        return text
    where = text.split(": ", 1)[0] if ": " in text else "upstream call"
    return f"{where}: connection failed (details in the gateway log)"
