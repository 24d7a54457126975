"""A fake pool behind the console's `AdminBackend`, and a small app that mounts the console routes.

The fake keeps real secrets (passwords, tokens) so the tests can prove none of them ever leaves in a
response: its views are built the way a real backend must build them, from names and numbers only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from deepseek2api.api.admin import (
    AccountView,
    AdminAuth,
    AdminError,
    AdminErrorKind,
    ClusterView,
    PoolSummary,
    ProbeResult,
    ProxyView,
    RequestEntry,
    RequestLog,
    TesterReply,
    console_routes,
)
from deepseek2api.api.auth import Authenticator
from deepseek2api.api.metrics import GatewayMetrics, PoolGauges, metrics_route
from deepseek2api.settings import AccountSettings, redact_proxy

# The console's browser tests drive Debian's chromium (Playwright's own browser download does not work offline).
CHROMIUM = os.environ.get("DS2API_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def save_shot(folder: Path, page: Any, name: str) -> None:
    """A full-page screenshot into the test artifacts (git-ignored); the path is printed for the CI log."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

STATES = ("ready", "cooling", "muted", "banned", "bad_credentials", "disabled")
SECRET_PASSWORDS = ("pw-alpha-Secret1", "pw-beta-Secret2", "pw-gamma-Secret3")
SECRET_TOKENS = ("tok-alpha-8f1e2d", "tok-beta-77aa01")


@dataclass
class FakeAccount:
    settings: AccountSettings
    state: str = "ready"
    reason: str = ""
    until: float | None = None
    token: str | None = None
    token_at: float | None = None
    in_use: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    source: str = "config"
    requests: int = 0


