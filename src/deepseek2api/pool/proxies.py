"""Proxy pool: which exit an account's requests leave through.

Entries are proxy URLs or "" (connect directly, and still counted as an exit). `least_used` spreads
picks evenly; `sticky` pins each account to one exit so it always appears from the same address
(docs/protocol.md). An exit that keeps failing is quarantined for a while and comes back by itself;
when every exit is quarantined the one quarantined first is used anyway — a request is never
refused for lack of a proxy.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..settings import redact_proxy

if TYPE_CHECKING:
    from ..settings import AccountSettings, Settings
    from .observe import ProxyObserver

logger = logging.getLogger(__name__)

STRATEGIES = ("least_used", "sticky")


class ProxyPool:
    """Chooses a proxy per lease; `pick()` returns a URL, or None for a direct connection."""

    def __init__(
        self,
        entries: Sequence[str],
        *,
        enabled: bool,
        strategy: str = "least_used",
        quarantine_failures: int = 3,
        quarantine_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        observer: ProxyObserver | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown proxy strategy {strategy!r} (expected least_used or sticky)")
        self.enabled = enabled
        self.strategy = strategy
        self.quarantine_failures = max(1, quarantine_failures)
        self.quarantine_seconds = quarantine_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self.observer = observer
        self._entries: list[str] = [e.strip() for e in entries] if enabled else []
        count = len(self._entries)
        self._picks = [0] * count  # total picks (stats)
        self._load = [0] * count  # what least_used balances; levelled when an entry rejoins
        self._rejoin = [False] * count  # quarantined since it last took part in balancing
        self._failures = [0] * count  # consecutive, reset by a success
        self._until: list[float | None] = [None] * count  # quarantined until (clock time)
        self._since: list[float] = [0.0] * count  # when the last quarantine began
        self._sticky: dict[str, int] = {}
        self._assigned = [0] * count

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: object) -> ProxyPool:
        """The pool the config describes (`proxy_pool*` keys and `proxy_quarantine`)."""
        return cls(
            settings.proxy_pool,
            enabled=settings.proxy_pool_enabled,
            strategy=settings.proxy_strategy,
            quarantine_failures=settings.proxy_quarantine.failures,
            quarantine_seconds=settings.proxy_quarantine.seconds,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def active(self) -> bool:
        """False when every pick is direct (pool disabled or empty)."""
        return bool(self._entries)

    @property
    def entries(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def pick(self, account_id: str | None = None) -> str | None:
        """The exit for one lease (counted as used); None means connect directly."""
        if not self._entries:
            return None
        index = self._choose(account_id, self._clock())
        self._picks[index] += 1
        self._load[index] += 1
        if self.observer is not None:
            self.observer.proxy_used(self._entries[index] or None)
        return self._entries[index] or None

    def exit_for(self, account: AccountSettings) -> str | None:
        """The exit one lease of `account` uses (counted): its own `proxy`, else one from the pool."""
        return account.proxy or self.pick(account.id)

    def next_exit(self, account: AccountSettings) -> tuple[bool, str | None]:
        """(known, proxy): the exit the account's next lease will use, when that can be known in advance
        (its own proxy, no pool, or a sticky pool); `least_used` decides per lease, so it cannot."""
        if account.proxy:
            return True, account.proxy
        if not self.active:
            return True, None
        if self.strategy == "sticky":
            return True, self.assigned(account.id)
        return False, None

    def assigned(self, account_id: str) -> str | None:
        """The sticky exit of an account, if it has one yet (None: none or direct)."""
        index = self._sticky.get(account_id)
        return None if index is None else (self._entries[index] or None)

    def report_failure(self, proxy: str | None) -> None:
        """A connect/proxy error or WAF page through this exit; enough in a row quarantine it."""
        now = self._clock()
        if self.observer is not None and self._entries:
            self.observer.proxy_failed(proxy)
        for index in self._indices(proxy):
            self._failures[index] += 1
            if self._failures[index] >= self.quarantine_failures and not self._quarantined(index, now):
                self._until[index] = now + self.quarantine_seconds
                self._since[index] = now
                self._rejoin[index] = True
                logger.warning(
                    "proxy %s quarantined for %.0fs after %d consecutive failures",
                    redact_proxy(self._entries[index]),
                    self.quarantine_seconds,
                    self._failures[index],
                )

    def report_success(self, proxy: str | None) -> None:
        """The exit works: forget its failures (and lift a quarantine early)."""
        for index in self._indices(proxy):
            if self._until[index] is not None and self._quarantined(index, self._clock()):
                logger.info("proxy %s works again", redact_proxy(self._entries[index]))
            self._failures[index] = 0
            self._until[index] = None

    def stats(self) -> list[dict[str, object]]:
        """Per-entry counters for status pages; URLs are redacted."""
        now = self._clock()
        out: list[dict[str, object]] = []
        for index, entry in enumerate(self._entries):
            until = self._until[index]
            quarantined = self._quarantined(index, now)
            out.append(
                {
                    "proxy": redact_proxy(entry),
                    "picks": self._picks[index],
                    "consecutive_failures": self._failures[index],
                    "quarantined": quarantined,
                    "quarantine_left": round(until - now, 1) if quarantined and until is not None else 0.0,
                    "sticky_accounts": self._assigned[index],
                }
            )
        return out

    def views(self) -> list[tuple[str, int, int, float | None]]:
        """(URL — NOT redacted, the caller redacts —, picks, consecutive failures, seconds of quarantine
        left or None) per entry, for the console."""
        now = self._clock()
        out: list[tuple[str, int, int, float | None]] = []
        for index, entry in enumerate(self._entries):
            until = self._until[index]
            left = until - now if until is not None and self._quarantined(index, now) else None
            out.append((entry, self._picks[index], self._failures[index], left))
        return out

    # ---- internals -------------------------------------------------------------------

    def _indices(self, proxy: str | None) -> Iterable[int]:
        wanted = (proxy or "").strip()
        return [i for i, entry in enumerate(self._entries) if entry == wanted]

    def _quarantined(self, index: int, now: float) -> bool:
        until = self._until[index]
        return until is not None and now < until

    def _least(self, indices: Sequence[int], counts: Sequence[int]) -> int:
        low = min(counts[i] for i in indices)
        return self._rng.choice([i for i in indices if counts[i] == low])

    def _choose(self, account_id: str | None, now: float) -> int:
        every = range(len(self._entries))
        available = [i for i in every if not self._quarantined(i, now)]
        self._level(available)
        if self.strategy == "sticky" and account_id is not None:
            index = self._sticky.get(account_id)
            if index is None:
                index = self._least(available or list(every), self._assigned)
                self._sticky[account_id] = index
                self._assigned[index] += 1
            if index in available:
                return index
        if not available:  # all quarantined: the one that went first comes back first
            return min(every, key=lambda i: self._since[i])
        return self._least(available, self._load)

    def _level(self, available: Sequence[int]) -> None:
        """An entry back from quarantine joins at the others' level instead of taking every pick
        until it has caught up on the ones it missed."""
        for index in available:
            if not self._rejoin[index]:
                continue
            self._rejoin[index] = False
            others = [self._load[i] for i in available if i != index and not self._rejoin[i]]
            if others:
                self._load[index] = max(self._load[index], min(others))


__all__ = ["STRATEGIES", "ProxyPool", "redact_proxy"]
