"""The shared pool as the runner sees it: the same `lease(exclude=...)` as the in-process pool, backed by
the Redis coordinator (pool/cluster/), so every replica with the same `cluster.redis_url` shares one pool.

What the runner learns with a lease (rate limits, mutes, bans, refused tokens, broken proxies) travels
back to Redis with the release, in the same round trip, so the other replicas see it at their next grant.
Tokens are shared: a lease carries the account's token when Redis has one; otherwise one replica logs the
account in (`login_once`) and the others take its token. A lease that Redis may give to someone else
(renewals failed, Redis lost it) cancels the task running the turn: the upstream stream stops and the
client gets a 503 error (`pool_lease_lost`), never a second stream on the account.

Errors fail closed: Redis unreachable or recovering → `PoolUnavailable` (503 + Retry-After); no slot
within the wait → `PoolExhausted` (429 + Retry-After), exactly as the in-process pool answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from types import TracebackType
from typing import Any

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from ..logs import redactor
from ..settings import AccountSettings, Settings, redact_proxy
from .cluster import (
    ClusterConfig,
    ClusterCoordinator,
    ClusterExhausted,
    ClusterLease,
    ClusterSnapshot,
    ClusterUnavailable,
    HealthReport,
    LeaseLost,
    proxy_entries,
    seed_accounts,
)
from .cluster.membership import Membership
from .errors import EditRefusal, PoolEditRefused, PoolExhausted, PoolReason, PoolUnavailable
from .health import TOKEN_EXPIRED, Cooldowns, after_error
from .observe import PoolObserver
from .record import credentials_fingerprint

logger = logging.getLogger(__name__)

LoginFn = Callable[[AccountSettings, "str | None"], Awaitable[str]]
START_RETRY = 1.0  # seconds between attempts to reach Redis at start
LOST_RETRY_AFTER = 2.0


def unavailable(exc: ClusterUnavailable) -> PoolUnavailable:
    return PoolUnavailable(exc.kind.value, exc.message, exc.retry_after)


def exhausted(exc: ClusterExhausted) -> PoolExhausted:
    return PoolExhausted(PoolReason(exc.reason.value), exc.message, exc.retry_after)


def proxy_label(account: AccountSettings | None, shared_proxies: bool) -> str:
    """An account's exit in cluster mode, in the words `/admin/status` and the console both use: its own
    proxy (redacted), "shared pool" (picked per lease from `proxy_pool`), "direct", or "unknown" for an
    account only another replica's config holds."""
    if account is None:
        return "unknown"
    if account.proxy:
        return redact_proxy(account.proxy)
    return "shared pool" if shared_proxies else "direct"


def shared_fingerprint(cluster_name: str, account: AccountSettings) -> str:
    """The credentials fingerprint every replica computes alike (the salt comes from the namespace and
    the account id, not from a random source): Redis compares it to void a token when the login changes."""
    salt = hashlib.sha256(f"deepseek2api-cluster\0{cluster_name}\0{account.id}".encode()).digest()[:16]
    return credentials_fingerprint(account, salt)


