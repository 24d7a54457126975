"""Counting a key's requests against its rules, before the pool is asked for an account.

Event-loop only, O(1) amortised per request: a deque of the last minute's admissions per key (`rpm`), a
count of running requests (`max_streams`), and today's tokens as the usage ledger has them
(`tokens_per_day`, checked before the request: a request that starts under the limit may end over it).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from .rules import KeyRules

WINDOW = 60.0  # seconds of the `rpm` window
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a key may not run this request now; `kind` is the rule (the gate picks 403 or 429 by it)."""

    kind: str  # model | disabled | expired | rpm | max_streams | tokens_per_day
    message: str
    limit: int = 0
    remaining: int = 0
    reset: float = 0.0  # seconds until the limit lets a request through again (0: unknown / never)
    allowed: tuple[str, ...] = ()

    @property
    def rate_limited(self) -> bool:
        return self.kind in ("rpm", "max_streams", "tokens_per_day")


def seconds_to_midnight(now: float) -> float:
    """Until the next UTC day, when `tokens_per_day` starts again."""
    return DAY - (now % DAY)


class KeyLimiter:
    """Per-key counters of this process; `admit` takes a slot that `release` gives back exactly once."""

    def __init__(self, tokens_today: Callable[[str], int], clock: Callable[[], float] = time.time) -> None:
        self._tokens_today = tokens_today
        self._clock = clock
        self._recent: dict[str, collections.deque[float]] = {}
        self._streams: collections.Counter[str] = collections.Counter()

    def admit(self, rules: KeyRules, model: str) -> Refusal | None:
        """None (and the request counts as running) when `rules` let it run; else why not."""
        now = self._clock()
        if not rules.enabled:
            return Refusal("disabled", f"the API key {rules.name!r} is disabled")
        if rules.expired(now):
            return Refusal("expired", f"the API key {rules.name!r} has expired")
        if not rules.allows_model(model):
            allowed = ", ".join(rules.models)
            return Refusal("model", f"the API key {rules.name!r} may not use the model {model!r}; "
                                    f"it may use: {allowed}", allowed=rules.models)
        recent = self._recent.get(rules.name)
        if rules.rpm:
            if recent is None:
                recent = self._recent[rules.name] = collections.deque()
            while recent and recent[0] <= now - WINDOW:
                recent.popleft()
            if len(recent) >= rules.rpm:
                return Refusal("rpm", f"the API key {rules.name!r} is over its limit of {rules.rpm} requests "
                                      "per minute", rules.rpm, 0, recent[0] + WINDOW - now)
        if rules.max_streams and self._streams[rules.name] >= rules.max_streams:
            return Refusal("max_streams", f"the API key {rules.name!r} already runs {rules.max_streams} "
                                          "request(s), its limit", rules.max_streams, 0, 1.0)
        if rules.tokens_per_day:
            used = self._tokens_today(rules.name)
            if used >= rules.tokens_per_day:
                return Refusal("tokens_per_day", f"the API key {rules.name!r} used its {rules.tokens_per_day} "
                                                 "tokens for today (UTC)", rules.tokens_per_day, 0,
                               seconds_to_midnight(now))
        if recent is not None:
            recent.append(now)
        self._streams[rules.name] += 1
        return None

    def release(self, name: str) -> None:
        left = self._streams.get(name, 0) - 1
        if left > 0:
            self._streams[name] = left
        else:
            self._streams.pop(name, None)

    def streams(self, name: str) -> int:
        return self._streams.get(name, 0)

    def requests_last_minute(self, name: str) -> int:
        recent = self._recent.get(name)
        if not recent:
            return 0
        cutoff = self._clock() - WINDOW
        return sum(1 for moment in recent if moment > cutoff)

    def remaining(self, rules: KeyRules) -> tuple[int, float]:
        """(requests left in this minute, seconds until one more frees up) — for the rate-limit headers."""
        if not rules.rpm:
            return 0, 0.0
        recent = self._recent.get(rules.name)
        now = self._clock()
        live = [moment for moment in recent or () if moment > now - WINDOW]
        reset = live[0] + WINDOW - now if live else 0.0
        return max(0, rules.rpm - len(live)), reset


__all__ = ["DAY", "WINDOW", "KeyLimiter", "Refusal", "seconds_to_midnight"]
