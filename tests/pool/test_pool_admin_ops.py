"""The pool operations behind the console: clear a cool-down, disable/enable, add/remove at runtime,
pinned leases, re-login, last success/error and what the observer is told."""

from __future__ import annotations

import asyncio

import pytest

from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.pool.errors import (
    EditRefusal,
    PoolEditRefused,
    PoolExhausted,
    PoolReason,
)
from deepseek2api.pool.proxies import ProxyPool
from deepseek2api.settings import AccountSettings
from deepseek2api.store import MemoryStateStore
from pool_support import FakeClock, accounts, error, make_pool


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def queue_waited(self, seconds: float) -> None:
        self.events.append(("waited", round(seconds, 3) >= 0))

    def queue_rejected(self, reason: str) -> None:
        self.events.append(("rejected", reason))

    def account_transition(self, from_state: str, to_state: str) -> None:
        self.events.append(("transition", f"{from_state}->{to_state}"))

    def login(self, result: str) -> None:
        self.events.append(("login", result))

    def proxy_used(self, proxy: str | None) -> None:
        self.events.append(("proxy_used", proxy))

    def proxy_failed(self, proxy: str | None) -> None:
        self.events.append(("proxy_failed", proxy))


async def test_clearing_a_cooldown_makes_the_account_ready_at_once() -> None:
    clock = FakeClock()
    pool, _, _ = await make_pool(("a",), clock=clock)
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=300))
    assert pool.usable_count == 0
    assert pool.clear_cooldown("a") is True
    assert pool.record("a").status == "ready" and pool.usable_count == 1
    assert pool.clear_cooldown("a") is False  # nothing to clear
    async with pool.lease() as lease:
        assert lease.account_id == "a"
    await pool.close()


async def test_a_cleared_cooldown_wakes_a_waiting_request() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=30)
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=20))
    waiter = asyncio.ensure_future(pool.lease().__aenter__())
    await asyncio.sleep(0.01)
    assert not waiter.done() and pool.waiting == 1
    pool.clear_cooldown("a")
    lease = await asyncio.wait_for(waiter, 5)
    assert lease.account_id == "a"
    lease._release()
    await pool.close()


async def test_disabled_accounts_get_no_leases_and_the_choice_survives_a_restart() -> None:
    store = MemoryStateStore()
    pool, _, _ = await make_pool(("a", "b"), store=store)
    pool.set_enabled("a", False)
    for _ in range(4):
        async with pool.lease() as lease:
            assert lease.account_id == "b"
    await pool.close()
    again, _, _ = await make_pool(("a", "b"), store=store)
    assert again.record("a").status == "disabled" and again.record("a").reason == "disabled from the console"
    again.set_enabled("a", True)
    assert again.record("a").status == "ready"
    await again.close()
    third, _, _ = await make_pool(("a", "b"), store=store)
    assert third.record("a").status == "ready"
    await third.close()


async def test_an_account_disabled_in_config_stays_disabled_after_a_restart() -> None:
    store = MemoryStateStore()
    listed = accounts("a") + [AccountSettings(email="b@x", name="b", password="p", enabled=False)]
    pool, _, _ = await make_pool(listed, store=store)
    pool.set_enabled("b", True)
    assert pool.record("b").status == "ready"  # for this run
    await pool.close()
    again, _, _ = await make_pool(listed, store=store)
    assert again.record("b").status == "disabled"
    await again.close()


async def test_accounts_added_at_runtime_serve_and_can_be_removed_when_idle() -> None:
    pool, _, _ = await make_pool(("a",))
    pool.set_enabled("a", False)
    with pytest.raises(PoolExhausted):
        await pool.lease().__aenter__()
    await pool.add_account(AccountSettings(email="new@example.com", password="pw-new"))
    async with pool.lease() as lease:
        assert lease.account_id == "new@example.com"
        assert await lease.token() == "token-new@example.com-1"
        with pytest.raises(PoolEditRefused) as busy:
            pool.remove_account("new@example.com")
        assert busy.value.kind is EditRefusal.IN_USE
    with pytest.raises(PoolEditRefused) as exists:
        await pool.add_account(AccountSettings(email="new@example.com", password="other"))
    assert exists.value.kind is EditRefusal.EXISTS
    pool.remove_account("new@example.com")
    assert [r.id for r in pool.records()] == ["a"]
    with pytest.raises(PoolEditRefused) as missing:
        pool.remove_account("new@example.com")
    assert missing.value.kind is EditRefusal.NOT_FOUND
    pool.assert_idle()
    await pool.close()


