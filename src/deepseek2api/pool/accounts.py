"""Account pool: who serves a request, and what we learned about each account.

A request owns a lease (DESIGN.md §1): `async with pool.lease() as lease:` waits in a bounded FIFO
queue for a free slot on a usable account and gives it back exactly once, whatever happens —
success, error, cancellation. The pool keeps each account's health (ready, cooling, muted, banned,
bad_credentials, disabled) and its token, persists both via the state store so a restart neither
logs every account in again nor forgets a ban, and logs each account in at most once at a time.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import os
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Awaitable, Callable, Collection, Iterable, Sequence

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from ..settings import AccountSettings, PoolSettings, redact_proxy
from ..store.base import AccountState, StateStore
from .proxies import ProxyPool

logger = logging.getLogger("deepseek2api.pool")

READY = "ready"
COOLING = "cooling"
MUTED = "muted"
BANNED = "banned"
BAD_CREDENTIALS = "bad_credentials"
DISABLED = "disabled"
STATES = (READY, COOLING, MUTED, BANNED, BAD_CREDENTIALS, DISABLED)
_TIMED = (COOLING, MUTED)  # come back by themselves once `until` has passed
_DEAD = (BANNED, BAD_CREDENTIALS, DISABLED)  # only the operator brings these back

MAX_COOLING_RETRY_AFTER = 120.0  # cap of retry_after when everything is cooling / muted
BUSY_RETRY_AFTER = 5.0  # rough guess of when a slot frees up
DEFAULT_MUTE_SECONDS = 3600.0  # a mute without mute_until

LoginFn = Callable[[AccountSettings, "str | None"], Awaitable[str]]


class PoolExhausted(Exception):
    """No account can take this request now.

    `reason`: "all_busy" (every usable account at its concurrency cap for the whole wait),
    "all_cooling" (every usable account rate limited / muted for a while), "none_usable" (nothing
    can serve: no accounts, all banned / bad credentials / disabled, or all already tried),
    "queue_full" (too many requests already waiting). `retry_after` is a hint in seconds.
    """

    def __init__(self, reason: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


FINGERPRINT_ITERATIONS = 20_000
"""PBKDF2-SHA256 rounds of the credentials fingerprint: a few ms per account, once at start."""
_FINGERPRINT_SCHEME = "pbkdf2-sha256"


def credentials_fingerprint(account: AccountSettings, salt: bytes | None = None) -> str:
    """A salted, slow digest of the configured login, so a config change invalidates learned state.

    It is stored beside the account's state, so it must not reveal the password: a 64-bit unsalted
    SHA-256 gave a weak password away in 0.05 s (issue 17 item 7). Blocking (milliseconds): the pool
    computes it in a worker thread. A fingerprint in the old format never matches, which only costs
    one fresh login per account after the upgrade.
    """
    material = "\0".join(
        [account.id, account.email or "", account.mobile or "", account.password or "", account.token or ""]
    )
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", b"deepseek2api-credentials\0" + material.encode(), salt,
                                 FINGERPRINT_ITERATIONS)
    return f"{_FINGERPRINT_SCHEME}${FINGERPRINT_ITERATIONS}${salt.hex()}${digest.hex()}"


def credentials_match(fingerprint: str, account: AccountSettings) -> bool:
    """True when `fingerprint` (as stored) was made from this account's configured login."""
    parts = fingerprint.split("$")
    if len(parts) != 4 or parts[0] != _FINGERPRINT_SCHEME or parts[1] != str(FINGERPRINT_ITERATIONS):
        return False
    try:
        salt = bytes.fromhex(parts[2])
    except ValueError:
        return False
    return hmac.compare_digest(credentials_fingerprint(account, salt), fingerprint)


def _settle_fingerprint(account: AccountSettings, stored: str) -> tuple[str, bool]:
    """(fingerprint to keep, whether the stored one still matches): one slow hash either way."""
    if stored and credentials_match(stored, account):
        return stored, True
    return credentials_fingerprint(account), False


