"""Per-account fair use the operator chooses: at most `max_requests_per_hour` turns an account starts in
any 60 minutes, and at least `min_request_gap` seconds between two starts on one account.

The pool's dispatch skips an account at its limit (it is not failed, cooled or reported — it is just not
chosen), and when every account is held back its waiters wait for the first one to be usable again, up to
their queue timeout. `pool.<field>` sets the default for every account; an account's own field wins.
Pool clock, event loop only; O(1) per grant (a deque per account, trimmed to the last hour).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from ..settings import AccountSettings, PoolSettings

HOUR = 3600.0


class FairUse:
    def __init__(self, defaults: PoolSettings) -> None:
        self._per_hour = defaults.max_requests_per_hour
        self._gap = defaults.min_request_gap
        self._starts: dict[str, collections.deque[float]] = {}
        self.active = bool(self._per_hour or self._gap)

    def consider(self, account: AccountSettings) -> None:
        """An account of the pool: its own limits switch fair use on even when the pool sets none."""
        if account.max_requests_per_hour or account.min_request_gap:
            self.active = True

    def limits(self, account: AccountSettings) -> tuple[int, float]:
        per_hour = account.max_requests_per_hour if account.max_requests_per_hour is not None else self._per_hour
        gap = account.min_request_gap if account.min_request_gap is not None else self._gap
        return per_hour, gap

    def note(self, account: AccountSettings, now: float) -> None:
        """A turn started on `account` (the pool granted it a slot)."""
        per_hour, gap = self.limits(account)
        if not (per_hour or gap):
            return
        starts = self._starts.setdefault(account.id, collections.deque())
        starts.append(now)
        self._trim(starts, now)

    def usable_at(self, account: AccountSettings, now: float) -> float | None:
        """When `account` may start the next turn; None when it may now."""
        per_hour, gap = self.limits(account)
        starts = self._starts.get(account.id)
        if not starts or not (per_hour or gap):
            return None
        self._trim(starts, now)
        at = now
        if gap and starts:
            at = max(at, starts[-1] + gap)
        if per_hour and len(starts) >= per_hour:
            at = max(at, starts[len(starts) - per_hour] + HOUR)
        return at if at > now else None

    def held_back(self, accounts: Iterable[AccountSettings], now: float) -> frozenset[str]:
        """The ids of the accounts at their limit right now (dispatch excludes them)."""
        if not self.active and not self._starts:
            return frozenset()
        return frozenset(a.id for a in accounts if self.usable_at(a, now) is not None)

    def next_free(self, accounts: Iterable[AccountSettings], now: float) -> float | None:
        times = [t for t in (self.usable_at(a, now) for a in accounts) if t is not None]
        return min(times) if times else None

    def requests_last_hour(self, account_id: str, now: float) -> int:
        starts = self._starts.get(account_id)
        if not starts:
            return 0
        self._trim(starts, now)
        return len(starts)

    @staticmethod
    def _trim(starts: collections.deque[float], now: float) -> None:
        while starts and starts[0] <= now - HOUR:
            starts.popleft()


__all__ = ["HOUR", "FairUse"]