class SharedLease:
    """One request's hold on one account of the shared pool (the runner's `Lease` protocol)."""

    def __init__(self, pool: SharedPool, held: ClusterLease, account: AccountSettings) -> None:
        self._pool = pool
        self._held = held
        self.account_id: str = held.account_id
        self.account = account
        self.proxy: str | None = account.proxy or held.proxy
        self._token: str | None = None
        self._version = held.token_version
        self._relogged = False
        self._forget: int | None = None  # token version to compare-and-delete at release
        self._health: HealthReport | None = None
        self._proxy_ok: bool | None = None
        self._failed = False

    def _check(self) -> None:
        if self._held.lost_reason is not None:
            raise PoolUnavailable("lease_lost", "the shared pool lost this request's account lease",
                                  LOST_RETRY_AFTER)

    async def token(self) -> str:
        """The shared token; logs in (once across all replicas) when Redis has none."""
        self._check()
        if self._token is not None:
            return self._token
        if self._held.token:  # learned by another replica (or before a restart): mask it in our logs too
            self._token = self._held.token
            redactor.add(self._token)
            return self._token
        return await self._login_once()

    async def relogin(self) -> str:
        """The token was refused: forget it everywhere (compare-and-delete) and take a fresh one."""
        self._check()
        coordinator = self._pool.coordinator
        try:
            await coordinator.forget_token(self.account_id, self._version)
        except ClusterUnavailable as exc:
            raise unavailable(exc) from None
        self._relogged = True
        self._token = None
        return await self._login_once()

    async def _login_once(self) -> str:
        coordinator = self._pool.coordinator
        try:
            info = await coordinator.login_once(self.account_id, self._login, seen_version=self._version)
        except ClusterUnavailable as exc:
            raise unavailable(exc) from None
        except ClusterExhausted:  # meanwhile marked banned / bad credentials / disabled (by any replica)
            raise UpstreamFailure(UpstreamError(
                ErrorKind.BAD_CREDENTIALS, "the account cannot log in (banned, bad credentials or disabled)"
            )) from None
        self._token, self._version = info.token, info.version
        redactor.add(info.token)
        return info.token

    async def _login(self) -> str:
        """The login itself (this replica holds the account's login lock). A failure that says something
        about the account is reported at once: replicas waiting for this login read it next."""
        account = self.account
        if not account.can_login:
            error = UpstreamError(ErrorKind.NEEDS_TOKEN, TOKEN_EXPIRED)
            await self._report_now(error)
            raise UpstreamFailure(error)
        try:
            token = await self._pool.login(account, self.proxy)
        except UpstreamFailure as exc:
            self._pool.observe_login(exc.error.kind.value)
            await self._report_now(exc.error)
            raise
        if not token:  # as the in-process pool answers it, not a ValueError from login_once (a 500)
            self._pool.observe_login(ErrorKind.PROTOCOL.value)
            raise UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, "login answered without a token"))
        self._pool.observe_login("ok")
        logger.info("account %s: logged in (shared pool)%s", self.account_id, " again" if self._relogged else "")
        return token

    async def _report_now(self, error: UpstreamError) -> None:
        health = self._pool.health_after(error)
        if health is None:
            return
        with contextlib.suppress(ClusterUnavailable):
            if await self._pool.coordinator.report(self.account_id, health, lease=self._held,
                                                   failed=True) == "applied":
                self._pool.observe_transition("ready", health.status)

    def report(self, error: UpstreamError) -> None:
        """Remember what went wrong; it reaches Redis with the release (same round trip)."""
        self._failed = True
        if error.kind is ErrorKind.TOKEN_INVALID:
            if self._relogged:  # a fresh token was refused too: cool down instead of a login loop
                self._health = HealthReport("cooling", "token rejected right after a fresh login",
                                            time.time() + self._pool.cooldowns.rate_limited)
            self._forget = self._version  # refused either way: the first lease after the cool-down logs in
            return
        health = self._pool.health_after(error)
        if health is not None:
            self._health = health
        elif error.kind in (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED):
            self._proxy_ok = False

    def report_success(self) -> None:
        self._failed = False
        self._proxy_ok = True

    async def _release(self) -> None:
        coordinator = self._pool.coordinator
        if self._forget is not None:
            # a failure here must not skip the release: the ticker would renew the lease forever
            with contextlib.suppress(ClusterUnavailable):
                await coordinator.forget_token(self.account_id, self._forget)
        try:
            released = await self._held.release(health=self._health, failed=self._failed,
                                                proxy_ok=self._proxy_ok if self._held.proxy_id else None)
        except ClusterUnavailable:
            return  # Redis frees the lease when it expires; the holder already fenced itself or will
        if released and self._health is not None:  # it held a lease on the account: it was ready
            self._pool.observe_transition("ready", self._health.status)

    def __repr__(self) -> str:
        return f"SharedLease(account_id={self.account_id!r}, proxy={redact_proxy(self.proxy)!r})"