@dataclass(eq=False)
class _Account:
    """The pool's live record of one account (mutated only on the event loop)."""

    settings: AccountSettings
    credentials: str
    status: str = READY
    reason: str = ""
    until: float | None = None
    token: str | None = None
    updated_at: float = 0.0
    in_use: int = 0
    last_used: int = 0  # sequence number of the last grant (LRU rotation)
    requests: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    counters_dirty: bool = False
    token_rejected: bool = False  # the last token was refused: the next login is a re-login
    suspect_token: str | None = None  # token from a re-login not yet confirmed by a success
    login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def id(self) -> str:
        return self.settings.id

    def usable(self, now: float) -> bool:
        if self.status == READY:
            return True
        return self.status in _TIMED and (self.until is None or self.until <= now)

    def effective_status(self, now: float) -> str:
        return READY if self.status in _TIMED and self.usable(now) else self.status

    def snapshot(self) -> AccountState:
        return AccountState(
            token=self.token,
            status=self.status,
            reason=self.reason,
            until=self.until,
            updated_at=self.updated_at,
            credentials=self.credentials,
            requests=self.requests,
            failures=self.failures,
        )


@dataclass(eq=False)
class _Waiter:
    future: "asyncio.Future[_Account | PoolExhausted]"
    exclude: frozenset[str]
    deadline: float  # pool clock
    timer: asyncio.TimerHandle | None = None


class AccountLease:
    """One request's hold on one account: its token, its proxy, and how to report what happened."""

    def __init__(self, pool: "AccountPool", account: _Account, proxy: str | None) -> None:
        self._pool = pool
        self._account = account
        self.account_id: str = account.id
        self.account: AccountSettings = account.settings
        self.proxy: str | None = proxy
        self._seen: str | None = None  # the token this lease handed out
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    async def token(self) -> str:
        """The account's token; logs in first when there is none (one login at a time per account)."""
        acc = self._account
        if acc.token is None:
            async with acc.login_lock:
                if acc.token is None:
                    await self._pool._login(acc, self)
        assert acc.token is not None
        self._seen = acc.token
        return acc.token

    async def relogin(self) -> str:
        """A fresh token after TOKEN_INVALID. If the previous re-login's token was refused too
        (no success in between), the account cools down instead (TOKEN_INVALID is raised)."""
        acc = self._account
        async with acc.login_lock:
            if acc.token is not None and acc.token != self._seen:
                self._seen = acc.token  # another lease already refreshed it
                return acc.token
            if self._seen is not None and self._seen == acc.suspect_token:
                self._pool._token_rejected_twice(acc)
            acc.token_rejected = True
            self._pool._forget_token(acc)
            await self._pool._login(acc, self)
        assert acc.token is not None
        self._seen = acc.token
        return acc.token

    def report(self, error: UpstreamError) -> None:
        """What went wrong with this account/exit; changes its health state as needed."""
        acc = self._account
        if error.kind is ErrorKind.TOKEN_INVALID:
            self._pool._count_failure(acc)
            if acc.token is not None and self._seen is not None and acc.token != self._seen:
                return  # a token already replaced was refused: nothing new
            if self._seen is not None and self._seen == acc.suspect_token:
                self._pool._token_rejected_twice(acc, raise_error=False)
                return
            acc.token_rejected = True
            self._pool._forget_token(acc)
            return
        self._pool._apply_error(acc, error, self.proxy)

    def report_success(self) -> None:
        """The account and exit worked: clear failure streaks and confirm a re-login."""
        acc = self._account
        acc.consecutive_failures = 0
        if acc.suspect_token is not None and acc.suspect_token == self._seen:
            acc.suspect_token = None
        self._pool._proxies.report_success(self.proxy)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._pool._release(self._account)

    def __repr__(self) -> str:
        return f"AccountLease(account_id={self.account_id!r}, proxy={redact_proxy(self.proxy)!r})"


