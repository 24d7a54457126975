"""The console's `AdminBackend` over the real pool: the adapter between the admin API and pool/, chat/.

Views are built from the pool's live records with names and numbers only (no password, no token,
proxies redacted). Actions go through the pool's public operations; accounts added at runtime are
written to the `AccountBook` (the state file, never config.json) and their secrets registered with
the log redactor before anything can log them. "Test now" and the tester run a real turn through the
runner on a lease pinned to one account, so they obey the one-stream-per-account rule like any
request, and are reported to the request observer (surface "tester") like any request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ...chat.errors import UpstreamError
from ...chat.runner import TurnRunner
from ...chat.turn import ModelRegistry
from ...deepseek.errors import UpstreamFailure
from ...deepseek.probe import LiveReport, ProbeStep, probe_account
from ...logs import redactor
from ...pool.accounts import AccountPool
from ...pool.errors import PoolEditRefused, PoolExhausted
from ...pool.health import STATES
from ...pool.proxies import ProxyPool
from ...pool.record import AccountRecord
from ...settings import AccountSettings, redact_proxy
from ...store.account_book import AccountBook, AccountBookError
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
    TesterReply,
)
from .turns import ConsoleTurns, PinnedLeases, refused

logger = logging.getLogger(__name__)

ProbeExit = Callable[[str | None], Awaitable[UpstreamError | None]]


class PoolBackend:
    """`AdminBackend` for one gateway process."""

    def __init__(self, pool: AccountPool, proxies: ProxyPool, runner: TurnRunner, registry: ModelRegistry,
                 book: AccountBook, *, observer: RequestObserver | None, probe_exit: ProbeExit,
                 queue_limit: int) -> None:
        self.pool = pool
        self.proxy_pool = proxies
        self.runner = runner
        self.registry = registry
        self.book = book
        self.observer = observer
        self.probe_exit = probe_exit
        self.queue_limit = queue_limit
        self.runtime_ids: set[str] = set()
        self.turns = ConsoleTurns(runner, registry, observer)

    async def load_runtime_accounts(self) -> int:
        """Merge the accounts added from the console (before `pool.start()`); returns how many."""
        try:
            stored = await self.book.load()
        except AccountBookError as exc:
            logger.warning("could not read the accounts added from the console (%s)", exc)
            return 0
        added = 0
        for account_id, fields in stored.items():
            try:
                account = AccountSettings.model_validate(fields)
            except ValueError:
                logger.warning("runtime account %s: invalid entry in the state file, skipped", account_id)
                continue
            _register(account)
            try:
                await self.pool.add_account(account)
            except PoolEditRefused:
                logger.warning("runtime account %s is also in config.json: the config's entry is used", account_id)
                continue
            self.runtime_ids.add(account.id)
            added += 1
        return added

    # ---- views ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """The views read the live records: nothing to fetch."""

    def cluster(self) -> ClusterView | None:
        return None

    def summary(self) -> PoolSummary:
        pool = self.pool
        return PoolSummary(mode="single", in_flight=pool.leases_out, capacity=pool.capacity,
                           queue_depth=pool.waiting, queue_limit=self.queue_limit)

    def accounts(self) -> Sequence[AccountView]:
        return [self._view(record) for record in self.pool.records()]

    def _view(self, acc: AccountRecord) -> AccountView:
        now = self.pool.now()
        state = acc.effective_status(now)
        settings = acc.settings
        return AccountView(
            id=acc.id, state=state.value, reason="" if state == "ready" else acc.reason,
            until=acc.until if state.timed else None, in_use=acc.in_use, last_success=acc.last_success,
            last_error=acc.last_error, last_error_at=acc.last_error_at,
            token_obtained_at=(acc.token_at or None) if acc.token is not None else None,
            has_token=acc.token is not None,
            proxy=self._exit_of(settings), requests=acc.requests, failures=acc.failures,
            login="email" if settings.email and settings.can_login else "mobile" if settings.can_login else "token",
            source="runtime" if acc.id in self.runtime_ids else "config", empty_answers=acc.empty_answers)

    def _exit_of(self, settings: AccountSettings) -> str:
        if settings.proxy:
            return redact_proxy(settings.proxy)
        proxies = self.proxy_pool
        if not proxies.active:
            return "direct"
        if proxies.strategy == "sticky":
            assigned = proxies.assigned(settings.id)
            if assigned is not None:
                return redact_proxy(assigned)
        return f"pool ({proxies.strategy})"

    def proxies(self) -> Sequence[ProxyView]:
        wall = time.time()
        return [ProxyView(index=index, proxy=redact_proxy(url) if url else "direct",
                          state="quarantined" if left is not None else "ok", in_use=self.pool.exit_in_use(url),
                          picks=picks, failures=failures, quarantine_until=wall + left if left is not None else None)
                for index, (url, picks, failures, left) in enumerate(self.proxy_pool.views())]

    def models(self) -> Sequence[str]:
        return [spec.id for spec in self.registry.listed()]

    def gauges(self) -> PoolGauges:
        """What /metrics reads at each scrape: counts only."""
        now = self.pool.now()
        states = dict.fromkeys((s.value for s in STATES), 0)
        for record in self.pool.records():
            states[record.effective_status(now).value] += 1
        views = self.proxy_pool.views()
        return PoolGauges(accounts_by_state=states, queue_depth=self.pool.waiting, capacity=self.pool.capacity,
                          proxies_quarantined=sum(1 for v in views if v[3] is not None), proxies_total=len(views))

    # ---- account actions --------------------------------------------------------------

    def _record(self, account_id: str) -> AccountRecord:
        try:
            return self.pool.record(account_id)
        except PoolEditRefused as exc:
            raise refused(exc) from None

    async def test_account(self, account_id: str) -> ProbeResult:
        self._record(account_id)
        return await self.turns.test_account(self.pool, account_id)

    async def relogin(self, account_id: str) -> ProbeResult:
        record = self._record(account_id)
        if not record.settings.can_login:
            raise AdminError(AdminErrorKind.INVALID, "this account has only a token and no password: it cannot log in")
        started = time.perf_counter()
        try:
            failure = await self.pool.relogin(account_id)
        except PoolEditRefused as exc:
            raise refused(exc) from None
        duration = time.perf_counter() - started
        if failure is not None:
            return ProbeResult(False, failure.message, kind=failure.kind.value, duration=duration)
        return ProbeResult(True, "logged in again", duration=duration)

    async def set_token(self, account_id: str, token: str) -> AccountView:
        record = self._record(account_id)
        token = check_token_text(token)
        redactor.add(token)  # masked in every log line from now on, accepted or not
        proxy = self.proxy_pool.exit_for(record.settings)
        try:  # a cheap authenticated call: a token DeepSeek refuses is never stored
            await self.runner.client.current_user(token, proxy=proxy)
        except UpstreamFailure as failure:
            raise AdminError(AdminErrorKind.INVALID, f"DeepSeek did not accept the token ({failure.kind.value}: "
                                                     f"{failure.error.message})") from None
        self.pool.set_token(account_id, token)
        return self._view(record)

    async def probe_account(self, account_id: str) -> dict[str, object]:
        self._record(account_id)
        try:
            async with self.pool.lease(only=account_id) as lease:
                try:
                    token = await lease.token()
                except UpstreamFailure as failure:
                    report = LiveReport(account_id, [ProbeStep("token", False, f"{failure.kind.value}: "
                                                                               f"{failure.error.message}")],
                                        error_kind=failure.kind.value)
                    return report.as_dict()
                report = await probe_account(self.runner.client, account_id, token, proxy=lease.proxy)
                if report.ok:
                    lease.report_success()
                return report.as_dict()
        except PoolExhausted as exc:
            raise AdminError(AdminErrorKind.CONFLICT, f"the account cannot be probed now: {exc.message}") from None
        except PoolEditRefused as exc:
            raise refused(exc) from None

    async def clear_cooldown(self, account_id: str) -> AccountView:
        record = self._record(account_id)
        self.pool.clear_cooldown(account_id)
        return self._view(record)

    async def set_enabled(self, account_id: str, enabled: bool) -> AccountView:
        record = self._record(account_id)
        self.pool.set_enabled(account_id, enabled)
        await self.pool.flush()  # persisted when the answer says so
        return self._view(record)

    async def add_accounts(self, accounts: Sequence[AccountSettings]) -> Sequence[AccountView]:
        known = {record.id for record in self.pool.records()}
        clash = [a.id for a in accounts if a.id in known]
        if clash:
            raise AdminError(AdminErrorKind.CONFLICT, f"account {clash[0]!r} is in the pool already")
        added: list[AccountView] = []
        for account in accounts:
            _register(account)
            fields = account.model_dump(mode="json", exclude_none=True, exclude={"enabled"})
            try:
                if not await self.book.add(account.id, fields):
                    raise AdminError(AdminErrorKind.CONFLICT, f"account {account.id!r} was added already")
            except AccountBookError as exc:
                raise AdminError(AdminErrorKind.UNAVAILABLE, f"the state file could not be written ({exc})") from None
            try:
                await self.pool.add_account(account)
            except PoolEditRefused as exc:
                await self.book.remove(account.id)
                raise refused(exc) from None
            self.runtime_ids.add(account.id)
            added.append(self._view(self.pool.record(account.id)))
        return added

    async def remove_account(self, account_id: str) -> None:
        self._record(account_id)
        if account_id not in self.runtime_ids:
            raise AdminError(AdminErrorKind.CONFLICT,
                             "accounts from config.json can only be disabled here (edit the file to remove them)")
        try:
            self.pool.remove_account(account_id)
        except PoolEditRefused as exc:
            raise refused(exc) from None
        self.runtime_ids.discard(account_id)
        try:
            await self.book.remove(account_id)
        except AccountBookError as exc:
            raise AdminError(AdminErrorKind.UNAVAILABLE, f"removed for now, but the state file could not be "
                                                         f"written ({exc}): it comes back after a restart") from None

    # ---- proxies and tester -----------------------------------------------------------

    async def test_proxy(self, index: int) -> ProbeResult:
        entries = self.proxy_pool.entries
        if not 0 <= index < len(entries):
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no proxy #{index}")
        proxy = entries[index] or None
        started = time.perf_counter()
        failure = await self.probe_exit(proxy)
        duration = time.perf_counter() - started
        if failure is not None:
            self.proxy_pool.report_failure(proxy)
            return ProbeResult(False, failure.message, kind=failure.kind.value, duration=duration)
        self.proxy_pool.report_success(proxy)  # a working exit leaves quarantine
        return ProbeResult(True, f"DeepSeek answered through this exit in {duration:.2f}s", duration=duration)

    async def try_prompt(self, model: str, prompt: str, account_id: str | None) -> TesterReply:
        if account_id is not None:
            self._record(account_id)
        return await self.turns.run(self.pool, model, prompt, account_id)


MAX_TOKEN_CHARS = 4096


def check_token_text(token: object) -> str:
    """A pasted token as text: one line, no spaces, a sensible length (INVALID otherwise; never echoed)."""
    if not isinstance(token, str):
        raise AdminError(AdminErrorKind.INVALID, "`token` must be a string")
    token = token.strip().strip('"')
    if not 16 <= len(token) <= MAX_TOKEN_CHARS or any(c.isspace() or ord(c) < 32 for c in token):
        raise AdminError(AdminErrorKind.INVALID, "`token` must be the `value` of `userToken` (one word, "
                                                 "16 to 4096 characters)")
    return token


def _register(account: AccountSettings) -> None:
    """Its secrets go to the log redactor before anything can log them."""
    for secret in (account.password, account.token):
        if secret:
            redactor.add(secret)


__all__ = ["PinnedLeases", "PoolBackend", "ProbeExit"]

