"""Upstream failures, classified into kinds the pool and the runner can act on.

DeepSeek reports most failures with HTTP 200 and a JSON envelope (docs/protocol.md), some with a
real HTTP status, some as an SSE `hint`, and its WAF with an HTML page. Everything ends up here as
one `ErrorKind`, so no layer above matches message strings.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import UpstreamError


class ErrorKind(str, enum.Enum):
    """What went wrong upstream, in terms of what to do about it."""

    TOKEN_INVALID = "token_invalid"  # log in again (once), then give up on the account
    BAD_CREDENTIALS = "bad_credentials"  # login refused: the operator must fix the password
    ACCOUNT_MUTED = "account_muted"  # muted until `until`
    ACCOUNT_BANNED = "account_banned"  # banned or disabled for good
    RATE_LIMITED = "rate_limited"  # cool down for `retry_after`
    BUSY = "busy"  # server overloaded; short cool-down
    POW_REJECTED = "pow_rejected"  # the PoW answer was refused (bad, expired, reused)
    WAF_BLOCKED = "waf_blocked"  # an HTML page instead of the API: this exit is blocked
    CLIENT_TOO_OLD = "client_too_old"  # the client identity (persona, version) is outdated: gateway-wide
    NEEDS_TOKEN = "needs_token"  # risk control refused the password login, or a token-only account's token died
    INPUT_TOO_LONG = "input_too_long"  # the prompt exceeds the web chat's limit
    FILE_TOO_LARGE = "file_too_large"  # an upload over the size limit, or parsed text too long (CONTENT_TOO_LONG)
    FILE_UNSUPPORTED = "file_unsupported"  # upstream cannot read this kind of file
    FILE_PARSE_FAILED = "file_parse_failed"  # the upload ended FAILED / ERROR / CONTENT_EMPTY / CANCELLED
    FILE_NOT_READY = "file_not_ready"  # a ref_file_id upstream does not accept (biz_code 9), or parsing timed out
    TOO_MANY_FILES = "too_many_files"  # more ref_file_ids than upstream takes (biz_code 10 on a completion)
    VISION_UNAVAILABLE = "vision_unavailable"  # "vision is temporarily unavailable"
    CONTENT_FILTER = "content_filter"  # DeepSeek's moderation stopped the reply
    NETWORK = "network"  # connect / proxy / timeout / connection reset
    STREAM_CUT = "stream_cut"  # the stream ended without a terminal status
    PROTOCOL = "protocol"  # an answer we cannot parse or do not know
    EMPTY_ANSWER = "empty_answer"  # the reply finished with no text, no thinking and no tool call
    MODE_DISABLED = "mode_disabled"  # the account's settings say this mode (expert, vision) is off

    @property
    def gateway_wide(self) -> bool:
        """True for a condition of the whole gateway (its client identity), not of one account: no
        account is blamed, and no other account is tried (it would be refused the same way)."""
        return self is ErrorKind.CLIENT_TOO_OLD

    @property
    def try_another_account(self) -> bool:
        """True when another account (or exit) may well succeed where this one failed, once the prompt
        went upstream. Never for a mute or ban: DeepSeek may give those over what a prompt says, and
        sending the same turn on would burn one account after the other."""
        return self in _RETRYABLE

    @property
    def try_another_account_before_prompt(self) -> bool:
        """Like `try_another_account`, for a failure before the prompt was sent (login, session, PoW
        challenge): a mute or ban found then was the account's state already, not this turn's doing."""
        return self in _RETRYABLE or self in _PROMPT_VERDICTS

    @property
    def blames_account(self) -> bool:
        """True when the account itself should change state (cool down, mute, ban …)."""
        return self in _ACCOUNT_STATES


_RETRYABLE = frozenset(
    {
        ErrorKind.TOKEN_INVALID,
        ErrorKind.BAD_CREDENTIALS,
        ErrorKind.NEEDS_TOKEN,
        ErrorKind.EMPTY_ANSWER,
        ErrorKind.RATE_LIMITED,
        ErrorKind.BUSY,
        ErrorKind.POW_REJECTED,
        ErrorKind.WAF_BLOCKED,
        ErrorKind.NETWORK,
        ErrorKind.STREAM_CUT,
    }
)
_PROMPT_VERDICTS = frozenset({ErrorKind.ACCOUNT_MUTED, ErrorKind.ACCOUNT_BANNED})
_ACCOUNT_STATES = frozenset(
    {
        ErrorKind.TOKEN_INVALID,
        ErrorKind.BAD_CREDENTIALS,
        ErrorKind.NEEDS_TOKEN,
        ErrorKind.ACCOUNT_MUTED,
        ErrorKind.ACCOUNT_BANNED,
        ErrorKind.RATE_LIMITED,
        ErrorKind.BUSY,
    }
)


class UpstreamFailure(Exception):
    """Raised by the non-streaming client calls; carries the classified `UpstreamError`."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(f"{error.kind.value}: {error.message}")
        self.error = error

    @property
    def kind(self) -> ErrorKind:
        return self.error.kind