class SharedLeaseContext:
    """`async with pool.lease() as lease:` on the shared pool. Acquire on enter, release once on exit.

    The task that entered is the one running the turn: if the lease is lost, that task is cancelled
    (which closes the upstream stream) and the cancellation leaves this context as `PoolUnavailable`
    (`lease_lost`), so the client gets an error event instead of a silent cut.
    """

    def __init__(self, pool: SharedPool, exclude: frozenset[str], prefer: str | None = None,
                 only: str | None = None) -> None:
        self._pool = pool
        self._exclude = exclude
        self._prefer = prefer
        self._only = only
        self._lease: SharedLease | None = None
        self._task: asyncio.Task[Any] | None = None
        self._lost: LeaseLost | None = None
        self._cancelled = False
        self._done = False

    async def __aenter__(self) -> SharedLease:
        self._task = asyncio.current_task()
        pool = self._pool
        coordinator = pool.coordinator_or_raise()
        started = time.monotonic()
        try:
            held = await self._acquire(coordinator)
        except ClusterExhausted as exc:
            if not self._exclude and self._only is None:  # a failover or a pinned probe is not a rejection
                pool.observe_rejection(exc.reason.value)
            raise exhausted(exc) from None
        except ClusterUnavailable as exc:
            raise unavailable(exc) from None
        pool.observe_wait(time.monotonic() - started)
        account = self._pool.account(held.account_id)
        if account is None:  # configured on another replica only: give it back, it is not ours to use
            with contextlib.suppress(ClusterUnavailable):  # given back, or it expires: never a raw error
                await held.release()
            raise PoolExhausted(PoolReason.NONE_USABLE, "the shared pool granted an account this replica does not "
                                "know (replicas must share one config)", 5.0)
        self._lease = SharedLease(self._pool, held, account)
        self._pool.leases_out += 1
        return self._lease

    async def _acquire(self, coordinator: ClusterCoordinator) -> ClusterLease:
        """`only`: that account and no other (waits in the shared queue); `prefer`: that account if it has
        a free slot now (one extra round trip, no waiting), else any, like the in-process pool."""
        exclude, only, prefer = self._exclude, self._only, self._prefer
        if only is not None:  # already tried (a failover): everything is excluded, the pool says why
            return await coordinator.acquire(exclude | self._pool.other_ids(only), on_lost=self._on_lost)
        if prefer is not None and prefer not in exclude:
            with contextlib.suppress(ClusterExhausted):
                return await coordinator.acquire(exclude | self._pool.other_ids(prefer), on_lost=self._on_lost,
                                                 wait=False)
        return await coordinator.acquire(exclude, on_lost=self._on_lost)

    def _on_lost(self, lost: LeaseLost) -> None:
        self._lost = lost
        task = self._task
        if not self._done and task is not None and not task.done():
            self._cancelled = True
            task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._lease is None or self._done:
            return
        self._done = True
        self._pool.leases_out -= 1
        await asyncio.shield(self._lease._release())
        if self._cancelled and exc_type is not None and issubclass(exc_type, (asyncio.CancelledError, GeneratorExit)):
            if self._task is not None:
                self._task.uncancel()
            raise PoolUnavailable(
                "lease_lost",
                "the gateway lost contact with the shared pool (Redis) and stopped this reply before another "
                "replica could use the account",
                LOST_RETRY_AFTER,
            ) from exc


