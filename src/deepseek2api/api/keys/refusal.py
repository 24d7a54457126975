"""A key's refusal (keys/limiter.py `Refusal`) as the API error every surface renders in its envelope.

A model outside the key's list is a 403 naming the allowed models; a disabled or expired key a 401; an
exhausted limit a 429 with `Retry-After` and both header families clients read: OpenAI's
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` and Anthropic's `anthropic-ratelimit-…`
(Anthropic clients on /v1/messages read those; the others ignore them). The Anthropic envelope maps
403 → permission_error and 429 → rate_limit_error itself (api/errors.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ...keys.limiter import KeyLimiter, Refusal, seconds_to_midnight
from ...keys.rules import KeyRules
from ..errors import ApiError


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `2h3m4s`."""
    whole = max(0, int(-(-seconds // 1)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_headers(rules: KeyRules, limiter: KeyLimiter, tokens_used: int, refusal: Refusal | None,
                 now: float | None = None) -> dict[str, str]:
    """The rate-limit headers of a key with limits (empty for a key without any)."""
    now = time.time() if now is None else now
    headers: dict[str, str] = {}
    if refusal is not None and refusal.kind == "max_streams":
        limit, remaining, reset = refusal.limit, 0, refusal.reset
    elif rules.rpm:
        remaining, reset = limiter.remaining(rules)
        limit = rules.rpm
        if refusal is not None and refusal.kind == "rpm":
            remaining, reset = 0, refusal.reset
    else:
        limit = 0
    if limit:
        headers["x-ratelimit-limit-requests"] = str(limit)
        headers["x-ratelimit-remaining-requests"] = str(remaining)
        headers["x-ratelimit-reset-requests"] = openai_duration(reset)
        headers["anthropic-ratelimit-requests-limit"] = str(limit)
        headers["anthropic-ratelimit-requests-remaining"] = str(remaining)
        headers["anthropic-ratelimit-requests-reset"] = rfc3339(now + reset)
    if rules.tokens_per_day:
        left = max(0, rules.tokens_per_day - tokens_used)
        reset = seconds_to_midnight(now)
        headers["x-ratelimit-limit-tokens"] = str(rules.tokens_per_day)
        headers["x-ratelimit-remaining-tokens"] = str(left)
        headers["x-ratelimit-reset-tokens"] = openai_duration(reset)
        headers["anthropic-ratelimit-tokens-limit"] = str(rules.tokens_per_day)
        headers["anthropic-ratelimit-tokens-remaining"] = str(left)
        headers["anthropic-ratelimit-tokens-reset"] = rfc3339(now + reset)
    return headers


def refused(refusal: Refusal, rules: KeyRules, limiter: KeyLimiter, tokens_used: int) -> ApiError:
    """The error to answer `refusal` with."""
    if refusal.kind == "model":
        return ApiError(403, refusal.message, "permission_error", "model", "model_not_allowed")
    if not refusal.rate_limited:
        return ApiError(401, refusal.message, "invalid_request_error", None, f"key_{refusal.kind}")
    return ApiError(429, refusal.message, "rate_limit_error", None, f"key_{refusal.kind}_exceeded",
                    retry_after=max(1.0, refusal.reset),
                    headers=rate_headers(rules, limiter, tokens_used, refusal))


__all__ = ["openai_duration", "rate_headers", "refused", "rfc3339"]