def _make(kind: ErrorKind, message: str, **extra: Any) -> UpstreamError:
    from .events import UpstreamError  # events imports this module; import late

    return UpstreamError(kind=kind, message=message, **extra)


_CODE_KINDS: dict[int, ErrorKind] = {
    40001: ErrorKind.TOKEN_INVALID,
    40002: ErrorKind.TOKEN_INVALID,
    40003: ErrorKind.TOKEN_INVALID,
    40005: ErrorKind.CLIENT_TOO_OLD,  # {"code":40005,"msg":"CLIENT_VERSION_TOO_LOW","data":null}, HTTP 200
    40300: ErrorKind.POW_REJECTED,
    40301: ErrorKind.POW_REJECTED,
    1001: ErrorKind.BUSY,
    1201: ErrorKind.BUSY,
    40012: ErrorKind.ACCOUNT_BANNED,
    90008: ErrorKind.ACCOUNT_BANNED,
    50006: ErrorKind.ACCOUNT_MUTED,
    429: ErrorKind.RATE_LIMITED,
}

_KEYWORDS: tuple[tuple[tuple[str, ...], ErrorKind], ...] = (
    (("vision is temporarily unavailable", "vision unavailable"), ErrorKind.VISION_UNAVAILABLE),
    (("file too large", "file_too_large", "file size"), ErrorKind.FILE_TOO_LARGE),
    (("unsupported file", "unsupported_file", "file type"), ErrorKind.FILE_UNSUPPORTED),
    (("too long", "exceeds", "超长"), ErrorKind.INPUT_TOO_LONG),
    (("version too low", "version is too low", "version_too_low", "upgrade", "too old"), ErrorKind.CLIENT_TOO_OLD),
    (("muted",), ErrorKind.ACCOUNT_MUTED),
    (("banned", "disabled"), ErrorKind.ACCOUNT_BANNED),
    (("too frequent", "rate limit", "too many requests", "频繁"), ErrorKind.RATE_LIMITED),
    (("busy", "overload", "繁忙"), ErrorKind.BUSY),
    (("pow",), ErrorKind.POW_REJECTED),
    (("token", "unauthorized", "not login", "authorization", "登录", "认证"), ErrorKind.TOKEN_INVALID),
    (("password", "user_name", "username"), ErrorKind.BAD_CREDENTIALS),
    (("content_filter", "content filter"), ErrorKind.CONTENT_FILTER),
)


RISK_BIZ_CODE = 11  # `biz_code 11 RISK_DEVICE_DETECTED`: risk control refused a password login
# What an operator does about an account in state needs_token (client errors, the console, `check`).
TOKEN_REMEDY = ("paste a fresh token: log in to chat.deepseek.com in a browser, copy the `value` of `userToken` "
                "from the page's local storage, and set it with the console's \"Set token\" (README: pasted tokens)")
RISK_REFUSED = "DeepSeek's risk control refused the password login (the credentials may well be right): " + TOKEN_REMEDY
_RISK_WORDS = ("risk", "device_detected", "captcha", "verification required", "verify your", "风险", "风控")


def _risk_refusal(text: str) -> bool:
    """A login answer that means "not from this device / not without a human check", whatever the code."""
    lowered = text.lower()
    return any(word in lowered for word in _RISK_WORDS)


def _kind_from_text(text: str) -> ErrorKind | None:
    lowered = text.lower()
    for words, kind in _KEYWORDS:
        if any(word in lowered for word in words):
            return kind
    return None


