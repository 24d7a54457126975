"""Misbehaviour on demand: which faults apply where, how one is chosen, and what each looks like.

A fault comes from (first wins for request faults) the `x-sim-fault` header, a `[sim:fault=…]`
directive in the prompt, the account's queue (`POST /_sim/faults`) or a dice roll (`fault_rates`).
Queued faults are consumed on the endpoint named by their `on` field (default chat/completion);
directives and dice rolls only act on chat/completion.

Request faults answer instead of the endpoint: `waf` (HTML "Just a moment..." page, 403 by default),
`rate_limit` (HTTP 429 + Retry-After), `busy` (code 1001; Gen A: `finish_reason: backend_busy`),
`ban` (code 40012, and the account stays banned: login answers biz_code 10 until `/_sim/reset`),
`token_expired` (40003; the token is dropped, so the next call fails too until a new login),
`mute` (biz_code 5 with `mute_until` = now + mute_seconds; only that request), `pow_rejected` (40301).
Stream faults shape the reply: `stall`, `slow`, `cut`, `content_filter`, `incomplete`,
`input_too_long` (see turns.py and app.py), `empty` (a finished reply with nothing in it, late2026.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.responses import HTMLResponse, Response

from .config import FAULT_NAMES
from .envelope import biz_error, code_error, token_error
from .state import SimState
from .streams import data_event

REQUEST_FAULTS = ("waf", "rate_limit", "busy", "ban", "token_expired", "mute", "pow_rejected")
STREAM_FAULTS = ("input_too_long", "stall", "slow", "cut", "content_filter", "incomplete", "empty")

_EVERYWHERE = frozenset({"waf", "rate_limit", "busy", "ban"})
_AUTHED = _EVERYWHERE | {"token_expired"}
APPLICABLE: dict[str, frozenset[str]] = {
    "login": _EVERYWHERE,
    "completion": FAULT_NAMES,
    "continue": _AUTHED | {"mute", "pow_rejected", "stall", "slow", "cut", "content_filter"},
}


def applicable(endpoint: str) -> frozenset[str]:
    return APPLICABLE.get(endpoint, _AUTHED)


def pick_faults(state: SimState, endpoint: str, account: str | None, header: str | None,
                directives: Iterable[str] = ()) -> set[str]:
    """Every fault that applies to this request (header, directives, one queued entry, dice rolls)."""
    allowed = applicable(endpoint)
    chosen = {name.strip().lower() for name in (header or "").split(",") if name.strip()}
    chosen.update(directives)
    if account is not None:
        queued = state.take_fault(account, endpoint, allowed)
        if queued:
            chosen.add(queued)
    if endpoint == "completion":
        for name, rate in sorted(state.config.fault_rates.items()):
            if rate > 0 and state.rng.random() < rate:
                chosen.add(name)
    return chosen & allowed


WAF_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="UTF-8"><title>Just a moment...</title>
<meta name="robots" content="noindex,nofollow"></head>
<body><h1>chat.deepseek.com</h1>
<p>Checking if the site connection is secure. Please enable JavaScript and cookies to continue.</p>
<p>(A simulated WAF challenge page served by the DeepSeek2API simulator.)</p>
</body>
</html>
"""


def request_fault_response(name: str, state: SimState, *, endpoint: str, account: str | None,
                           token: str | None, fmt: str = "C") -> Response:
    """The answer a request fault gives instead of the endpoint's own."""
    config = state.config
    state.faults_injected[name] += 1
    if name == "waf":
        return HTMLResponse(WAF_PAGE, status_code=config.waf_status)
    if name == "rate_limit":
        return code_error(429, "Too Many Requests: you are sending messages too frequently", status=429,
                          headers={"Retry-After": f"{config.retry_after:g}"})
    if name == "busy":
        if fmt == "A" and endpoint == "completion":
            chunk = data_event({"choices": [{"index": 0, "delta": {"content": "", "type": "text"},
                                             "finish_reason": "backend_busy"}],
                                "model": "", "chunk_token_usage": 0, "created": int(time.time())})
            return Response(chunk + b"data: [DONE]\n\n", media_type="text/event-stream; charset=utf-8")
        return code_error(1001, "Server is busy. Please try again later.")
    if name == "ban":
        if account is not None:
            state.ban(account)
        return biz_error(10, "user is banned") if endpoint == "login" else code_error(40012, "user is banned")
    if name == "token_expired":
        if token:
            state.invalidate_token(token)
        return token_error(config.token_error_http)
    if name == "mute":
        return biz_error(5, "user is muted", {"is_muted": 1, "mute_until": state.clock() + config.mute_seconds})
    if name == "pow_rejected":
        return code_error(40301, "INVALID_POW_RESPONSE")
    raise ValueError(f"{name!r} is not a request fault")


def first_request_fault(faults: set[str]) -> str | None:
    return next((name for name in REQUEST_FAULTS if name in faults), None)
