"""The console's `AdminBackend` over the shared pool (cluster mode: `cluster.redis_url` set).

Every replica serves the console; each reads the shared state from Redis (one snapshot per page
refresh, `refresh()`) and acts through the coordinator, so what one replica's console does, every
replica sees at its next grant: clearing a cool-down and disabling / enabling are forced health
reports; a re-login forgets the shared token (compare-and-delete) and logs in once for all replicas;
"test now" and the tester run a real turn on a lease pinned to the account (`lease(only=...)`).

Accounts come from every replica's config.json; adding or removing them at runtime would need one
shared list of credentials, which this gateway does not keep in Redis: those actions answer 409
("edit the config of every replica"). Views carry names and numbers only, never a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...chat.errors import UpstreamError
from ...chat.runner import TurnRunner
from ...chat.turn import ModelRegistry
from ...deepseek.errors import UpstreamFailure
from ...pool.cluster import (
    ClusterExhausted,
    ClusterSnapshot,
    ClusterUnavailable,
    HealthReport,
    proxy_entries,
    proxy_id,
)
from ...pool.cluster.records import HEALTH_STATES, TIMED_STATES
from ...pool.shared import SharedPool, proxy_label
from ...settings import AccountSettings, Settings, redact_proxy
from ..metrics import PoolGauges
from ..observe import RequestObserver
from .backend import (
    AccountView,
    AdminError,
    AdminErrorKind,
    ClusterView,
    PoolSummary,
    ProbeResult,
    ProxyView,
    ReplicaView,
    TesterReply,
)
from .turns import ConsoleTurns

logger = logging.getLogger(__name__)

ProbeExit = Callable[[str | None], Awaitable[UpstreamError | None]]
CONSOLE_DISABLED = "disabled from the console"
NOT_IN_CLUSTER = ("adding or removing accounts at runtime is not supported in cluster mode; "
                  "edit the config of every replica (and restart them one by one)")


def _number(value: object) -> float:
    """A count or duration from a snapshot row (Redis's JSON); 0 when absent."""
    return float(value) if isinstance(value, (int, float)) else 0.0


def _unavailable(exc: ClusterUnavailable) -> AdminError:
    return AdminError(AdminErrorKind.UNAVAILABLE, f"the shared pool (Redis) cannot answer: {exc.message}")


class ClusterBackend:
    """`AdminBackend` for one replica of a cluster."""

    def __init__(self, pool: SharedPool, settings: Settings, runner: TurnRunner, registry: ModelRegistry, *,
                 observer: RequestObserver | None, probe_exit: ProbeExit) -> None:
        self.pool = pool
        self.registry = registry
        self.probe_exit = probe_exit
        self.turns = ConsoleTurns(runner, registry, observer)
        self.cap = settings.pool.per_account_concurrency
        self.queue_limit = settings.pool.queue_size
        entries = proxy_entries(settings)
        self.proxy_urls: dict[str, str] = {proxy_id(entry): entry.strip() for entry in entries}
        self.fresh = False  # the last refresh() reached Redis

    # ---- views ------------------------------------------------------------------------

    async def refresh(self) -> None:
        self.fresh = await self.pool.fresh_snapshot() is not None

    @property
    def snap(self) -> ClusterSnapshot | None:
        return self.pool.last_snapshot

    def _rows(self) -> list[dict[str, Any]]:
        snap = self.snap
        return [] if snap is None else list(snap.accounts)

    def summary(self) -> PoolSummary:
        snap = self.snap
        ready = sum(1 for row in self._rows() if row.get("status") == "ready")
        return PoolSummary(mode="cluster", in_flight=snap.leases if snap else self.pool.leases_out,
                           capacity=ready * self.cap, queue_depth=snap.waiting if snap else 0,
                           queue_limit=self.queue_limit)

    def cluster(self) -> ClusterView:
        snap, pool = self.snap, self.pool
        here = pool.replica_id
        if snap is None:
            return ClusterView(name=pool.config.name, replica=here, available=False, leases_here=pool.leases_out)
        return ClusterView(
            name=snap.name, replica=here, available=pool.available and self.fresh, recovering=snap.recovering,
            replicas=tuple(ReplicaView(r.id, r.heartbeat_age, r.alive, r.id == here) for r in snap.replicas),
            waiting=snap.waiting, leases=snap.leases, leases_here=pool.leases_out, reaped=snap.reaped)

    def accounts(self) -> Sequence[AccountView]:
        return [self._view(row) for row in self._rows()]

    def _view(self, row: dict[str, Any]) -> AccountView:
        account_id = str(row["id"])
        state = str(row.get("status") or "unknown")
        settings = self.pool.account(account_id)
        proxy = proxy_label(settings, bool(self.proxy_urls))  # the same words as /admin/status
        if settings is None:  # in another replica's config only
            login = "other replica"
        else:
            login = "email" if settings.email and settings.can_login else \
                "mobile" if settings.can_login else "token"
        until = row.get("until")
        last_success = row.get("last_success")
        return AccountView(
            id=account_id, state=state, reason=str(row.get("reason") or ""),
            until=float(until) if state in TIMED_STATES and until else None, in_use=int(row.get("in_use") or 0),
            has_token=bool(row.get("has_token")), proxy=proxy, requests=int(row.get("requests") or 0),
            failures=int(row.get("failures") or 0), login=login,
            last_success=float(last_success) if last_success else None)

    def proxies(self) -> Sequence[ProxyView]:
        snap = self.snap
        if snap is None:
            return []
        wall = time.time()
        by_id = {str(row["id"]): row for row in snap.proxies}
        views = []
        for index, (pid, url) in enumerate(self.proxy_urls.items()):
            row = by_id.get(pid, {})
            left = _number(row.get("quarantine_left")) / 1000
            views.append(ProxyView(index=index, proxy=redact_proxy(url) if url else "direct",
                                   state="quarantined" if left > 0 else "ok", in_use=int(_number(row.get("in_use"))),
                                   picks=int(_number(row.get("picks"))), failures=int(_number(row.get("failures"))),
                                   quarantine_until=wall + left if left > 0 else None))
        return views

    def models(self) -> Sequence[str]:
        return [spec.id for spec in self.registry.listed()]

    def gauges(self) -> PoolGauges:
        """What /metrics reads at each scrape (the last snapshot: no Redis call at scrape time)."""
        states = dict.fromkeys(HEALTH_STATES, 0)
        for row in self._rows():
            state = str(row.get("status"))
            if state in states:
                states[state] += 1
        snap = self.snap
        proxies = snap.proxies if snap is not None else []
        return PoolGauges(accounts_by_state=states, queue_depth=snap.waiting if snap else 0,
                          capacity=states["ready"] * self.cap,
                          proxies_quarantined=sum(1 for p in proxies if _number(p.get("quarantine_left")) > 0),
                          proxies_total=len(proxies))

    # ---- account actions --------------------------------------------------------------

    async def _current(self, account_id: str) -> dict[str, Any]:
        """The account's shared row, read now (NOT_FOUND when Redis does not know it)."""
        snap = await self.pool.fresh_snapshot()
        if snap is None:
            raise AdminError(AdminErrorKind.UNAVAILABLE, "the shared pool (Redis) cannot answer")
        self.fresh = True
        for row in snap.accounts:
            if row["id"] == account_id:
                return row
        raise AdminError(AdminErrorKind.NOT_FOUND, f"no account {account_id!r}")

    async def _force(self, account_id: str, health: HealthReport, from_state: str) -> AccountView:
        try:
            result = await self.pool.coordinator.report(account_id, health, force=True)
        except ClusterUnavailable as exc:
            raise _unavailable(exc) from None
        if result == "unknown":
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no account {account_id!r}")
        if result == "applied":
            self.pool.observe_transition(from_state, health.status)
        return self._view(await self._current(account_id))

    async def clear_cooldown(self, account_id: str) -> AccountView:
        row = await self._current(account_id)
        state = str(row.get("status"))
        if state not in TIMED_STATES:
            return self._view(row)  # nothing to clear (a ban or a disable is not a cool-down)
        return await self._force(account_id, HealthReport("ready"), state)

    async def set_enabled(self, account_id: str, enabled: bool) -> AccountView:
        row = await self._current(account_id)
        state = str(row.get("status"))
        if enabled:
            if state != "disabled":
                return self._view(row)
            return await self._force(account_id, HealthReport("ready"), state)
        if state == "disabled":
            return self._view(row)
        return await self._force(account_id, HealthReport("disabled", CONSOLE_DISABLED), state)

    async def relogin(self, account_id: str) -> ProbeResult:
        """Forget the shared token (compare-and-delete: a newer one stays) and log in once for all replicas."""
        state = str((await self._current(account_id)).get("status"))
        account = self.pool.account(account_id)
        if account is None:
            raise AdminError(AdminErrorKind.INVALID, "this account is configured on another replica only")
        if not account.can_login:
            raise AdminError(AdminErrorKind.INVALID, "this account has only a token and no password: it cannot log in")
        coordinator = self.pool.coordinator
        logged_in = False

        async def login() -> str:
            nonlocal logged_in
            try:
                token = await self.pool.login(account, account.proxy)
            except UpstreamFailure as exc:
                self.pool.observe_login(exc.error.kind.value)
                health = self.pool.health_after(exc.error)
                if health is not None and await coordinator.report(account_id, health) == "applied":
                    self.pool.observe_transition(state, health.status)
                raise
            self.pool.observe_login("ok")
            logged_in = True
            return token

        started = time.perf_counter()
        try:
            held = await coordinator.login_once(account_id, login, seen_version=-1)  # the current token, if any
            if not logged_in:
                version = await coordinator.forget_token(account_id, held.version)
                await coordinator.login_once(account_id, login, seen_version=version)
        except UpstreamFailure as exc:
            return ProbeResult(False, exc.error.message, kind=exc.error.kind.value,
                               duration=time.perf_counter() - started)
        except ClusterExhausted as exc:
            return ProbeResult(False, exc.message, kind="account_unusable", duration=time.perf_counter() - started)
        except ClusterUnavailable as exc:
            raise _unavailable(exc) from None
        except KeyError:
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no account {account_id!r}") from None
        duration = time.perf_counter() - started
        message = "logged in again" if logged_in else "another replica logged it in meanwhile; its token is used"
        return ProbeResult(True, message, duration=duration)

    async def test_account(self, account_id: str) -> ProbeResult:
        await self._current(account_id)
        return await self.turns.test_account(self.pool, account_id)

    async def add_accounts(self, accounts: Sequence[AccountSettings]) -> Sequence[AccountView]:
        raise AdminError(AdminErrorKind.CONFLICT, NOT_IN_CLUSTER)

    async def remove_account(self, account_id: str) -> None:
        raise AdminError(AdminErrorKind.CONFLICT, NOT_IN_CLUSTER)

    # ---- proxies and tester -----------------------------------------------------------

    async def test_proxy(self, index: int) -> ProbeResult:
        urls = list(self.proxy_urls.values())
        if not 0 <= index < len(urls):
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no proxy #{index}")
        proxy = urls[index] or None
        started = time.perf_counter()
        failure = await self.probe_exit(proxy)
        duration = time.perf_counter() - started
        try:  # the verdict is shared: a working exit leaves quarantine for every replica
            await self.pool.coordinator.report_proxy(proxy, failure is None)
        except ClusterUnavailable as exc:
            logger.warning("proxy #%d: could not share the test result (%s)", index, exc.message)
        if failure is not None:
            return ProbeResult(False, failure.message, kind=failure.kind.value, duration=duration)
        return ProbeResult(True, f"DeepSeek answered through this exit in {duration:.2f}s", duration=duration)

    async def try_prompt(self, model: str, prompt: str, account_id: str | None) -> TesterReply:
        if account_id is not None:
            await self._current(account_id)
        return await self.turns.run(self.pool, model, prompt, account_id)

    async def set_token(self, account_id: str, token: str) -> AccountView:
        await self._current(account_id)
        raise AdminError(AdminErrorKind.UNAVAILABLE, "setting a token from the console is not available in cluster "
                                                     "mode yet: put it in the account's `token` in config.json")

    async def probe_account(self, account_id: str) -> dict[str, object]:
        await self._current(account_id)
        raise AdminError(AdminErrorKind.UNAVAILABLE, "the live probe runs per replica: use "
                                                     "`deepseek2api check --live` in cluster mode")


__all__ = ["ClusterBackend"]
