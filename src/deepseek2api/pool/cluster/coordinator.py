"""The shared pool's client: one per replica, talking to Redis only through the scripts in lua.py.

A request costs two round trips (acquire, release). Everything periodic — heartbeat, renewal of all
this replica's leases, collecting grants for its waiting requests — is one `tick` script per replica,
so Redis load grows with the number of replicas, not of requests. Waiting requests are woken by a
pub/sub message from the script that granted them, with a jittered backstop (pub/sub drops messages
during a reconnect) and the earliest deadline a script reported (a cool-down ending, a lease expiring).

Holders fence themselves: each lease remembers (event-loop clock) when the call that last renewed it
was *sent*; Redis started its TTL later, so `sent + ttl - margin` passes on the holder before Redis
can free the account. At that moment the lease is marked lost and its `on_lost` callback runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, BusyLoadingError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...settings import redact_proxy
from .config import ClusterAccount, ClusterConfig, proxy_id
from .errors import (
    ClusterExhausted,
    ClusterUnavailable,
    ExhaustedReason,
    LeaseLost,
    LostReason,
    UnavailableKind,
)
from .lua import BODIES, script_source
from .records import (
    ClusterLease,
    ClusterSnapshot,
    HealthReport,
    OnLost,
    ReplicaInfo,
    TokenInfo,
)

logger = logging.getLogger(__name__)

_DOWN = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
DOWN_RETRY_AFTER = 5.0


def down_reason(exc: BaseException) -> str:
    """Why Redis cannot be used, for the log and the 503: a refused password is not "unreachable"."""
    if isinstance(exc, AuthenticationError) or any(
            word in str(exc) for word in ("NOAUTH", "WRONGPASS", "invalid password", "invalid username")):
        return "Redis refused the gateway's credentials (authentication failed: check cluster.redis_url)"
    return f"Redis unreachable ({type(exc).__name__})"


class ClusterCoordinator:
    """One replica's view of the shared pool (see docs/cluster.md for the invariants)."""

    def __init__(
        self,
        client: aioredis.Redis,
        config: ClusterConfig,
        accounts: Sequence[ClusterAccount],
        proxies: Sequence[str] = (),
        *,
        replica_id: str | None = None,
    ) -> None:
        self.config = config
        self.replica_id = replica_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._client = client
        self._accounts = list(accounts)
        self._proxy_urls: dict[str, str | None] = {proxy_id(p): (p.strip() or None) for p in proxies}
        self._epoch_key = config.prefix + "epoch"
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(script_source(name)) for name in BODIES
        }
        self._epoch = ""
        self._leases: dict[str, ClusterLease] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._token_events: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._next_wake: float | None = None
        self._seed_lock = asyncio.Lock()
        self._abandoning: set[asyncio.Task[None]] = set()  # giving back what a cancelled acquire got
        self._closed = False
        self.available = False  # Redis answered the last call (for /ready)
        self.calls: collections.Counter[str] = collections.Counter()  # script calls by name (bench, tests)
        # for metrics: redis_errors, renew_failures, leases_lost_renew_deadline, leases_lost_revoked, reseeds
        self.events: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_url(
        cls,
        url: str,
        config: ClusterConfig,
        accounts: Sequence[ClusterAccount],
        proxies: Sequence[str] = (),
        *,
        replica_id: str | None = None,
        max_connections: int = 128,
        timeout: float = 2.0,
    ) -> ClusterCoordinator:
        """A coordinator on a blocking connection pool with explicit timeouts and health checks."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=15,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        )
        return cls(aioredis.Redis(connection_pool=pool), config, accounts, proxies, replica_id=replica_id)

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Seed this replica's accounts and proxies, then start the ticker and the wake-up listener.

        Raises `ClusterUnavailable(REDIS_DOWN)` when Redis cannot be reached: the caller decides
        whether to start anyway (the pool then answers 503 until Redis is back).
        """
        self._closed = False
        await self._seed()
        loop = asyncio.get_running_loop()
        self._ticker = loop.create_task(self._tick_loop(), name="ds2api-cluster-tick")
        self._listener = loop.create_task(self._listen_loop(), name="ds2api-cluster-wake")

    async def close(self, *, release: bool = True) -> None:
        """Stop background work, turn waiters away (503), leave the queue and give back leases still held.

        `release=False` leaves Redis as it is, like a crash (tests use it to play a killed replica).
        """
        self._closed = True
        for task in (self._ticker, self._listener):
            if task is not None:
                task.cancel()
        for task in (self._ticker, self._listener):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._listener = None
        if self._abandoning:  # cancelled acquires still giving back what they got: let them finish
            await asyncio.gather(*self._abandoning, return_exceptions=True)
        waiting = list(self._waiters.items())
        self._waiters.clear()
        for rid, fut in waiting:
            if release:  # leave the shared queue; a grant made meanwhile is given back below
                with contextlib.suppress(ClusterUnavailable):
                    reply = await self._run("cancel", self._epoch, rid, "[]")
                    if reply["s"] == "granted":
                        self._open(reply, asyncio.get_running_loop().time(), None)
            if not fut.done():
                fut.set_exception(self._closed_error())
        if release:
            for lease in list(self._leases.values()):
                try:
                    await lease.release()
                except ClusterUnavailable:
                    pass
        for lease in list(self._leases.values()):
            if lease._timer is not None:
                lease._timer.cancel()
        self._leases.clear()

    async def aclose(self) -> None:
        """`close()` and the Redis connection pool."""
        await self.close()
        await self._client.aclose()

    # ---- leasing ---------------------------------------------------------------------

    async def acquire(
        self, exclude: Collection[str] = (), *, on_lost: OnLost | None = None, wait: bool = True
    ) -> ClusterLease:
        """A lease on the least recently used ready account not in `exclude`.

        Waits in the shared FIFO queue up to `queue_timeout` (unless `wait=False`). Raises
        `ClusterExhausted` (429), `ClusterUnavailable` (503: Redis down, recovering, closing).
        """
        if self._closed:
            raise self._closed_error()
        loop = asyncio.get_running_loop()
        rid = uuid.uuid4().hex
        excluded = json.dumps(sorted(exclude))
        wait_ms = int(self.config.queue_timeout * 1000) if wait else 0
        sent = loop.time()
        call = asyncio.ensure_future(self._run_epoch("acquire", self.replica_id, rid, excluded, wait_ms))
        try:
            reply = await asyncio.shield(call)
        except asyncio.CancelledError:  # the script may run anyway: give back what it grants or queues
            abandon = loop.create_task(self._abandon_acquire(call, rid, excluded, sent))
            self._abandoning.add(abandon)
            abandon.add_done_callback(self._abandoning.discard)
            raise
        state = reply["s"]
        if state == "granted":
            return self._open(reply, sent, on_lost)
        if state != "waiting":
            raise self._refusal(reply)
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiters[rid] = fut
        self._note_wake(reply.get("wake"))
        self._wake.set()
        try:
            grant = await asyncio.wait_for(asyncio.shield(fut), self.config.queue_timeout)
        except TimeoutError:
            self._waiters.pop(rid, None)
            late = await self._leave_queue(rid, excluded, fut)
            if late is None:
                raise
            return self._open(late, late["_sent"], on_lost)
        except (asyncio.CancelledError, ClusterUnavailable):
            # cancelled, or failing closed (Redis trouble, shutdown): leave the queue, give back a late grant
            self._waiters.pop(rid, None)
            late = await asyncio.shield(asyncio.ensure_future(self._leave_queue(rid, excluded, fut, quiet=True)))
            if late is not None:
                lease = self._open(late, late["_sent"], None)
                with contextlib.suppress(ClusterUnavailable):
                    await lease.release()
            raise
        return self._open(grant, grant["_sent"], on_lost)

    async def _abandon_acquire(self, call: asyncio.Future[dict[str, Any]], rid: str, excluded: str,
                               sent: float) -> None:
        """The caller was cancelled while its `acquire` was on the wire: release a grant, leave the queue."""
        try:
            reply = await call
            if reply["s"] == "waiting":
                reply = await self._run("cancel", self._epoch, rid, excluded)
        except ClusterUnavailable:
            return  # a grant or ticket made meanwhile expires by itself in Redis
        if reply["s"] == "granted":
            lease = self._open(reply, sent, None)
            with contextlib.suppress(ClusterUnavailable):
                await lease.release()

    async def _leave_queue(
        self, rid: str, excluded: str, fut: asyncio.Future[dict[str, Any]], *, quiet: bool = False
    ) -> dict[str, Any] | None:
        """Take our ticket out; returns a grant made in the meantime, else raises why (unless quiet)."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            return fut.result()  # granted at the very moment we gave up: use it
        if self._closed and quiet:
            return None  # close() already took the ticket out and gave back what it found
        sent = asyncio.get_running_loop().time()
        try:
            reply = await self._run("cancel", self._epoch, rid, excluded)
        except ClusterUnavailable:
            if quiet:
                return None
            raise
        if reply["s"] == "granted":
            reply["_sent"] = sent
            return reply
        if quiet:
            return None
        if reply["s"] == "reseed":
            raise ClusterUnavailable(UnavailableKind.RECOVERING, "Redis lost its data; recovering", 1.0)
        raise self._refusal(reply)

    def _open(self, reply: dict[str, Any], sent: float, on_lost: OnLost | None) -> ClusterLease:
        pid = str(reply.get("proxy") or "")
        token = str(reply.get("token") or "") or None
        lease = ClusterLease(
            coordinator=self,
            account_id=str(reply["account"]),
            fence=int(reply["fence"]),
            proxy=self._proxy_urls.get(pid) if pid else None,
            proxy_id=pid,
            token=token,
            token_version=int(reply.get("tver") or 0),
            request_id=str(reply.get("rid") or ""),
            on_lost=on_lost,
        )
        self._leases[lease.member] = lease
        self._extend(lease, sent, float(reply["ttl"]) / 1000)
        return lease

    def _extend(self, lease: ClusterLease, sent: float, ttl_left: float) -> None:
        """Move the self-fencing deadline: `sent + ttl_left - margin` on the event-loop clock."""
        if lease.lost_reason is not None:
            return
        loop = asyncio.get_running_loop()
        lease.deadline = sent + ttl_left - self.config.margin
        if lease._timer is not None:
            lease._timer.cancel()
        lease._timer = loop.call_at(lease.deadline, self._fence, lease, LostReason.RENEW_DEADLINE)

    def _fence(self, lease: ClusterLease, reason: LostReason) -> None:
        """The lease is no longer ours: mark it, stop renewing, tell its holder."""
        if lease.lost_reason is not None or lease.released:
            return
        lease.lost_reason = reason
        if lease._timer is not None:
            lease._timer.cancel()
            lease._timer = None
        self._leases.pop(lease.member, None)
        lease.lost.set()
        self.events[f"leases_lost_{reason.value}"] += 1
        logger.warning("account %s: lease (fence %d) lost (%s); stopping its stream", lease.account_id,
                       lease.fence, reason.value)
        if lease.on_lost is not None:
            try:
                lease.on_lost(LeaseLost(lease.account_id, lease.fence, reason))
            except Exception:
                logger.exception("on_lost callback failed")

    async def _release(
        self, lease: ClusterLease, health: HealthReport | None, proxy_ok: bool | None, failed: bool
    ) -> bool:
        if lease.released:
            return False
        lease.released = True
        if lease._timer is not None:
            lease._timer.cancel()
            lease._timer = None
        self._leases.pop(lease.member, None)
        proxy_result = "" if proxy_ok is None else ("ok" if proxy_ok else "fail")
        reply = await self._run(
            "release", lease.member, lease.request_id, health.encode() if health else "", proxy_result,
            "1" if failed else "0",
        )
        return bool(reply["s"] == "released")

    # ---- health, proxies, tokens -----------------------------------------------------

    async def report(
        self,
        account_id: str,
        health: HealthReport | None = None,
        *,
        lease: ClusterLease | None = None,
        force: bool = False,
        proxy: str | None = None,
        proxy_ok: bool | None = None,
        failed: bool = False,
    ) -> str:
        """Change an account's shared health state now (other replicas see it at their next grant).

        With `lease`, fenced: a stale holder's report is dropped ("stale"). Without, unfenced
        ("merge": a cool-down never overrides a ban; `force=True`: the operator sets it as given).
        Returns "applied", "ignored", "stale" or "unknown".
        """
        if lease is not None:
            pid = lease.proxy_id
        else:
            pid = proxy_id(proxy or "") if proxy_ok is not None and self._proxy_urls else ""
        result = "" if proxy_ok is None else ("ok" if proxy_ok else "fail")
        reply = await self._run(
            "report", account_id, lease.member if lease else "", health.encode() if health else "",
            "force" if force else "merge", pid, result, "1" if failed else "0",
        )
        if reply["s"] == "reseed":
            await self._seed()
            return "ignored"
        return str(reply["s"])

    async def report_proxy(self, proxy: str | None, ok: bool) -> None:
        """A proxy worked or failed (consecutive failures quarantine it for every replica)."""
        if not self._proxy_urls:
            return
        await self._run("proxy_report", proxy_id(proxy or ""), "ok" if ok else "fail")

    async def login_once(
        self, account_id: str, login: Callable[[], Awaitable[str]], *, seen_version: int = 0
    ) -> TokenInfo:
        """A token newer than `seen_version`: someone else's fresh one, or ours from one `login()`.

        At most one replica logs an account in at a time (a lock with expiry in Redis); the others
        wait for its token (pub/sub, with a backstop). If `login()` raises, the lock is freed and
        the error propagates; waiting callers then try themselves (after the caller's health
        report, e.g. bad credentials, which they see as "dead").
        """
        owner = f"{self.replica_id}:{uuid.uuid4().hex[:8]}"
        lock_ms = int(self.config.login_lock * 1000)
        while True:
            reply = await self._run_epoch("begin_login", account_id, owner, seen_version, lock_ms)
            state = reply["s"]
            if state == "token":
                return TokenInfo(str(reply["token"]), int(reply["tver"]))
            if state == "locked":
                try:
                    token = await login()
                except BaseException:
                    await asyncio.shield(self._run("end_login", account_id, owner, ""))
                    raise
                if not token:
                    await asyncio.shield(self._run("end_login", account_id, owner, ""))
                    raise ValueError("login answered without a token")
                done = await asyncio.shield(self._run("end_login", account_id, owner, token))
                return TokenInfo(token, int(done["tver"]))
            if state == "dead":
                raise ClusterExhausted(
                    ExhaustedReason.NONE_USABLE, f"account {account_id} is {reply.get('status')}", 60.0
                )
            if state == "unknown":
                raise KeyError(account_id)
            event = self._token_events.setdefault(account_id, asyncio.Event())
            event.clear()
            wait = min(float(reply.get("retry", 1000)) / 1000, self._jitter(self.config.backstop))
            try:
                await asyncio.wait_for(event.wait(), max(0.05, wait))
            except TimeoutError:
                pass

    async def forget_token(self, account_id: str, version: int) -> int:
        """The token of `version` was refused: delete it unless a newer one is there; the new version."""
        reply = await self._run("forget_token", account_id, version)
        return int(reply["tver"])

    # ---- reporting -------------------------------------------------------------------

    async def snapshot(self) -> ClusterSnapshot:
        """Accounts, proxies, replicas (with heartbeat age), queue: one atomic read."""
        reply = await self._run("snapshot", int(self.config.replica_gone_after * 1000))
        proxies = []
        for row in reply.get("proxies") or []:
            url = self._proxy_urls.get(str(row["id"]), "?")
            proxies.append({**row, "proxy": redact_proxy(url) if url != "?" else "unknown", "id": row["id"]})
        accounts = []
        for row in reply.get("accounts") or []:
            until = row.get("until")
            accounts.append({**row, "until": until / 1000 if until else None})
        return ClusterSnapshot(
            mode="cluster",
            name=self.config.name,
            epoch=reply.get("epoch") or None,
            recovering=float(reply.get("recovering") or 0) / 1000,
            accounts=sorted(accounts, key=lambda r: str(r["id"])),
            proxies=proxies,
            replicas=[
                ReplicaInfo(str(r["id"]), float(r["age"]) / 1000, bool(r["alive"]))
                for r in reply.get("replicas") or []
            ],
            waiting=int(reply.get("waiting") or 0),
            leases=int(reply.get("leases") or 0),
            reaped=int(reply.get("reaped") or 0),
        )

    @property
    def held(self) -> int:
        """Leases this replica holds now."""
        return len(self._leases)

    @property
    def waiting(self) -> int:
        """Requests of this replica waiting in the shared queue."""
        return len(self._waiters)

    # ---- background ------------------------------------------------------------------

    def _jitter(self, seconds: float) -> float:
        return seconds * random.uniform(0.8, 1.2)

    def _note_wake(self, wake: object) -> None:
        """A script said something changes in `wake` ms (a cool-down ends, a lease may expire)."""
        if isinstance(wake, (int, float)) and wake >= 0:
            at = asyncio.get_running_loop().time() + wake / 1000 + 0.005
            if self._next_wake is None or at < self._next_wake:
                self._next_wake = at

    def _tick_delay(self) -> float:
        loop = asyncio.get_running_loop()
        delay = self.config.renew_every
        if self._waiters:
            delay = min(delay, self._jitter(self.config.backstop))
            if self._next_wake is not None:
                delay = min(delay, max(0.0, self._next_wake - loop.time()))
        if not self.available:
            delay = min(delay, 0.25)
        return delay

    async def _tick_loop(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self._tick_delay())
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._tick()
            except ClusterUnavailable as exc:
                if self._leases:
                    self.events["renew_failures"] += 1
                for rid, fut in list(self._waiters.items()):
                    if not fut.done():
                        fut.set_exception(exc)
                    self._waiters.pop(rid, None)
            except Exception:
                logger.exception("cluster tick failed")
                await asyncio.sleep(0.25)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        leases = [[lease.member, lease.proxy_id] for lease in self._leases.values()]
        rids = list(self._waiters)
        self._next_wake = None
        sent = loop.time()
        reply = await self._run_epoch("tick", self.replica_id, json.dumps(leases), json.dumps(rids))
        ttl = float(reply["ttl"]) / 1000
        for member in reply.get("renewed") or []:
            lease = self._leases.get(member)
            if lease is not None:
                self._extend(lease, sent, ttl)
        for member in reply.get("lost") or []:
            lease = self._leases.get(member)
            if lease is not None:
                self._fence(lease, LostReason.REVOKED)
        for grant in reply.get("grants") or []:
            fut = self._waiters.pop(str(grant["rid"]), None)
            grant["_sent"] = sent
            if fut is not None and not fut.done():
                fut.set_result(grant)
            # else the waiter left meanwhile: its own `cancel` call finds this grant and gives it back
        for rid in reply.get("gone") or []:
            fut = self._waiters.pop(str(rid), None)
            if fut is not None and not fut.done():
                fut.set_exception(
                    ClusterExhausted(ExhaustedReason.ALL_BUSY, "the wait ticket expired", self.config.backstop)
                )
        self._note_wake(reply.get("wake"))

    async def _listen_loop(self) -> None:
        """Pub/sub wake-ups: a grant for one of our tickets, a token stored for an account."""
        grants = self.config.prefix + "W:" + self.replica_id
        tokens = self.config.prefix + "E"
        while not self._closed:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(grants, tokens)
                self._wake.set()  # messages may have been missed while not subscribed
                while not self._closed:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    channel = message["channel"].decode() if isinstance(message["channel"], bytes) else \
                        str(message["channel"])
                    data = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
                    if channel == grants:
                        self._wake.set()
                    elif data.startswith("token:"):
                        event = self._token_events.get(data[6:])
                        if event is not None:
                            event.set()
            except asyncio.CancelledError:
                raise
            except (*_DOWN, ResponseError) as exc:
                logger.debug("cluster wake-up channel interrupted (%s); resubscribing", exc)
                await asyncio.sleep(self._jitter(0.5))
            finally:
                with contextlib.suppress(*_DOWN, ResponseError):
                    await pubsub.aclose()

    # ---- Redis calls -----------------------------------------------------------------

    async def _seed(self) -> None:
        async with self._seed_lock:
            cfg = self.config
            settings = {
                "cap": cfg.per_account_concurrency,
                "ttl": int(cfg.lease_ttl * 1000),
                "grace": int(cfg.grace * 1000),
                "qsize": cfg.queue_size,
                "pq_failures": max(1, cfg.proxy_quarantine_failures),
                "pq_ms": int(cfg.proxy_quarantine_seconds * 1000),
                "strategy": cfg.proxy_strategy,
                "hold0": int(cfg.expected_hold * 1000),
                "hb": int(cfg.replica_gone_after * 1000),
            }
            accounts = [
                {"id": a.id, "cred": a.credentials, "enabled": a.enabled, "fixed": a.own_proxy, "token": a.token or ""}
                for a in self._accounts
            ]
            reply = await self._run(
                "seed", uuid.uuid4().hex, int(cfg.recovery * 1000), json.dumps(settings), json.dumps(accounts),
                json.dumps(list(self._proxy_urls)), self.replica_id,
            )
            previous, self._epoch = self._epoch, str(reply["epoch"])
            if previous:
                self.events["reseeds"] += 1
            if reply.get("created") and previous:
                logger.warning(
                    "cluster %s: Redis lost its data; recovery window of %.1fs before new grants",
                    cfg.name, float(reply.get("recovering") or 0) / 1000,
                )
            elif previous and previous != self._epoch:
                logger.warning("cluster %s: Redis was reset by another replica; state re-seeded", cfg.name)

    async def _run_epoch(self, name: str, *args: object) -> dict[str, Any]:
        """Run a script that checks our epoch; re-seed and retry once when Redis lost or reset it."""
        reply = await self._run(name, self._epoch, *args)
        if reply["s"] == "reseed":
            await self._seed()
            reply = await self._run(name, self._epoch, *args)
            if reply["s"] == "reseed":
                raise ClusterUnavailable(UnavailableKind.RECOVERING, "Redis keeps losing its data", 1.0)
        return reply

    async def _run(self, name: str, *args: object) -> dict[str, Any]:
        """One script call: EVALSHA (reloaded after NOSCRIPT), errors turned into values."""
        script = self._scripts[name]
        self.calls[name] += 1
        try:
            raw = await script(keys=[self._epoch_key], args=[str(a) for a in args])
        except NoScriptError:  # raced a SCRIPT FLUSH between the reload and the retry
            raw = await script(keys=[self._epoch_key], args=[str(a) for a in args])
        except _DOWN as exc:
            self.events["redis_errors"] += 1
            reason = down_reason(exc)
            if self.available:
                logger.error("cluster %s: %s; refusing requests until it is back", self.config.name, reason)
            self.available = False
            message = ("the shared pool (Redis) is unreachable" if reason.startswith("Redis unreachable")
                       else "the shared pool (Redis) refused the gateway's credentials")
            raise ClusterUnavailable(UnavailableKind.REDIS_DOWN, message, DOWN_RETRY_AFTER) from exc
        except ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc) or "READONLY" in str(exc):
                self.available = False
                raise ClusterUnavailable(UnavailableKind.REDIS_DOWN, f"Redis cannot serve: {exc}",
                                         DOWN_RETRY_AFTER) from exc
            logger.error("cluster script %s failed: %s", name, exc)
            raise ClusterUnavailable(UnavailableKind.SCRIPT, f"cluster script {name} failed", DOWN_RETRY_AFTER) \
                from exc
        if not self.available:
            logger.info("cluster %s: Redis reachable", self.config.name)
        self.available = True
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        reply: dict[str, Any] = json.loads(text)
        return reply

    def _refusal(self, reply: dict[str, Any]) -> Exception:
        state = reply["s"]
        retry = max(1.0, float(reply.get("retry") or 1000) / 1000)
        if state == "recovering":
            return ClusterUnavailable(
                UnavailableKind.RECOVERING,
                "the shared pool is recovering after Redis lost its data; live streams re-register first",
                retry,
            )
        if state == "exhausted":
            reason = ExhaustedReason(str(reply["reason"]))
            retry = min(120.0, retry)
            return ClusterExhausted(reason, _message(reason, reply, self.config), retry)
        return ClusterUnavailable(UnavailableKind.SCRIPT, f"unexpected reply {state!r}", DOWN_RETRY_AFTER)

    def _closed_error(self) -> ClusterUnavailable:
        return ClusterUnavailable(UnavailableKind.CLOSED, "the gateway is shutting down", 5.0)


def _message(reason: ExhaustedReason, reply: dict[str, Any], config: ClusterConfig) -> str:
    if reason is ExhaustedReason.QUEUE_FULL:
        return f"all accounts are busy and the shared wait queue is full ({reply.get('waiting')} requests waiting)"
    if reason is ExhaustedReason.ALL_BUSY:
        return (f"all usable accounts are busy (at most {config.per_account_concurrency} request(s) each "
                f"across all replicas); waited {config.queue_timeout:g}s")
    if reason is ExhaustedReason.ALL_COOLING:
        return "all usable accounts are cooling down (rate limited, busy or muted)"
    detail = reply.get("detail")
    if detail == "all tried":
        return "every usable account was already tried for this request"
    if detail == "no accounts":
        return "no accounts are configured"
    return "no usable account (all banned, bad credentials or disabled)"


__all__ = ["ClusterCoordinator"]