def classify_envelope(envelope: Any, *, login: bool = False) -> UpstreamError | None:
    """Classify a §1.2 JSON envelope; None when it reports success.

    `login` selects the login endpoint's meanings (biz_code 10 = banned there, "too many ref
    files" on a completion).
    """
    if not isinstance(envelope, Mapping):
        return _make(ErrorKind.PROTOCOL, "upstream answered with a non-object JSON body")
    code = envelope.get("code", 0)
    msg = str(envelope.get("msg") or "")
    if code not in (0, None):
        if login and _risk_refusal(msg):
            return _make(ErrorKind.NEEDS_TOKEN, f"code {code}: {msg}: {RISK_REFUSED}")
        kind = _CODE_KINDS.get(code) if isinstance(code, int) else None
        kind = kind or _kind_from_text(msg) or ErrorKind.PROTOCOL
        return _make(kind, f"code {code}: {msg or 'no message'}")
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        if "data" in envelope and data is None:
            return _make(ErrorKind.PROTOCOL, f"upstream answered with no data: {msg or 'no message'}")
        return None
    biz_code = data.get("biz_code", 0)
    if biz_code in (0, None):
        return None
    biz_msg = str(data.get("biz_msg") or "")
    raw_biz_data = data.get("biz_data")
    biz_data: Mapping[str, Any] = raw_biz_data if isinstance(raw_biz_data, Mapping) else {}
    text = f"biz_code {biz_code}: {biz_msg or 'no message'}"
    if biz_code in (5, 14) or biz_data.get("is_muted"):
        until = biz_data.get("mute_until")
        return _make(
            ErrorKind.ACCOUNT_MUTED, text, until=float(until) if isinstance(until, (int, float)) else None
        )
    if login and (biz_code == RISK_BIZ_CODE or _risk_refusal(biz_msg)):
        return _make(ErrorKind.NEEDS_TOKEN, f"{text}: {RISK_REFUSED}")
    if biz_code == 2:
        return _make(ErrorKind.BAD_CREDENTIALS, text)
    if biz_code == 10 and login:
        return _make(ErrorKind.ACCOUNT_BANNED, text)
    if biz_code == 10 and "ref file" in biz_msg.lower():
        return _make(ErrorKind.TOO_MANY_FILES, text)
    if biz_code == 9:
        return _make(ErrorKind.FILE_NOT_READY, text)
    kind = _kind_from_text(biz_msg) or (ErrorKind.BAD_CREDENTIALS if login else ErrorKind.PROTOCOL)
    return _make(kind, text)


def parse_retry_after(value: str | None, *, default: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return default


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<title>" in head


def classify_http(
    status: int, headers: Mapping[str, str], body: bytes, *, login: bool = False
) -> UpstreamError | None:
    """Classify a whole non-stream answer; None when it is a successful envelope."""
    if looks_like_html(body):
        return _make(ErrorKind.WAF_BLOCKED, f"HTTP {status}: upstream answered with an HTML page (WAF or captcha)")
    lower = {k.lower(): v for k, v in headers.items()}
    if status == 429:
        return _make(
            ErrorKind.RATE_LIMITED,
            "HTTP 429: rate limited",
            retry_after=parse_retry_after(lower.get("retry-after"), default=60.0),
        )
    envelope: Any = None
    try:
        envelope = json.loads(body) if body.strip() else None
    except ValueError:
        envelope = None
    if status in (401, 403):
        return _make(ErrorKind.TOKEN_INVALID, f"HTTP {status}: authorization refused")
    if status == 426:
        return _make(ErrorKind.CLIENT_TOO_OLD, "HTTP 426: client version rejected")
    if status == 413:
        return _make(ErrorKind.FILE_TOO_LARGE, "HTTP 413: upload too large")
    if status == 415:
        return _make(ErrorKind.FILE_UNSUPPORTED, "HTTP 415: unsupported file type")
    if status >= 500:
        return _make(ErrorKind.BUSY, f"HTTP {status}: upstream server error")
    if status >= 400:
        if envelope is not None:
            error = classify_envelope(envelope, login=login)
            if error is not None:
                return error
        return _make(ErrorKind.PROTOCOL, f"HTTP {status}: unexpected status")
    if envelope is None:
        return _make(ErrorKind.PROTOCOL, f"HTTP {status}: body is not JSON")
    return classify_envelope(envelope, login=login)


def classify_hint(hint: Mapping[str, Any]) -> UpstreamError:
    """Classify an SSE `event: hint` payload of type error (docs/protocol.md)."""
    reason = str(hint.get("finish_reason") or "")
    content = str(hint.get("content") or "")
    message = content or reason or "upstream sent an error hint"
    if reason == "input_exceeds_limit":
        return _make(ErrorKind.INPUT_TOO_LONG, message)
    if reason in ("backend_busy", "server_busy"):
        return _make(ErrorKind.BUSY, message)
    if reason in ("rate_limit", "rate_limit_reached", "too_frequent"):
        return _make(ErrorKind.RATE_LIMITED, message, retry_after=60.0)
    if reason == "content_filter":
        return _make(ErrorKind.CONTENT_FILTER, message)
    kind = _kind_from_text(f"{reason} {content}") or ErrorKind.PROTOCOL
    return _make(kind, message)
