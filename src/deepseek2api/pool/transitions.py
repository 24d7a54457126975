"""Health transitions of the in-process pool: what a failure does to an account, applied and told.

The rules are pure (pool/health.py); this applies them to the records, counts failures, tells the
observer, persists the change and wakes the queue (a waiter may have lost its last account, or the
next wake-up time moved).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..deepseek.errors import ErrorKind
from ..deepseek.events import UpstreamError
from .core import PoolCore
from .health import AccountStatus, Cooldowns, Health, after_error, transition
from .persistence import StateWriter
from .record import AccountRecord

logger = logging.getLogger(__name__)


class HealthKeeper:
    """Moves accounts between ready, cooling, muted, banned … and keeps their failure counters."""

    def __init__(self, core: PoolCore, writer: StateWriter, changed: Callable[[], None]) -> None:
        self._core = core
        self._writer = writer
        self._changed = changed  # the queue's dispatch
        self.cooldowns = Cooldowns(rate_limited=core.settings.cooldown_rate_limited, busy=core.settings.cooldown_busy)

    def note_error(self, acc: AccountRecord, error: UpstreamError) -> None:
        """Remember the last failure for the console (kind and message: no secret is in either)."""
        acc.last_error = f"{error.kind.value}: {error.message}"
        acc.last_error_at = self._core.clock()

    def count_failure(self, acc: AccountRecord) -> None:
        acc.failures += 1
        acc.consecutive_failures += 1
        acc.counters_dirty = True

    def apply_error(self, acc: AccountRecord, error: UpstreamError, proxy: str | None) -> None:
        if error.kind.gateway_wide:  # the gateway's identity is refused, not this account
            return
        if error.kind is ErrorKind.EMPTY_ANSWER:
            acc.empty_answers += 1
        self.count_failure(acc)
        health = after_error(error, self._core.clock(), self.cooldowns)
        if health is not None:
            self.set_state(acc, health.status, health.reason, health.until)
        elif error.kind in (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED):
            self._core.proxies.report_failure(proxy)

    def set_state(self, acc: AccountRecord, status: AccountStatus, reason: str, until: float | None = None) -> None:
        now = self._core.clock()
        change = transition(acc.health, Health(status, reason, until), now)
        if change is None:
            return
        status, until = change.status, change.until
        observer = self._core.observer
        if observer is not None and acc.status != status:
            observer.account_transition(acc.status.value, status.value)
        acc.status, acc.reason, acc.until, acc.updated_at = status, reason, until, now
        if until is not None:
            logger.info("account %s: %s for %.0fs (%s)", acc.id, status, until - now, reason)
        else:
            logger.info("account %s: %s%s", acc.id, status, f" ({reason})" if reason else "")
        self._writer.persist(acc)
        self._changed()  # waiters may have lost their last hope, or the wake time moved


__all__ = ["HealthKeeper"]
