"""Helpers for the account pool tests: a scripted login, a fake clock, pool construction."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.pool.accounts import AccountPool
from deepseek2api.pool.proxies import ProxyPool
from deepseek2api.settings import AccountSettings, PoolSettings
from deepseek2api.store import MemoryStateStore, StateStore


class FakeClock:
    """Wall clock the tests move by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeLogin:
    """Counts logins per account; `fail[account_id] = ErrorKind` makes that account's login fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, str | None]] = []
        self.fail: dict[str, UpstreamError] = {}
        self.active = 0
        self.max_active: dict[str, int] = {}
        self._active_by_account: dict[str, int] = {}

    def count(self, account_id: str | None = None) -> int:
        return sum(1 for acc, _ in self.calls if account_id is None or acc == account_id)

    async def __call__(self, account: AccountSettings, proxy: str | None) -> str:
        self.calls.append((account.id, proxy))
        now_active = self._active_by_account.get(account.id, 0) + 1
        self._active_by_account[account.id] = now_active
        self.max_active[account.id] = max(self.max_active.get(account.id, 0), now_active)
        try:
            await asyncio.sleep(self.delay)
            error = self.fail.get(account.id)
            if error is not None:
                raise UpstreamFailure(error)
            return f"token-{account.id}-{self.count(account.id)}"
        finally:
            self._active_by_account[account.id] -= 1


def accounts(*ids: str, **extra: Any) -> list[AccountSettings]:
    return [AccountSettings(email=f"{i}@example.com", name=i, password="pw", **extra) for i in ids]


def error(kind: ErrorKind, **extra: Any) -> UpstreamError:
    return UpstreamError(kind=kind, message=f"simulated {kind.value}", **extra)


async def make_pool(
    ids: list[AccountSettings] | tuple[str, ...] = ("a", "b", "c"),
    *,
    store: StateStore | None = None,
    login: FakeLogin | None = None,
    proxies: ProxyPool | None = None,
    clock: FakeClock | None = None,
    seed: int = 0,
    **pool_settings: Any,
) -> tuple[AccountPool, FakeLogin, StateStore]:
    login = login or FakeLogin()
    store = store if store is not None else MemoryStateStore()
    account_list = accounts(*ids) if ids and isinstance(ids[0], str) else list(ids)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {"rng": random.Random(seed)}
    if clock is not None:
        kwargs["clock"] = clock
    pool = AccountPool(
        account_list,
        settings=PoolSettings(**pool_settings),
        store=store,
        proxies=proxies,
        login=login,
        **kwargs,
    )
    await pool.start()
    return pool, login, store
