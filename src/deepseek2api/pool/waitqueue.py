"""The in-process pool's FIFO queue and dispatch: who gets a free slot, in what order, until when.

A request takes a free slot on a usable account at once, or waits in a bounded queue
(`pool.queue_size`) for at most `pool.queue_timeout` seconds; waiting API keys take turns
(pool/fairness.py), accounts held back by their fair-use limits are skipped (pool/fair_use.py), and a
waiter is turned away as soon as no account could serve it before its deadline (pool/dispatch.py).
Each slot is given back exactly once, also when the waiter was cancelled at the moment of the grant.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .core import PoolCore
from .dispatch import BUSY_RETRY_AFTER, Limits, choose, exhausted, next_wake, verdict
from .errors import PoolExhausted, PoolReason
from .fair_use import FairUse
from .fairness import fair_order
from .health import AccountStatus
from .record import AccountRecord
from .transitions import HealthKeeper

if TYPE_CHECKING:
    from .lease import AccountLease

SHUTTING_DOWN = "the gateway is shutting down"


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[AccountRecord | PoolExhausted]
    exclude: frozenset[str]
    deadline: float  # pool clock
    timer: asyncio.TimerHandle | None = None
    queued_at: float = 0.0  # loop time, for the queue-wait metric
    owner: str = ""  # the API key it waits for: keys take turns (pool/fairness.py)


class LeaseQueue:
    """Grants slots on usable accounts, now or in FIFO order, and takes them back."""

    def __init__(self, core: PoolCore, health: HealthKeeper, rng: random.Random) -> None:
        self._core = core
        self._health = health
        self._rng = rng
        settings = core.settings
        self._limits = Limits(per_account=settings.per_account_concurrency, queue_timeout=settings.queue_timeout)
        self.fair_use = FairUse(settings)  # max_requests_per_hour, min_request_gap (pool/fair_use.py)
        for acc in core.accounts.values():
            self.fair_use.consider(acc.settings)
        self._exits: collections.Counter[str] = collections.Counter()  # leases out per exit ("" = direct)
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._sequence = 0
        self._served: dict[str, int] = {}  # owner → sequence of its last grant (pool/fairness.py)
        self.leases_out = 0
        self._wake: asyncio.TimerHandle | None = None
        self._dispatching = False
        self._redispatch = False
        self.closed = False

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def waiting_by_owner(self) -> dict[str, int]:
        return dict(collections.Counter(waiter.owner for waiter in self._waiters))

    def exit_in_use(self, proxy: str | None) -> int:
        return self._exits.get(proxy or "", 0)

    def close(self) -> None:
        """Turn every waiter away; no new ones are queued."""
        self.closed = True
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(PoolExhausted(PoolReason.NONE_USABLE, SHUTTING_DOWN, 5.0))

    async def acquire(self, exclude: frozenset[str], prefer: str | None = None,
                      only: str | None = None, owner: str = "") -> AccountRecord:
        if only is not None:
            self._core.get(only)  # NOT_FOUND
            exclude = exclude | frozenset(i for i in self._core.accounts if i != only)
            return await self._acquire_observed(exclude, None, count_rejection=False, owner=owner)
        return await self._acquire_observed(exclude, prefer, count_rejection=not exclude, owner=owner)

    async def _acquire_observed(self, exclude: frozenset[str], prefer: str | None, *,
                                count_rejection: bool, owner: str = "") -> AccountRecord:
        """`_wait_for_account` with the queue wait and rejections told to the observer (a retry on
        another account, `exclude` non-empty, is a failover, not a rejection)."""
        observer = self._core.observer
        if observer is None:
            return await self._wait_for_account(exclude, prefer, owner)
        started = time.monotonic()
        try:
            account = await self._wait_for_account(exclude, prefer, owner)
        except PoolExhausted as refused:
            if count_rejection:
                observer.queue_rejected(refused.reason.value)
            raise
        observer.queue_waited(time.monotonic() - started)
        return account

    async def _wait_for_account(self, exclude: frozenset[str], prefer: str | None, owner: str = "") -> AccountRecord:
        if self.closed:
            raise PoolExhausted(PoolReason.NONE_USABLE, SHUTTING_DOWN, 5.0)
        self.dispatch()  # earlier waiters first
        now = self._core.clock()
        account = self._preferred(prefer, exclude, now) or self._choose(exclude, now)
        if account is not None:
            self._take(account)
            self._served[owner] = self._sequence
            return account
        timeout = self._core.settings.queue_timeout
        refusal = self._verdict(exclude, now, now + timeout)
        if refusal is not None:
            raise refusal
        if len(self._waiters) >= self._core.settings.queue_size:
            raise PoolExhausted(
                PoolReason.QUEUE_FULL,
                f"all accounts are busy and the wait queue is full ({len(self._waiters)} requests waiting)",
                BUSY_RETRY_AFTER,
            )
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), exclude, now + timeout, owner=owner)
        waiter.timer = loop.call_later(timeout, self._expire, waiter)
        self._waiters.append(waiter)
        self._schedule_wake()
        try:
            result = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            waiter.timer.cancel()
        if isinstance(result, PoolExhausted):
            raise result
        return result

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter was cancelled: leave the queue, or pass on a slot granted at the same moment."""
        future = waiter.future
        if future.done() and not future.cancelled():
            result = future.result()
            if isinstance(result, AccountRecord):
                self.release(result, None)
            return
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        now = self._core.clock()
        refusal = self._verdict(waiter.exclude, now, now)
        if refusal is None:
            refusal = exhausted(self._core.accounts.values(), PoolReason.ALL_BUSY, waiter.exclude, now, self._limits)
        waiter.future.set_result(refusal)

    def _preferred(self, prefer: str | None, exclude: frozenset[str], now: float) -> AccountRecord | None:
        """The preferred account when it can take a lease now and nobody is queued before us."""
        if prefer is None or prefer in exclude or self._waiters:
            return None
        acc = self._core.accounts.get(prefer)
        if acc is None or acc.in_use >= self._core.settings.per_account_concurrency or not acc.usable(now):
            return None
        if self.fair_use.active and self.fair_use.usable_at(acc.settings, now) is not None:
            return None
        return acc

    def _choose(self, exclude: frozenset[str], now: float) -> AccountRecord | None:
        accounts = self._core.accounts.values()
        if self.fair_use.active:  # accounts at their fair-use limit are skipped, not failed
            exclude = exclude | self.fair_use.held_back((a.settings for a in accounts), now)
        return choose(accounts, exclude, now, self._core.settings.per_account_concurrency, self._rng)

    def _take(self, acc: AccountRecord) -> None:
        acc.in_use += 1
        self._sequence += 1
        acc.last_used = self._sequence
        acc.requests += 1
        acc.counters_dirty = True
        self.leases_out += 1
        if self.fair_use.active:
            self.fair_use.note(acc.settings, self._core.clock())
        if acc.status.timed:  # its cooling/mute has passed
            self._health.set_state(acc, AccountStatus.READY, "")

    def opened(self, lease: AccountLease) -> None:
        """A lease was opened on a granted slot: count its exit."""
        self._exits[lease.proxy or ""] += 1

    def release(self, acc: AccountRecord, lease: AccountLease | None) -> None:
        """Give a slot back; `lease` is None when the slot was granted but no lease was opened."""
        acc.in_use -= 1
        self.leases_out -= 1
        if lease is not None:
            key = lease.proxy or ""
            self._exits[key] -= 1
            if self._exits[key] <= 0:
                del self._exits[key]
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters in FIFO order; turn away waiters that can no longer be served."""
        if self._dispatching:  # called again from inside (a grant changed a state): loop once more
            self._redispatch = True
            return
        self._dispatching = True
        try:
            self._redispatch = True
            while self._redispatch:
                self._redispatch = False
                self._serve_waiters()
        finally:
            self._dispatching = False
        self._schedule_wake()

    def _serve_waiters(self) -> None:
        now = self._core.clock()
        for waiter in fair_order(self._waiters, self._served):
            if waiter not in self._waiters:
                continue
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            account = self._choose(waiter.exclude, now)
            if account is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(account)
                self._take(account)
                self._served[waiter.owner] = self._sequence
                continue
            refusal = self._verdict(waiter.exclude, now, waiter.deadline)
            if refusal is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(refusal)

    def _schedule_wake(self) -> None:
        """While requests wait, wake up when the first cooling/muted account comes back."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if not self._waiters or self.closed:
            return
        clock, accounts = self._core.clock, self._core.accounts.values()
        wake_at = next_wake(accounts, clock())
        if self.fair_use.active:  # or when the first account held back by fair use may start again
            free_at = self.fair_use.next_free((a.settings for a in accounts), clock())
            if free_at is not None:
                wake_at = free_at if wake_at is None else min(wake_at, free_at)
        if wake_at is not None:
            loop = asyncio.get_running_loop()
            self._wake = loop.call_later(wake_at - clock() + 0.01, self.dispatch)

    def _verdict(self, exclude: frozenset[str], now: float, deadline: float) -> PoolExhausted | None:
        return verdict(self._core.accounts.values(), exclude, now, deadline, self._limits)


__all__ = ["LeaseQueue"]