class _LeaseContext:
    """`async with pool.lease() as lease:` — acquire on enter, release exactly once on exit."""

    def __init__(self, pool: "AccountPool", exclude: frozenset[str]) -> None:
        self._pool = pool
        self._exclude = exclude
        self._lease: AccountLease | None = None

    async def __aenter__(self) -> AccountLease:
        account = await self._pool._acquire(self._exclude)
        try:
            self._lease = self._pool._open_lease(account)
        except BaseException:
            self._pool._release(account)
            raise
        return self._lease

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._lease is not None:
            self._lease._release()


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
    ) -> None:
        self._settings = settings
        self._store = store
        self._proxies = proxies or ProxyPool([], enabled=False)
        self._login_fn = login
        self._clock = clock
        self._rng = rng or random.Random()
        self._accounts: dict[str, _Account] = {}
        for account in accounts:
            if account.id in self._accounts:
                raise ValueError(f"duplicate account id {account.id!r}")
            record = _Account(settings=account, credentials="", token=account.token)  # set in start()
            if not account.enabled:
                record.status, record.reason = DISABLED, "disabled in config"
            self._accounts[account.id] = record
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._sequence = 0
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
        except Exception as exc:  # a broken store must not stop the gateway
            logger.warning("could not load account state (%s): starting from the config alone", exc)
            stored = {}
        accounts = list(self._accounts.values())
        settled = await asyncio.gather(*(
            asyncio.to_thread(_settle_fingerprint, acc.settings, getattr(stored.get(acc.id), "credentials", ""))
            for acc in accounts))
        for acc, (fingerprint, _) in zip(accounts, settled):
            acc.credentials = fingerprint
        for acc, (_, unchanged) in zip(accounts, settled):
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
            self._restore(acc, state)
        self._dispatch()

    def _restore(self, acc: _Account, state: AccountState) -> None:
        if acc.status == DISABLED or state.status not in STATES or state.status == DISABLED:
            return
        acc.status, acc.reason, acc.until, acc.updated_at = state.status, state.reason, state.until, state.updated_at
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
                waiter.future.set_result(PoolExhausted("none_usable", "the gateway is shutting down", 5.0))
        for acc in self._accounts.values():
            if acc.counters_dirty and acc.status != DISABLED:
                self._persist(acc)
        await self.flush()

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
            proxy = acc.settings.proxy or self._proxies.pick(acc.id)
            lease = AccountLease(self, acc, proxy)
            try:
                await lease.token()
                done += 1
            except UpstreamFailure as exc:
                logger.warning("account %s: prewarm login failed (%s)", acc.id, exc.error.kind.value)
        return done

    # ---- leasing ---------------------------------------------------------------------

    def lease(self, *, exclude: Collection[str] = ()) -> _LeaseContext:
        """`async with pool.lease(exclude=tried) as lease:` — raises `PoolExhausted` when none is free."""
        return _LeaseContext(self, frozenset(exclude))

    @property
    def leases_out(self) -> int:
        return self._leases_out

    @property
    def waiting(self) -> int:
        return len(self._waiters)

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

    async def _acquire(self, exclude: frozenset[str]) -> _Account:
        if self._closed:
            raise PoolExhausted("none_usable", "the gateway is shutting down", 5.0)
        self._dispatch()  # earlier waiters first
        now = self._clock()
        account = self._choose(exclude, now)
        if account is not None:
            self._take(account)
            return account
        timeout = self._settings.queue_timeout
        verdict = self._verdict(exclude, now, now + timeout)
        if verdict is not None:
            raise verdict
        if len(self._waiters) >= self._settings.queue_size:
            raise PoolExhausted(
                "queue_full",
                f"all accounts are busy and the wait queue is full ({len(self._waiters)} requests waiting)",
                BUSY_RETRY_AFTER,
            )
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), exclude, now + timeout)
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
            if isinstance(result, _Account):
                self._release(result)
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
            verdict = self._exhausted("all_busy", waiter.exclude, now)
        waiter.future.set_result(verdict)

    def _choose(self, exclude: frozenset[str], now: float) -> _Account | None:
        """Least recently used usable account with a free slot (fewest in use first), random tie-break."""
        cap = self._settings.per_account_concurrency
        candidates = [
            acc
            for acc in self._accounts.values()
            if acc.in_use < cap and acc.id not in exclude and acc.usable(now)
        ]
        if not candidates:
            return None
        best = min((acc.in_use, acc.last_used) for acc in candidates)
        return self._rng.choice([acc for acc in candidates if (acc.in_use, acc.last_used) == best])

    def _take(self, acc: _Account) -> None:
        acc.in_use += 1
        self._sequence += 1
        acc.last_used = self._sequence
        acc.requests += 1
        acc.counters_dirty = True
        self._leases_out += 1
        if acc.status in _TIMED:  # its cooling/mute has passed
            self._set_state(acc, READY, "")

    def _open_lease(self, acc: _Account) -> AccountLease:
        proxy = acc.settings.proxy or self._proxies.pick(acc.id)
        return AccountLease(self, acc, proxy)

    def _release(self, acc: _Account) -> None:
        acc.in_use -= 1
        self._leases_out -= 1
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
        for waiter in list(self._waiters):
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
        now = self._clock()
        pending = [
            acc.until for acc in self._accounts.values() if acc.status in _TIMED and acc.until and acc.until > now
        ]
        if pending:
            loop = asyncio.get_running_loop()
            self._wake = loop.call_later(min(pending) - now + 0.01, self._dispatch)

    def _verdict(self, exclude: frozenset[str], now: float, deadline: float) -> PoolExhausted | None:
        """None when waiting until `deadline` can help; else why not."""
        candidates = [acc for acc in self._accounts.values() if acc.id not in exclude]
        if any(acc.usable(now) for acc in candidates):
            return None
        pending = [acc.until for acc in candidates if acc.status in _TIMED and acc.until and acc.until > now]
        if pending:
            if min(pending) <= deadline:
                return None
            return self._exhausted("all_cooling", exclude, now)
        return self._exhausted("none_usable", exclude, now)

    def _exhausted(self, reason: str, exclude: frozenset[str], now: float) -> PoolExhausted:
        accounts = list(self._accounts.values())
        if reason == "all_busy":
            usable = sum(1 for acc in accounts if acc.usable(now) and acc.id not in exclude)
            return PoolExhausted(
                reason,
                f"all {usable} usable accounts are busy (at most {self._settings.per_account_concurrency} "
                f"request(s) each); waited {self._settings.queue_timeout:g}s",
                BUSY_RETRY_AFTER,
            )
        if reason == "all_cooling":
            pending = [
                acc.until
                for acc in accounts
                if acc.id not in exclude and acc.status in _TIMED and acc.until and acc.until > now
            ]
            wait = min(pending) - now if pending else BUSY_RETRY_AFTER
            return PoolExhausted(
                reason,
                f"all usable accounts are cooling down (rate limited, busy or muted); the first is back in {wait:.0f}s",
                float(min(MAX_COOLING_RETRY_AFTER, max(1.0, wait))),
            )
        if not accounts:
            return PoolExhausted(reason, "no accounts are configured", 60.0)
        tried = sum(1 for acc in accounts if acc.id in exclude and acc.usable(now))
        if tried:
            return PoolExhausted(reason, f"every usable account ({tried}) was already tried for this request", 1.0)
        counts = collections.Counter(acc.status for acc in accounts)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return PoolExhausted(reason, f"no usable account ({summary})", 60.0)

    # ---- health and tokens -----------------------------------------------------------

    async def _login(self, acc: _Account, lease: AccountLease) -> None:
        """Log `acc` in (caller holds its login lock); apply the failure's state change, re-raise."""
        if acc.status in (BANNED, BAD_CREDENTIALS):
            raise UpstreamFailure(UpstreamError(_DEAD_KINDS[acc.status], f"account {acc.status}: {acc.reason}"))
        if not acc.settings.can_login:
            message = "token rejected and no password configured to log in again"
            self._set_state(acc, BAD_CREDENTIALS, message)
            raise UpstreamFailure(UpstreamError(ErrorKind.BAD_CREDENTIALS, message))
        try:
            token = await self._login_fn(acc.settings, lease.proxy)
        except UpstreamFailure as exc:
            self._apply_error(acc, exc.error, lease.proxy)
            raise
        if not token:
            raise UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, "login answered without a token"))
        acc.token = token
        acc.suspect_token = token if acc.token_rejected else None
        acc.token_rejected = False
        acc.updated_at = self._clock()
        logger.info("account %s: logged in%s", acc.id, " again" if acc.suspect_token else "")
        self._proxies.report_success(lease.proxy)
        self._persist(acc)

    def _forget_token(self, acc: _Account) -> None:
        if acc.token is not None:
            acc.token = None
            acc.updated_at = self._clock()
            self._persist(acc)

    def _token_rejected_twice(self, acc: _Account, *, raise_error: bool = True) -> None:
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

    def _count_failure(self, acc: _Account) -> None:
        acc.failures += 1
        acc.consecutive_failures += 1
        acc.counters_dirty = True

    def _apply_error(self, acc: _Account, error: UpstreamError, proxy: str | None) -> None:
        kind = error.kind
        self._count_failure(acc)
        now = self._clock()
        if kind is ErrorKind.RATE_LIMITED:
            seconds = error.retry_after if error.retry_after is not None else self._settings.cooldown_rate_limited
            self._set_state(acc, COOLING, f"rate limited: {error.message}", now + seconds)
        elif kind is ErrorKind.BUSY:
            self._set_state(acc, COOLING, f"busy: {error.message}", now + self._settings.cooldown_busy)
        elif kind is ErrorKind.ACCOUNT_MUTED:
            until = error.until if error.until is not None and error.until > now else now + DEFAULT_MUTE_SECONDS
            self._set_state(acc, MUTED, error.message, until)
        elif kind is ErrorKind.ACCOUNT_BANNED:
            self._set_state(acc, BANNED, error.message)
        elif kind is ErrorKind.BAD_CREDENTIALS:
            self._set_state(acc, BAD_CREDENTIALS, error.message)
        elif kind in (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED):
            self._proxies.report_failure(proxy)

    def _set_state(self, acc: _Account, status: str, reason: str, until: float | None = None) -> None:
        now = self._clock()
        current = acc.effective_status(now)
        if status in _TIMED:
            if current in _DEAD:
                return  # a cool-down never overrides a ban or bad credentials
            if current == MUTED and status == COOLING and acc.until is not None and until is not None:
                if acc.until >= until:
                    return
            if current == status and acc.until is not None and until is not None:
                until = max(until, acc.until)
        if current == status and acc.reason == reason and acc.until == until:
            return
        acc.status, acc.reason, acc.until, acc.updated_at = status, reason, until, now
        if until is not None:
            logger.info("account %s: %s for %.0fs (%s)", acc.id, status, until - now, reason)
        else:
            logger.info("account %s: %s%s", acc.id, status, f" ({reason})" if reason else "")
        self._persist(acc)
        self._dispatch()  # waiters may have lost their last hope, or the wake time moved

    def _persist(self, acc: _Account) -> None:
        """Queue the account's state for the store (written in order, off the loop, coalesced)."""
        if acc.status == DISABLED:
            return
        acc.counters_dirty = False
        self._dirty[acc.id] = acc.snapshot()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self._dirty:
            account_id = next(iter(self._dirty))
            state = self._dirty.pop(account_id)
            try:
                await self._store.save(account_id, state)
            except Exception as exc:
                logger.warning("account %s: could not save its state (%s)", account_id, exc)

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
                    "until": acc.until if state in _TIMED else None,
                    "in_use": acc.in_use,
                    "has_token": acc.token is not None,
                    "proxy": proxy,
                    "requests": acc.requests,
                    "failures": acc.failures,
                }
            )
        return rows

    def account_ids(self) -> Iterable[str]:
        return list(self._accounts)

    def idle_accounts(self) -> list[tuple[AccountSettings, str]]:
        """(account, its current token) for every usable account with a token and no lease out.

        For the turn prewarmer (chat/prewarm.py, `pool.prewarm`); the tokens must never be logged.
        """
        now = self._clock()
        return [(acc.settings, acc.token) for acc in self._accounts.values()
                if acc.in_use == 0 and acc.token is not None and acc.usable(now)]


_DEAD_KINDS = {BANNED: ErrorKind.ACCOUNT_BANNED, BAD_CREDENTIALS: ErrorKind.BAD_CREDENTIALS}

__all__ = [
    "AccountLease",
    "AccountPool",
    "PoolExhausted",
    "STATES",
    "credentials_fingerprint",
    "credentials_match",
]