class SharedPool:
    """The `LeaseSource` of a replica in cluster mode (`cluster.redis_url` set); pool/interface.py's `Pool`."""

    mode = "cluster"
    waiting = 0  # requests queued in this process: the shared queue lives in Redis (`snapshot()`)

    def __init__(self, settings: Settings, login: LoginFn, *, replica_id: str | None = None,
                 observer: PoolObserver | None = None, membership: Membership | None = None) -> None:
        assert settings.cluster.redis_url is not None
        self._settings = settings
        self._url = settings.cluster.redis_url
        self.config = ClusterConfig.from_settings(settings)
        self._accounts = {a.id: a for a in settings.accounts}
        self._replica_id = replica_id
        self._membership = membership  # the "was part of this cluster" marker (cluster/membership.py)
        self.login = login
        self.cooldowns = Cooldowns(rate_limited=settings.pool.cooldown_rate_limited,
                                   busy=settings.pool.cooldown_busy)
        self._coordinator: ClusterCoordinator | None = None
        self._started = False
        self._starter: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._last: ClusterSnapshot | None = None
        self.leases_out = 0
        self.observer = observer  # the metrics (pool/observe.py), as the in-process pool reports them

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Seed Redis with this replica's accounts and proxies. Redis down: keep trying in the background
        and answer 503 meanwhile (never a per-process fallback)."""
        name = self.config.name
        seeds = await asyncio.to_thread(seed_accounts, self._settings, lambda a: shared_fingerprint(name, a))
        self._coordinator = ClusterCoordinator.from_url(self._url, self.config, seeds, proxy_entries(self._settings),
                                                        replica_id=self._replica_id, membership=self._membership)
        loop = asyncio.get_running_loop()
        try:
            await self._coordinator.start()
            self._started = True
            logger.info("cluster %s: shared pool on Redis, replica %s", name, self._coordinator.replica_id)
        except ClusterUnavailable as exc:
            logger.error("cluster %s: Redis not usable at start (%s); refusing requests until it is back",
                         name, exc.message)
            self._starter = loop.create_task(self._keep_starting(), name="ds2api-cluster-start")
        self._refresher = loop.create_task(self._refresh_loop(), name="ds2api-cluster-snapshot")

    async def _keep_starting(self) -> None:
        assert self._coordinator is not None
        while not self._started:
            await asyncio.sleep(START_RETRY)
            try:
                await self._coordinator.start()
            except ClusterUnavailable:
                continue
            self._started = True
            logger.info("cluster %s: Redis reachable; shared pool started", self.config.name)

    async def _refresh_loop(self) -> None:
        """Keep a recent snapshot for /ready and the sync status view (one read per replica, not per request)."""
        every = max(1.0, min(5.0, self.config.renew_every))
        while True:
            if self._started:
                with contextlib.suppress(ClusterUnavailable):
                    self._last = await self.coordinator.snapshot()
            await asyncio.sleep(every)

    async def close(self) -> None:
        for task in (self._starter, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._starter = self._refresher = None
        if self._coordinator is not None:
            with contextlib.suppress(ClusterUnavailable):
                await self._coordinator.aclose()

    # ---- leasing ---------------------------------------------------------------------

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None) -> SharedLeaseContext:
        """`async with pool.lease(exclude=tried) as lease:` — raises `PoolExhausted` or `PoolUnavailable`.

        Same keywords as the in-process pool: `prefer` an account when it is free now (a hint),
        `only` this account and no other (the console's test; `PoolEditRefused` when unknown)."""
        if only is not None and only not in self._accounts:
            raise PoolEditRefused(EditRefusal.NOT_FOUND, f"no account {only!r}")
        return SharedLeaseContext(self, frozenset(exclude), prefer, only)

    def other_ids(self, account_id: str) -> frozenset[str]:
        """Every account id the shared pool knows except this one (to pin a lease to it)."""
        known = set(self._accounts)
        if self._last is not None:
            known.update(str(row["id"]) for row in self._last.accounts)
        known.discard(account_id)
        return frozenset(known)

    # ---- what the metrics see (each event counted once, by the replica where it happened) --------

    def observe_wait(self, seconds: float) -> None:
        if self.observer is not None:
            self.observer.queue_waited(seconds)

    def observe_rejection(self, reason: str) -> None:
        if self.observer is not None:
            self.observer.queue_rejected(reason)

    def observe_transition(self, from_state: str, to_state: str) -> None:
        if self.observer is not None and from_state != to_state:
            self.observer.account_transition(from_state, to_state)

    def observe_login(self, result: str) -> None:
        if self.observer is not None:
            self.observer.login(result)

    @property
    def coordinator(self) -> ClusterCoordinator:
        assert self._coordinator is not None, "SharedPool.start() was not called"
        return self._coordinator

    @property
    def replica_id(self) -> str:
        """This replica's id in Redis (the configured one until the coordinator exists)."""
        return self._coordinator.replica_id if self._coordinator is not None else (self._replica_id or "")

    def coordinator_or_raise(self) -> ClusterCoordinator:
        if self._coordinator is None or not self._started:
            raise PoolUnavailable("redis_down", "the shared pool (Redis) is unreachable", 5.0)
        return self._coordinator

    def account_ids(self) -> list[str]:
        return list(self._accounts)

    def account(self, account_id: str) -> AccountSettings | None:
        return self._accounts.get(account_id)

    def health_after(self, error: UpstreamError) -> HealthReport | None:
        """The shared health state an upstream error puts the account in (same rules as the local pool)."""
        health = after_error(error, time.time(), self.cooldowns)
        if health is None:
            return None
        return HealthReport(health.status.value, health.reason, health.until)

    # ---- status ----------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Redis answered the last call (False also before the first successful start)."""
        return self._started and self._coordinator is not None and self._coordinator.available

    @property
    def usable_count(self) -> int:
        """Accounts that could take a request (from the last snapshot); 0 while Redis is unreachable."""
        if not self.available:
            return 0
        if self._last is None:
            return sum(1 for a in self._accounts.values() if a.enabled)
        if self._last.recovering > 0:
            return 0
        return sum(1 for row in self._last.accounts if row.get("status") == "ready")

    def status(self) -> list[dict[str, object]]:
        """Per-account rows like the in-process pool's `status()` (from the last snapshot)."""
        if self._last is None:
            return []
        shared_proxies = bool(proxy_entries(self._settings))
        return [{"id": row["id"], "state": row.get("status"), "reason": row.get("reason") or "",
                 "until": row.get("until"), "in_use": row.get("in_use"), "has_token": row.get("has_token"),
                 "proxy": proxy_label(self._accounts.get(str(row["id"])), shared_proxies),
                 "requests": row.get("requests"), "failures": row.get("failures"),
                 "last_success": row.get("last_success") or None}
                for row in self._last.accounts]

    def proxy_status(self) -> list[dict[str, object]]:
        """Shared proxy use and quarantine (from the last snapshot; URLs redacted)."""
        return [] if self._last is None else list(self._last.proxies)

    @property
    def last_snapshot(self) -> ClusterSnapshot | None:
        """The last shared state read (by the refresh loop or `fresh_snapshot`); None before the first."""
        return self._last

    async def fresh_snapshot(self) -> ClusterSnapshot | None:
        """Read the shared state now (one Redis call) and keep it; None when Redis cannot answer."""
        if not self._started:
            return None
        try:
            self._last = await self.coordinator.snapshot()
        except ClusterUnavailable:
            return None
        return self._last

    async def snapshot(self) -> dict[str, Any]:
        """The shared pool for the console: mode, replicas with heartbeat age, accounts, proxies, queue."""
        base: dict[str, Any] = {"mode": self.mode, "name": self.config.name, "available": self.available,
                                "replica": self._coordinator.replica_id if self._coordinator else None,
                                "leases_held_here": self._coordinator.held if self._coordinator else 0}
        if not self._started:
            return base
        try:
            snap = await self.coordinator.snapshot()
        except ClusterUnavailable:
            base["available"] = False
            return base
        self._last = snap
        base.update({
            "available": True,
            "epoch": snap.epoch,
            "recovering": snap.recovering,
            "replicas": [{"id": r.id, "heartbeat_age": r.heartbeat_age, "alive": r.alive} for r in snap.replicas],
            "waiting": snap.waiting,
            "leases": snap.leases,
            "reaped": snap.reaped,
            "accounts": snap.accounts,
            "proxies": snap.proxies,
        })
        return base


__all__ = ["SharedLease", "SharedLeaseContext", "SharedPool", "proxy_label", "shared_fingerprint"]