@dataclass
class FakeBackend:
    """Implements `AdminBackend` over a dict; `calls` records every action for the assertions."""

    requests: RequestLog
    clock: Callable[[], float] = time.time
    accounts_by_id: dict[str, FakeAccount] = field(default_factory=dict)
    proxy_urls: list[str] = field(default_factory=list)
    quarantined: dict[int, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def with_accounts(cls, requests: RequestLog, clock: Callable[[], float] = time.time) -> FakeBackend:
        fake = cls(requests, clock)
        now = clock()
        for i, (email, password) in enumerate(
                [("alpha@example.com", SECRET_PASSWORDS[0]), ("beta@example.com", SECRET_PASSWORDS[1])]):
            fake.accounts_by_id[email] = FakeAccount(AccountSettings(email=email, password=password),
                                                     token=SECRET_TOKENS[i], token_at=now - 3600)
        mobile = AccountSettings(mobile="13800000000", password=SECRET_PASSWORDS[2], name="gamma")
        fake.accounts_by_id["gamma"] = FakeAccount(mobile, state="banned", reason="account banned by DeepSeek")
        fake.proxy_urls = ["socks5://user:proxy-Secret9@10.0.0.1:1080", "http://10.0.0.2:3128"]
        return fake

    # ---- test controls --------------------------------------------------------------

    def cool(self, account_id: str, seconds: float, message: str = "too many requests") -> None:
        acc = self.accounts_by_id[account_id]
        acc.state, acc.reason, acc.until = "cooling", f"rate limited: {message}", self.clock() + seconds
        acc.last_error, acc.last_error_at = f"rate_limited: {message}", self.clock()

    def _get(self, account_id: str) -> FakeAccount:
        try:
            return self.accounts_by_id[account_id]
        except KeyError:
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no account {account_id!r}") from None

    def _view(self, acc: FakeAccount) -> AccountView:
        s = acc.settings
        return AccountView(id=s.id, state=acc.state, reason=acc.reason, until=acc.until, in_use=acc.in_use,
                           last_success=acc.last_success, last_error=acc.last_error, last_error_at=acc.last_error_at,
                           token_obtained_at=acc.token_at if acc.token else None,
                           proxy=redact_proxy(self.proxy_urls[0]) if s.id == "gamma" else "direct",
                           requests=acc.requests, login="email" if s.email else "mobile", source=acc.source)

    # ---- AdminBackend ---------------------------------------------------------------

    async def refresh(self) -> None:
        """The fake's views are always current."""

    def cluster(self) -> ClusterView | None:
        return None

    def summary(self) -> PoolSummary:
        usable = sum(1 for a in self.accounts_by_id.values() if a.state == "ready")
        return PoolSummary(mode="single", in_flight=sum(a.in_use for a in self.accounts_by_id.values()),
                           capacity=usable, queue_depth=0, queue_limit=64)

    def accounts(self) -> Sequence[AccountView]:
        return [self._view(a) for a in self.accounts_by_id.values()]

    def proxies(self) -> Sequence[ProxyView]:
        now = self.clock()
        out = []
        for i, url in enumerate(self.proxy_urls):
            until = self.quarantined.get(i)
            out.append(ProxyView(index=i, proxy=redact_proxy(url), state="quarantined" if until and until > now else "ok",
                                 picks=3 * (i + 1), failures=3 if until else 0, quarantine_until=until))
        return out

    def models(self) -> Sequence[str]:
        return ["deepseek-chat", "deepseek-reasoner"]

    async def test_account(self, account_id: str) -> ProbeResult:
        acc = self._get(account_id)
        self.calls.append(("test", account_id))
        if acc.state == "banned":
            return ProbeResult(False, "the account is banned", kind="account_banned", duration=0.2)
        acc.last_success = self.clock()
        return ProbeResult(True, "logged in and answered a one-word turn", duration=0.4)

    async def relogin(self, account_id: str) -> ProbeResult:
        acc = self._get(account_id)
        self.calls.append(("relogin", account_id))
        acc.token, acc.token_at = "tok-fresh-Secret", self.clock()
        return ProbeResult(True, "logged in again", duration=0.3)

    async def clear_cooldown(self, account_id: str) -> AccountView:
        acc = self._get(account_id)
        self.calls.append(("clear_cooldown", account_id))
        if acc.state in ("cooling", "muted"):
            acc.state, acc.reason, acc.until = "ready", "", None
        return self._view(acc)

    async def set_enabled(self, account_id: str, enabled: bool) -> AccountView:
        acc = self._get(account_id)
        self.calls.append(("enable" if enabled else "disable", account_id))
        acc.state, acc.reason = ("ready", "") if enabled else ("disabled", "disabled from the console")
        return self._view(acc)

    async def add_accounts(self, accounts: Sequence[AccountSettings]) -> Sequence[AccountView]:
        for account in accounts:
            if account.id in self.accounts_by_id:
                raise AdminError(AdminErrorKind.CONFLICT, f"account {account.id!r} exists already")
        for account in accounts:
            self.calls.append(("add", account.id))
            self.accounts_by_id[account.id] = FakeAccount(account, source="runtime")
        return [self._view(self.accounts_by_id[a.id]) for a in accounts]

    async def remove_account(self, account_id: str) -> None:
        acc = self._get(account_id)
        if acc.source != "runtime":
            raise AdminError(AdminErrorKind.CONFLICT, "accounts from config.json can only be disabled")
        self.calls.append(("remove", account_id))
        del self.accounts_by_id[account_id]

    async def test_proxy(self, index: int) -> ProbeResult:
        if not 0 <= index < len(self.proxy_urls):
            raise AdminError(AdminErrorKind.NOT_FOUND, f"no proxy #{index}")
        self.calls.append(("test_proxy", str(index)))
        return ProbeResult(True, "connected in 0.05s", duration=0.05)

    async def try_prompt(self, model: str, prompt: str, account_id: str | None) -> TesterReply:
        acc = self._get(account_id) if account_id else self.accounts_by_id["alpha@example.com"]
        self.calls.append(("tester", acc.settings.id))
        acc.requests += 1
        acc.last_success = self.clock()
        self.requests.record(RequestEntry(time=self.clock(), surface="tester", model=model, status=200,
                                          duration=0.42, ttft=0.21, tokens_in=len(prompt.split()), tokens_out=1,
                                          account_id=acc.settings.id, request_id=f"req_tester_{acc.requests}"))
        return TesterReply(True, "Hello", account_id=acc.settings.id, model=model, duration=0.42, ttft=0.21,
                           tokens_in=len(prompt.split()), tokens_out=1)

    async def set_token(self, account_id: str, token: str) -> AccountView:
        acc = self._get(account_id)
        if token.startswith("bad"):
            raise AdminError(AdminErrorKind.INVALID, "DeepSeek did not accept the token (token_invalid)")
        self.calls.append(("set_token", account_id))
        return self._view(acc)

    async def probe_account(self, account_id: str) -> dict[str, object]:
        self._get(account_id)
        self.calls.append(("probe", account_id))
        return {"account_id": account_id, "ok": True, "error_kind": None, "unknown_shapes": [], "steps": []}


ADMIN_KEY = "admin-key-Secret-0001"
CLIENT_KEY = "client-key-Secret-0002"


def console_app(backend: FakeBackend, requests: RequestLog, *, admin_keys: bool = True,
                metrics: GatewayMetrics | None = None, metrics_key: bool = False) -> Starlette:
    """A bare app with the console (and /metrics when given): what the composition root will do."""
    keys = [("client", CLIENT_KEY)]
    admins = [("ops", ADMIN_KEY)] if admin_keys else []
    routes = console_routes(backend, AdminAuth(admins, keys), requests, clock=backend.clock)
    if metrics is not None:
        check = Authenticator(admins + keys).authenticate if metrics_key else None
        routes.append(metrics_route(metrics, check=check))
    return Starlette(routes=routes)


def gauges_from(backend: FakeBackend) -> Callable[[], PoolGauges]:
    def snapshot() -> PoolGauges:
        counts = dict.fromkeys(STATES, 0)
        for acc in backend.accounts_by_id.values():
            counts[acc.state] += 1
        summary = backend.summary()
        return PoolGauges(accounts_by_state=counts, queue_depth=summary.queue_depth, capacity=summary.capacity,
                          proxies_quarantined=len(backend.quarantined), proxies_total=len(backend.proxy_urls))
    return snapshot
