"""Account pool: who serves a request, and what we learned about each account.

Health transitions are pure (pool/health.py); the lease a request holds is pool/lease.py; this
module keeps the records, the FIFO queue and dispatch, logins and persistence.

A request owns a lease (DESIGN.md §1): `async with pool.lease() as lease:` waits in a bounded FIFO
queue for a free slot on a usable account and gives it back exactly once, whatever happens —
success, error, cancellation. The pool keeps each account's health (ready, cooling, muted, banned,
bad_credentials, disabled) and its token, persists both via the state store so a restart neither
logs every account in again nor forgets a ban, and logs each account in at most once at a time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from ..logs import redactor
from ..settings import AccountSettings, PoolSettings, redact_proxy
from ..store.base import AccountState, StateStore
from .dispatch import BUSY_RETRY_AFTER, Limits, choose, exhausted, next_wake, verdict
from .errors import EditRefusal, PoolEditRefused, PoolExhausted, PoolReason
from .fair_use import FairUse
from .fairness import fair_order
from .health import (
    DEAD_KINDS,
    STATES,
    TOKEN_EXPIRED,
    AccountStatus,
    Cooldowns,
    Health,
    after_error,
    parse_status,
    transition,
)
from .lease import AccountLease, LeaseContext
from .observe import PoolObserver
from .proxies import ProxyPool
from .record import AccountRecord, credentials_fingerprint, settle_fingerprint

logger = logging.getLogger(__name__)

READY, COOLING, MUTED = AccountStatus.READY, AccountStatus.COOLING, AccountStatus.MUTED
CONSOLE_DISABLED = "disabled from the console"
BANNED, BAD_CREDENTIALS, DISABLED = AccountStatus.BANNED, AccountStatus.BAD_CREDENTIALS, AccountStatus.DISABLED
NEEDS_TOKEN = AccountStatus.NEEDS_TOKEN


LoginFn = Callable[[AccountSettings, "str | None"], Awaitable[str]]


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[AccountRecord | PoolExhausted]
    exclude: frozenset[str]
    deadline: float  # pool clock
    timer: asyncio.TimerHandle | None = None
    queued_at: float = 0.0  # loop time, for the queue-wait metric
    owner: str = ""  # the API key it waits for: keys take turns (pool/fairness.py)


class AccountPool:
    """The operator's accounts, their health, and fair, bounded access to them."""

    def __init__(
        self,
        accounts: Sequence[AccountSettings],
        *,
        settings: PoolSettings,
        store: StateStore,
        proxies: ProxyPool | None = None,
        login: LoginFn,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        observer: PoolObserver | None = None,
    ) -> None:
        self._settings = settings
        self._limits = Limits(per_account=settings.per_account_concurrency, queue_timeout=settings.queue_timeout)
        self._cooldowns = Cooldowns(rate_limited=settings.cooldown_rate_limited, busy=settings.cooldown_busy)
        self._store = store
        self._proxies = proxies or ProxyPool([], enabled=False)
        self._login_fn = login
        self._clock = clock
        self._rng = rng or random.Random()
        self.observer = observer
        self._accounts: dict[str, AccountRecord] = {}
        for account in accounts:
            if account.id in self._accounts:
                raise ValueError(f"duplicate account id {account.id!r}")
            self._accounts[account.id] = self._record(account)
        self._exits: collections.Counter[str] = collections.Counter()  # leases out per exit ("" = direct)
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._sequence = 0
        self._served: dict[str, int] = {}  # owner → sequence of its last grant (pool/fairness.py)
        self._fair_use = FairUse(settings)  # max_requests_per_hour, min_request_gap (pool/fair_use.py)
        for account in accounts:
            self._fair_use.consider(account)
        self._leases_out = 0
        self._dirty: dict[str, AccountState] = {}
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._dispatching = False
        self._redispatch = False
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load persisted tokens and health states (the store's token wins over the config's)."""
        try:
            stored = await self._store.load()
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the gateway
            logger.warning("could not load account state (%s): starting from the config alone", exc)
            stored = {}
        accounts = list(self._accounts.values())
        settled = await asyncio.gather(*(
            asyncio.to_thread(settle_fingerprint, acc.settings, getattr(stored.get(acc.id), "credentials", ""))
            for acc in accounts))
        for acc, (fingerprint, _) in zip(accounts, settled, strict=True):
            acc.credentials = fingerprint
        for acc, (_, unchanged) in zip(accounts, settled, strict=True):
            state = stored.get(acc.id)
            if state is None:
                continue
            acc.requests, acc.failures = state.requests, state.failures
            if state.credentials and not unchanged:
                logger.info("account %s: login changed in config; forgetting its learned token", acc.id)
                if state.status in (COOLING, MUTED, BANNED):
                    self._restore(acc, state)
                self._persist(acc)
                continue
            if state.token:
                acc.token = state.token
                redactor.add(state.token)  # learned before the restart: masked like a fresh login's
            self._restore(acc, state)
        self._dispatch()

    @staticmethod
    def _record(account: AccountSettings) -> AccountRecord:
        record = AccountRecord(settings=account, credentials="", token=account.token)  # credentials: start()
        if not account.enabled:
            record.status, record.reason, record.config_disabled = DISABLED, "disabled in config", True
        return record

    def _restore(self, acc: AccountRecord, state: AccountState) -> None:
        if state.token and acc.token == state.token:
            acc.token_at = state.updated_at or None
        status = parse_status(state.status)
        if acc.config_disabled or status is None:
            return
        acc.status, acc.reason, acc.until, acc.updated_at = status, state.reason, state.until, state.updated_at
        if acc.status != READY:
            logger.info("account %s: %s (%s), restored from the state store", acc.id, acc.status, acc.reason)

    async def close(self) -> None:
        """Turn waiters away and flush pending state writes. The store stays open (the caller owns it)."""
        self._closed = True
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(PoolExhausted(PoolReason.NONE_USABLE, "the gateway is shutting down", 5.0))
        for acc in self._accounts.values():
            if acc.counters_dirty and not acc.config_disabled:
                self._persist(acc)
        await self.flush()
        if self._dirty:  # writes that failed meanwhile: one last try before the process goes
            await self._write_pending()

    async def flush(self) -> None:
        """Wait until every state change so far is in the store."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def prewarm(self) -> int:
        """Log in, one after another, every usable account that has no token yet; returns how many."""
        done = 0
        for acc in list(self._accounts.values()):
            if acc.token is not None or not acc.usable(self._clock()) or not acc.settings.can_login:
                continue
            proxy = self._proxies.exit_for(acc.settings)
            lease = AccountLease(self, acc, proxy)
            try:
                await lease.token()
                done += 1
            except UpstreamFailure as exc:
                logger.warning("account %s: prewarm login failed (%s)", acc.id, exc.error.kind.value)
        return done

    # ---- leasing ---------------------------------------------------------------------

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None, owner: str = "") -> LeaseContext:
        """`async with pool.lease(exclude=tried) as lease:` — raises `PoolExhausted` when none is free.

        `prefer`: an account to take when it has a free slot right now (one client session kept on one
        account); only a hint — when it is busy, any other free account is taken, never waited for.
        `only`: this account and no other (the console's "test now" and pinned tester); it waits in
        the same FIFO queue as everybody, so the one-stream-per-account rule holds.
        `owner`: whose request it is (an API key's name); waiting owners take turns (pool/fairness.py)."""
        return LeaseContext(self, frozenset(exclude), prefer, only, owner)

    @property
    def leases_out(self) -> int:
        return self._leases_out

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def waiting_by_owner(self) -> dict[str, int]:
        """Requests waiting per owner (API key name): the console's queue per key."""
        return dict(collections.Counter(waiter.owner for waiter in self._waiters))

    @property
    def usable_count(self) -> int:
        now = self._clock()
        return sum(1 for acc in self._accounts.values() if acc.usable(now))

    @property
    def capacity(self) -> int:
        """Concurrent requests the usable accounts can take (to size HTTP client pools)."""
        return self.usable_count * self._settings.per_account_concurrency

    def assert_idle(self) -> None:
        """Raise AssertionError unless every lease is back and nobody waits (test invariant)."""
        busy = {acc.id: acc.in_use for acc in self._accounts.values() if acc.in_use}
        if self._leases_out or busy or self._waiters:
            raise AssertionError(
                f"pool not idle: leases_out={self._leases_out}, in_use={busy}, waiting={len(self._waiters)}"
            )

    async def _acquire(self, exclude: frozenset[str], prefer: str | None = None,
                       only: str | None = None, owner: str = "") -> AccountRecord:
        if only is not None:
            if only not in self._accounts:
                raise PoolEditRefused(EditRefusal.NOT_FOUND, f"no account {only!r}")
            exclude = exclude | frozenset(i for i in self._accounts if i != only)
            return await self._acquire_observed(exclude, None, count_rejection=False, owner=owner)
        return await self._acquire_observed(exclude, prefer, count_rejection=not exclude, owner=owner)

    async def _acquire_observed(self, exclude: frozenset[str], prefer: str | None, *,
                                count_rejection: bool, owner: str = "") -> AccountRecord:
        """`_wait_for_account` with the queue wait and rejections told to the observer (a retry on
        another account, `exclude` non-empty, is a failover, not a rejection)."""
        observer = self.observer
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
        if self._closed:
            raise PoolExhausted(PoolReason.NONE_USABLE, "the gateway is shutting down", 5.0)
        self._dispatch()  # earlier waiters first
        now = self._clock()
        account = self._preferred(prefer, exclude, now) or self._choose(exclude, now)
        if account is not None:
            self._take(account)
            self._served[owner] = self._sequence
            return account
        timeout = self._settings.queue_timeout
        verdict = self._verdict(exclude, now, now + timeout)
        if verdict is not None:
            raise verdict
        if len(self._waiters) >= self._settings.queue_size:
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
                self._release(result, None)
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
        now = self._clock()
        verdict = self._verdict(waiter.exclude, now, now)
        if verdict is None:
            verdict = self._exhausted(PoolReason.ALL_BUSY, waiter.exclude, now)
        waiter.future.set_result(verdict)

    def _preferred(self, prefer: str | None, exclude: frozenset[str], now: float) -> AccountRecord | None:
        """The preferred account when it can take a lease now and nobody is queued before us."""
        if prefer is None or prefer in exclude or self._waiters:
            return None
        acc = self._accounts.get(prefer)
        if acc is None or acc.in_use >= self._settings.per_account_concurrency or not acc.usable(now):
            return None
        if self._fair_use.active and self._fair_use.usable_at(acc.settings, now) is not None:
            return None
        return acc

    def _choose(self, exclude: frozenset[str], now: float) -> AccountRecord | None:
        if self._fair_use.active:  # accounts at their fair-use limit are skipped, not failed
            exclude = exclude | self._fair_use.held_back((a.settings for a in self._accounts.values()), now)
        return choose(self._accounts.values(), exclude, now, self._settings.per_account_concurrency, self._rng)

    def fair_use_until(self, account_id: str) -> float | None:
        """When an account held back by its fair-use limits may start a turn again (None: now)."""
        return self._fair_use.usable_at(self._get(account_id).settings, self._clock())

    def fair_use(self) -> list[dict[str, object]]:
        """Every account's fair-use limits, use in the last hour and time until usable (the console)."""
        now = self._clock()
        rows: list[dict[str, object]] = []
        for acc in self._accounts.values():
            per_hour, gap = self._fair_use.limits(acc.settings)
            at = self._fair_use.usable_at(acc.settings, now)
            rows.append({"id": acc.id, "max_requests_per_hour": per_hour, "min_request_gap": gap,
                         "requests_last_hour": self._fair_use.requests_last_hour(acc.id, now),
                         "usable_in": round(at - now, 1) if at is not None else 0.0})
        return rows

    def _take(self, acc: AccountRecord) -> None:
        acc.in_use += 1
        self._sequence += 1
        acc.last_used = self._sequence
        acc.requests += 1
        acc.counters_dirty = True
        self._leases_out += 1
        if self._fair_use.active:
            self._fair_use.note(acc.settings, self._clock())
        if acc.status.timed:  # its cooling/mute has passed
            self._set_state(acc, READY, "")

    def _open_lease(self, acc: AccountRecord) -> AccountLease:
        proxy = self._proxies.exit_for(acc.settings)
        lease = AccountLease(self, acc, proxy)
        self._exits[proxy or ""] += 1
        return lease

    def _release(self, acc: AccountRecord, lease: AccountLease | None) -> None:
        """Give a slot back; `lease` is None when the slot was granted but no lease was opened."""
        acc.in_use -= 1
        self._leases_out -= 1
        if lease is not None:
            key = lease.proxy or ""
            self._exits[key] -= 1
            if self._exits[key] <= 0:
                del self._exits[key]
        self._dispatch()

    def _dispatch(self) -> None:
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
        now = self._clock()
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
            verdict = self._verdict(waiter.exclude, now, waiter.deadline)
            if verdict is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(verdict)

    def _schedule_wake(self) -> None:
        """While requests wait, wake up when the first cooling/muted account comes back."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if not self._waiters or self._closed:
            return
        wake_at = next_wake(self._accounts.values(), self._clock())
        if self._fair_use.active:  # or when the first account held back by fair use may start again
            free_at = self._fair_use.next_free((a.settings for a in self._accounts.values()), self._clock())
            if free_at is not None:
                wake_at = free_at if wake_at is None else min(wake_at, free_at)
        if wake_at is not None:
            loop = asyncio.get_running_loop()
            self._wake = loop.call_later(wake_at - self._clock() + 0.01, self._dispatch)

    def _verdict(self, exclude: frozenset[str], now: float, deadline: float) -> PoolExhausted | None:
        return verdict(self._accounts.values(), exclude, now, deadline, self._limits)

    def _exhausted(self, reason: PoolReason, exclude: frozenset[str], now: float) -> PoolExhausted:
        return exhausted(self._accounts.values(), reason, exclude, now, self._limits)

    # ---- health and tokens -----------------------------------------------------------

    async def _login(self, acc: AccountRecord, lease: AccountLease) -> None:
        """Log `acc` in (caller holds its login lock); apply the failure's state change, re-raise."""
        if acc.status in DEAD_KINDS:
            raise UpstreamFailure(UpstreamError(DEAD_KINDS[acc.status], f"account {acc.status}: {acc.reason}"))
        if not acc.settings.can_login:  # a token-only account whose token died: no re-login loop
            self._set_state(acc, NEEDS_TOKEN, TOKEN_EXPIRED)
            raise UpstreamFailure(UpstreamError(ErrorKind.NEEDS_TOKEN, TOKEN_EXPIRED))
        try:
            token = await self._login_fn(acc.settings, lease.proxy)
        except UpstreamFailure as exc:
            self._observe_login(exc.error.kind.value)
            self._note_error(acc, exc.error)
            self._apply_error(acc, exc.error, lease.proxy)
            raise
        if not token:
            self._observe_login(ErrorKind.PROTOCOL.value)
            raise UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, "login answered without a token"))
        self._observe_login("ok")
        acc.token = token
        acc.token_at = self._clock()
        acc.suspect_token = token if acc.token_rejected else None
        acc.token_rejected = False
        acc.updated_at = self._clock()
        logger.info("account %s: logged in%s", acc.id, " again" if acc.suspect_token else "")
        self._proxies.report_success(lease.proxy)
        self._persist(acc)

    def _observe_login(self, result: str) -> None:
        if self.observer is not None:
            self.observer.login(result)

    def _note_error(self, acc: AccountRecord, error: UpstreamError) -> None:
        """Remember the last failure for the console (kind and message: no secret is in either)."""
        acc.last_error = f"{error.kind.value}: {error.message}"
        acc.last_error_at = self._clock()

    def now(self) -> float:
        """The pool's clock (unix seconds): what `until`, `last_success` … are measured in."""
        return self._clock()

    def _forget_token(self, acc: AccountRecord) -> None:
        if acc.token is not None:
            acc.token = None
            acc.updated_at = self._clock()
            self._persist(acc)

    def _token_rejected_twice(self, acc: AccountRecord, *, raise_error: bool = True) -> None:
        """A fresh token was refused too. The login itself worked, so the password is fine: the account
        cools down (`cooldown_rate_limited`; no login loop, which could attract a mute) instead of being
        marked bad_credentials for good — a passing glitch must not cost an account until the operator
        steps in. The first token after the cool-down is on probation again."""
        message = "token rejected right after a fresh login"
        acc.token = None
        acc.suspect_token = None
        acc.token_rejected = True
        self._set_state(acc, COOLING, message, self._clock() + self._settings.cooldown_rate_limited)
        self._persist(acc)
        if raise_error:
            raise UpstreamFailure(UpstreamError(ErrorKind.TOKEN_INVALID, message))

    def _count_failure(self, acc: AccountRecord) -> None:
        acc.failures += 1
        acc.consecutive_failures += 1
        acc.counters_dirty = True

    def _apply_error(self, acc: AccountRecord, error: UpstreamError, proxy: str | None) -> None:
        if error.kind.gateway_wide:  # the gateway's identity is refused, not this account
            return
        if error.kind is ErrorKind.EMPTY_ANSWER:
            acc.empty_answers += 1
        self._count_failure(acc)
        health = after_error(error, self._clock(), self._cooldowns)
        if health is not None:
            self._set_state(acc, health.status, health.reason, health.until)
        elif error.kind in (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED):
            self._proxies.report_failure(proxy)

    def _set_state(self, acc: AccountRecord, status: AccountStatus, reason: str, until: float | None = None) -> None:
        now = self._clock()
        change = transition(acc.health, Health(status, reason, until), now)
        if change is None:
            return
        status, until = change.status, change.until
        if self.observer is not None and acc.status != status:
            self.observer.account_transition(acc.status.value, status.value)
        acc.status, acc.reason, acc.until, acc.updated_at = status, reason, until, now
        if until is not None:
            logger.info("account %s: %s for %.0fs (%s)", acc.id, status, until - now, reason)
        else:
            logger.info("account %s: %s%s", acc.id, status, f" ({reason})" if reason else "")
        self._persist(acc)
        self._dispatch()  # waiters may have lost their last hope, or the wake time moved

    def _persist(self, acc: AccountRecord) -> None:
        """Queue the account's state for the store (written in order, off the loop, coalesced)."""
        if acc.config_disabled:
            return
        acc.counters_dirty = False
        self._dirty[acc.id] = acc.snapshot()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        failed: dict[str, AccountState] = {}
        while self._dirty:
            account_id = next(iter(self._dirty))
            state = self._dirty.pop(account_id)
            try:
                await self._store.save(account_id, state)
            except Exception as exc:  # noqa: BLE001 - a failed write is retried with the next change
                logger.warning("account %s: could not save its state (%s)", account_id, exc)
                failed[account_id] = state
            else:
                failed.pop(account_id, None)  # a newer state of it is in
        for account_id, state in failed.items():  # kept for the next write (or close), unless newer queued
            if account_id in self._accounts:
                self._dirty.setdefault(account_id, state)

    # ---- console operations ----------------------------------------------------------

    def _get(self, account_id: str) -> AccountRecord:
        acc = self._accounts.get(account_id)
        if acc is None:
            raise PoolEditRefused(EditRefusal.NOT_FOUND, f"no account {account_id!r}")
        return acc

    def record(self, account_id: str) -> AccountRecord:
        """The live record of one account, to read (the console's views); raises NOT_FOUND."""
        return self._get(account_id)

    def records(self) -> list[AccountRecord]:
        """Every account's live record, in config order then runtime additions (to read only)."""
        return list(self._accounts.values())

    def exit_in_use(self, proxy: str | None) -> int:
        """Leases out right now through this exit (None or "": direct)."""
        return self._exits.get(proxy or "", 0)

    def clear_cooldown(self, account_id: str) -> bool:
        """End a cooling or mute now; False when the account was not cooling or muted."""
        acc = self._get(account_id)
        if not acc.status.timed:
            return False
        acc.token_rejected = False
        self._set_state(acc, READY, "")
        return True

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        """Disable (no new leases; running ones finish) or enable again, persisted in the state store.

        An account disabled in config.json stays disabled after a restart: the file wins."""
        acc = self._get(account_id)
        if not enabled:
            self._set_state(acc, DISABLED, CONSOLE_DISABLED)
        elif acc.status == DISABLED:
            acc.config_disabled = False
            self._set_state(acc, READY, "")

    async def add_account(self, account: AccountSettings) -> None:
        """A new account, usable at once (the console's add and bulk import). Raises EXISTS."""
        if account.id in self._accounts:
            raise PoolEditRefused(EditRefusal.EXISTS, f"account {account.id!r} is in the pool already")
        fingerprint = await asyncio.to_thread(credentials_fingerprint, account)
        if account.id in self._accounts:  # added meanwhile
            raise PoolEditRefused(EditRefusal.EXISTS, f"account {account.id!r} is in the pool already")
        record = self._record(account)
        record.credentials = fingerprint
        self._fair_use.consider(account)
        self._accounts[account.id] = record
        logger.info("account %s: added", account.id)
        self._dispatch()

    def remove_account(self, account_id: str) -> None:
        """Take an account out of the pool; refused (IN_USE) while it holds a lease."""
        acc = self._get(account_id)
        if acc.in_use:
            raise PoolEditRefused(EditRefusal.IN_USE, f"account {account_id!r} is serving {acc.in_use} request(s); "
                                                      "disable it and remove it once they finished")
        del self._accounts[account_id]
        self._dirty.pop(account_id, None)
        logger.info("account %s: removed", account_id)
        self._dispatch()

    async def relogin(self, account_id: str) -> UpstreamError | None:
        """Drop the token and log in again now (one login per account at a time). Returns what a
        failed login said (its state change already applied), None when it worked."""
        acc = self._get(account_id)
        lease = AccountLease(self, acc, self._proxies.exit_for(acc.settings))
        async with acc.login_lock:
            if acc.status in (BANNED, BAD_CREDENTIALS, NEEDS_TOKEN) and acc.settings.can_login:
                self._set_state(acc, READY, "")  # the operator asks for a fresh try
            self._forget_token(acc)
            acc.suspect_token = None
            try:
                await self._login(acc, lease)
            except UpstreamFailure as failure:
                return failure.error
        return None

    def set_token(self, account_id: str, token: str) -> None:
        """Use a token the operator pasted (already checked upstream by the caller), from now on and
        after a restart (persisted like a learned token). A needs_token / bad_credentials account is ready
        again; a ban, mute or console disable stays."""
        acc = self._get(account_id)
        redactor.add(token)
        acc.token = token
        acc.token_at = self._clock()
        acc.suspect_token = None
        acc.token_rejected = False
        acc.updated_at = self._clock()
        logger.info("account %s: token set from the console", acc.id)
        if acc.status in (NEEDS_TOKEN, BAD_CREDENTIALS):
            self._set_state(acc, READY, "")
        self._persist(acc)
        self._dispatch()

    # ---- reporting -------------------------------------------------------------------

    def status(self) -> list[dict[str, object]]:
        """Per-account view for /ready and `check` — never a token or password."""
        now = self._clock()
        rows: list[dict[str, object]] = []
        for acc in self._accounts.values():
            state = acc.effective_status(now)
            if acc.settings.proxy:
                proxy = redact_proxy(acc.settings.proxy)
            elif self._proxies.active:
                assigned = self._proxies.assigned(acc.id) if self._proxies.strategy == "sticky" else None
                proxy = redact_proxy(assigned) if assigned is not None else f"pool ({self._proxies.strategy})"
            else:
                proxy = "direct"
            rows.append(
                {
                    "id": acc.id,
                    "state": state,
                    "reason": "" if state == READY else acc.reason,
                    "until": acc.until if state.timed else None,
                    "in_use": acc.in_use,
                    "has_token": acc.token is not None,
                    "proxy": proxy,
                    "requests": acc.requests,
                    "failures": acc.failures,
                    "empty_answers": acc.empty_answers,
                }
            )
        return rows

    def account_ids(self) -> Iterable[str]:
        return list(self._accounts)

    mode = "single"  # pool/interface.py `Pool`: this process's own pool

    def proxy_status(self) -> list[dict[str, object]]:
        """The egress proxies' use and quarantine, URLs redacted."""
        return self._proxies.stats()

    async def snapshot(self) -> dict[str, Any]:
        """The pool for the console (the shared pool adds its replicas)."""
        return {"mode": self.mode, "leases": self.leases_out, "waiting": self.waiting, "accounts": self.status(),
                "proxies": self.proxy_status()}

    def idle_accounts(self) -> list[tuple[AccountSettings, str]]:
        """(account, its current token) for every usable account with a token and no lease out.

        For the turn prewarmer (chat/prewarm.py, `pool.prewarm`); the tokens must never be logged.
        """
        now = self._clock()
        return [(acc.settings, acc.token) for acc in self._accounts.values()
                if acc.in_use == 0 and acc.token is not None and acc.usable(now)]


__all__ = [
    "STATES",
    "AccountLease",
    "AccountPool",
    "AccountStatus",
    "PoolExhausted",
    "PoolReason",
]