async def test_a_pinned_lease_uses_only_that_account_and_waits_for_it() -> None:
    pool, _, _ = await make_pool(("a", "b", "c"), queue_timeout=30)
    for _ in range(5):
        async with pool.lease(only="b") as lease:
            assert lease.account_id == "b"
    held = await pool.lease(only="c").__aenter__()
    pinned = asyncio.ensure_future(pool.lease(only="c").__aenter__())
    await asyncio.sleep(0.01)
    assert not pinned.done()  # a or b are free, but the pin waits for c
    held._release()
    second = await asyncio.wait_for(pinned, 5)
    assert second.account_id == "c"
    second._release()
    with pytest.raises(PoolEditRefused):
        await pool.lease(only="ghost").__aenter__()
    pool.assert_idle()
    await pool.close()


async def test_a_pinned_lease_on_a_banned_account_is_refused() -> None:
    pool, _, _ = await make_pool(("a", "b"))
    async with pool.lease(only="a") as lease:
        lease.report(error(ErrorKind.ACCOUNT_BANNED))
    with pytest.raises(PoolExhausted) as refused:
        await pool.lease(only="a").__aenter__()
    assert refused.value.reason is PoolReason.NONE_USABLE
    await pool.close()


async def test_last_success_last_error_and_token_age_are_recorded() -> None:
    clock = FakeClock(5000.0)
    pool, _, _ = await make_pool(("a",), clock=clock)
    record = pool.record("a")
    assert (record.last_success, record.last_error, record.token_at) == (None, None, None)
    async with pool.lease() as lease:
        await lease.token()
        clock.now += 10
        lease.report_success()
    assert (record.token_at, record.last_success) == (5000.0, 5010.0)
    clock.now += 5
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.BUSY))
    assert record.last_error == "busy: simulated busy" and record.last_error_at == 5015.0
    await pool.close()


async def test_relogin_replaces_the_token_and_reports_a_failed_login() -> None:
    pool, login, _ = await make_pool(("a",))
    async with pool.lease() as lease:
        first = await lease.token()
    assert await pool.relogin("a") is None
    async with pool.lease() as lease:
        assert await lease.token() != first
    assert login.count("a") == 2
    login.fail["a"] = error(ErrorKind.BAD_CREDENTIALS)
    failed = await pool.relogin("a")
    assert failed is not None and failed.kind is ErrorKind.BAD_CREDENTIALS
    assert pool.record("a").status == "bad_credentials"
    await pool.close()


async def test_the_observer_hears_waits_rejections_transitions_and_logins() -> None:
    recorder = Recorder()
    pool, login, _ = await make_pool(("a",), queue_size=0)
    pool.observer = recorder
    async with pool.lease() as lease:
        await lease.token()
        with pytest.raises(PoolExhausted):
            await pool.lease().__aenter__()  # the queue holds nobody
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=60))
    pool.clear_cooldown("a")
    login.fail["a"] = error(ErrorKind.BAD_CREDENTIALS)
    assert await pool.relogin("a") is not None
    assert recorder.events == [
        ("waited", True), ("login", "ok"), ("rejected", "queue_full"),
        ("transition", "ready->cooling"), ("transition", "cooling->ready"),
        ("login", "bad_credentials"), ("transition", "ready->bad_credentials"),
    ]
    await pool.close()


async def test_exits_count_leases_in_use_and_tell_the_observer() -> None:
    recorder = Recorder()
    proxies = ProxyPool(["http://p1:1", "http://p2:2"], enabled=True, observer=recorder, quarantine_failures=1)
    pool, _, _ = await make_pool(("a", "b"), proxies=proxies)
    first = await pool.lease().__aenter__()
    second = await pool.lease().__aenter__()
    assert {first.proxy, second.proxy} == {"http://p1:1", "http://p2:2"}
    assert pool.exit_in_use("http://p1:1") == 1 and pool.exit_in_use("http://p2:2") == 1
    first.report(error(ErrorKind.NETWORK))
    first._release()
    second._release()
    assert pool.exit_in_use("http://p1:1") == 0 and pool.exit_in_use(None) == 0
    assert sorted(e for e in recorder.events if e[0] == "proxy_used") == [("proxy_used", "http://p1:1"),
                                                                          ("proxy_used", "http://p2:2")]
    assert ("proxy_failed", first.proxy) in recorder.events
    views = {url: (picks, failures, left) for url, picks, failures, left in proxies.views()}
    picks, failures, left = views[first.proxy or ""]
    assert picks == 1 and failures == 1 and left is not None and 0 < left <= 60.0  # quarantined
    assert views[second.proxy or ""][2] is None
    await pool.close()
