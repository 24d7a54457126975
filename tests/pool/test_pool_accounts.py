"""Account pool: rotation, concurrency cap, bounded FIFO queue, health states, tokens, persistence."""

from __future__ import annotations

import asyncio
import collections
import logging
from pathlib import Path

import pytest

from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.logs import redactor
from deepseek2api.pool.accounts import AccountPool, PoolExhausted
from deepseek2api.pool.proxies import ProxyPool
from deepseek2api.settings import AccountSettings, PoolSettings
from deepseek2api.store import AccountState, MemoryStateStore, SqliteStateStore
from pool_support import FakeClock, FakeLogin, accounts, error, make_pool

BOUND = 10.0  # safety net so a broken pool fails the test instead of hanging it


async def lease_once(pool: AccountPool, **kwargs: object) -> str:
    async with pool.lease(**kwargs) as lease:  # type: ignore[arg-type]
        return lease.account_id


# ---- rotation and concurrency -------------------------------------------------------------


async def test_rotation_is_least_recently_used() -> None:
    pool, _, _ = await make_pool(("a", "b", "c"))
    order = [await lease_once(pool) for _ in range(30)]
    for start in range(0, 30, 3):
        assert sorted(order[start : start + 3]) == ["a", "b", "c"]  # every account once per round
    assert collections.Counter(order) == {"a": 10, "b": 10, "c": 10}
    pool.assert_idle()
    await pool.close()


async def test_first_pick_is_random_among_equals() -> None:
    firsts = set()
    for seed in range(20):
        pool, _, _ = await make_pool(("a", "b", "c"), seed=seed)
        firsts.add(await lease_once(pool))
        await pool.close()
    assert len(firsts) > 1


@pytest.mark.parametrize("cap", [1, 2])
async def test_concurrency_cap_is_never_exceeded(cap: int) -> None:
    pool, _, _ = await make_pool(("a", "b", "c"), per_account_concurrency=cap, queue_size=64)
    in_use: collections.Counter[str] = collections.Counter()
    peak: collections.Counter[str] = collections.Counter()
    served: list[str] = []

    async def request(i: int) -> None:
        async with pool.lease() as lease:
            in_use[lease.account_id] += 1
            peak[lease.account_id] = max(peak[lease.account_id], in_use[lease.account_id])
            for _ in range(1 + i % 3):
                await asyncio.sleep(0)
            in_use[lease.account_id] -= 1
            served.append(lease.account_id)

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(50))), BOUND)
    assert len(served) == 50
    assert max(peak.values()) == cap and set(peak) == {"a", "b", "c"}
    assert pool.leases_out == 0
    pool.assert_idle()
    await pool.close()


async def test_waiters_are_served_first_in_first_out() -> None:
    pool, _, _ = await make_pool(("a",))
    order: list[int] = []

    async def waiter(i: int) -> None:
        async with pool.lease():
            order.append(i)
            await asyncio.sleep(0)

    async with pool.lease():
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(waiter(i)))
            await asyncio.sleep(0)  # enqueue in this order
        assert pool.waiting == 5
    await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    assert order == [0, 1, 2, 3, 4]
    pool.assert_idle()
    await pool.close()


# ---- exhaustion -------------------------------------------------------------------------


async def test_queue_full() -> None:
    pool, _, _ = await make_pool(("a",), queue_size=2)
    async with pool.lease():
        waiters = [asyncio.create_task(lease_once(pool)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(PoolExhausted) as info:
            await lease_once(pool)
        assert info.value.reason == "queue_full" and info.value.retry_after > 0
    assert sorted(await asyncio.wait_for(asyncio.gather(*waiters), BOUND)) == ["a", "a"]
    pool.assert_idle()
    await pool.close()


async def test_timeout_when_all_busy() -> None:
    pool, _, _ = await make_pool(("a", "b"), queue_timeout=0.05)
    async with pool.lease(), pool.lease():
        with pytest.raises(PoolExhausted) as info:
            await asyncio.wait_for(lease_once(pool), BOUND)
    assert info.value.reason == "all_busy"
    assert 0 < info.value.retry_after <= 10 and "busy" in info.value.message
    pool.assert_idle()
    await pool.close()


async def test_all_cooling_fails_fast_with_retry_after() -> None:
    clock = FakeClock()
    pool, _, _ = await make_pool(("a", "b"), clock=clock, queue_timeout=30)
    async with pool.lease(exclude={"b"}) as lease:
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=90))
    async with pool.lease() as lease:
        assert lease.account_id == "b"
        lease.report(error(ErrorKind.BUSY))  # cooldown_busy: 5 s
    clock.now += 6  # b is back, a still cooling
    assert await lease_once(pool) == "b"
    async with pool.lease() as lease:
        assert lease.account_id == "b"
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=200))
    with pytest.raises(PoolExhausted) as info:
        await asyncio.wait_for(lease_once(pool), BOUND)  # fails at once, no 30 s wait
    assert info.value.reason == "all_cooling"
    assert info.value.retry_after == pytest.approx(84.0)  # a returns first: 90 − 6
    assert pool.usable_count == 0
    clock.now += 100
    assert pool.usable_count == 1 and await lease_once(pool) == "a"
    await pool.close()


async def test_all_cooling_retry_after_is_capped() -> None:
    clock = FakeClock()
    pool, _, _ = await make_pool(("a",), clock=clock)
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.ACCOUNT_MUTED, until=clock.now + 72 * 3600))
    with pytest.raises(PoolExhausted) as info:
        await lease_once(pool)
    assert info.value.reason == "all_cooling" and info.value.retry_after == 120.0
    await pool.close()


async def test_cooling_that_ends_within_the_wait_is_waited_for() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=BOUND, cooldown_busy=0.05)
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.BUSY))
    assert pool.usable_count == 0
    assert await asyncio.wait_for(lease_once(pool), BOUND) == "a"  # woke up when the cooling ended
    assert pool.status()[0]["state"] == "ready"
    await pool.close()


async def test_none_usable() -> None:
    pool, _, _ = await make_pool(())
    with pytest.raises(PoolExhausted) as info:
        await lease_once(pool)
    assert info.value.reason == "none_usable" and "no accounts" in info.value.message
    await pool.close()

    disabled = accounts("a") + [AccountSettings(email="b@x", password="p", enabled=False)]
    pool, _, _ = await make_pool(disabled)
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.ACCOUNT_BANNED))
    with pytest.raises(PoolExhausted) as info:
        await asyncio.wait_for(lease_once(pool), BOUND)  # immediately, not after queue_timeout
    assert info.value.reason == "none_usable"
    assert "1 banned" in info.value.message and "1 disabled" in info.value.message
    assert pool.usable_count == 0
    await pool.close()


async def test_waiters_are_turned_away_when_the_last_account_dies() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=BOUND)
    async with pool.lease() as lease:
        waiter = asyncio.create_task(lease_once(pool))
        await asyncio.sleep(0)
        lease.report(error(ErrorKind.BAD_CREDENTIALS))
        with pytest.raises(PoolExhausted) as info:
            await asyncio.wait_for(waiter, BOUND)
    assert info.value.reason == "none_usable"
    pool.assert_idle()
    await pool.close()


async def test_exclude() -> None:
    pool, _, _ = await make_pool(("a", "b"), queue_timeout=0.05)
    for _ in range(4):
        assert await lease_once(pool, exclude={"a"}) == "b"
    with pytest.raises(PoolExhausted) as info:
        await lease_once(pool, exclude={"a", "b"})
    assert info.value.reason == "none_usable" and "already tried" in info.value.message
    async with pool.lease(exclude={"a"}):
        with pytest.raises(PoolExhausted) as info:
            await lease_once(pool, exclude={"a"})  # b busy, a excluded: wait, then give up
        assert info.value.reason == "all_busy"
    pool.assert_idle()
    await pool.close()


# ---- release ----------------------------------------------------------------------------


async def test_release_on_exception_and_cancellation() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=BOUND)
    with pytest.raises(RuntimeError):
        async with pool.lease():
            raise RuntimeError("boom")
    assert pool.leases_out == 0

    entered = asyncio.Event()

    async def holder() -> None:
        async with pool.lease():
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(holder())
    await asyncio.wait_for(entered.wait(), BOUND)
    assert pool.leases_out == 1
    waiting = asyncio.create_task(lease_once(pool))
    await asyncio.sleep(0)
    waiting.cancel()  # a cancelled waiter leaves the queue
    task.cancel()
    for t in (task, waiting):
        with pytest.raises(asyncio.CancelledError):
            await t
    assert pool.leases_out == 0 and pool.waiting == 0
    assert await lease_once(pool) == "a"
    pool.assert_idle()
    await pool.close()


async def test_slot_granted_to_a_cancelled_waiter_is_passed_on() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=BOUND)
    lease_ctx = pool.lease()
    await lease_ctx.__aenter__()
    first = asyncio.create_task(lease_once(pool))
    second = asyncio.create_task(lease_once(pool))
    await asyncio.sleep(0)
    assert pool.waiting == 2
    await lease_ctx.__aexit__(None, None, None)  # grants the slot to `first` …
    first.cancel()  # … which is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, BOUND) == "a"  # the slot moved on
    pool.assert_idle()
    await pool.close()


async def test_release_happens_exactly_once() -> None:
    pool, _, _ = await make_pool(("a",), per_account_concurrency=2)
    ctx = pool.lease()
    lease = await ctx.__aenter__()
    await ctx.__aexit__(None, None, None)
    await ctx.__aexit__(None, None, None)
    lease._release()
    assert pool.leases_out == 0 and lease.released
    async with pool.lease(), pool.lease():
        assert pool.leases_out == 2
    pool.assert_idle()
    await pool.close()


# ---- tokens -----------------------------------------------------------------------------


async def test_one_login_at_a_time_per_account() -> None:
    login = FakeLogin(delay=0.01)
    pool, login, _ = await make_pool(("a",), login=login, per_account_concurrency=20)

    async def request() -> str:
        async with pool.lease() as lease:
            return await lease.token()

    tokens = await asyncio.wait_for(asyncio.gather(*(request() for _ in range(20))), BOUND)
    assert login.count() == 1 and set(tokens) == {"token-a-1"}
    assert login.max_active["a"] == 1
    pool.assert_idle()
    await pool.close()


async def test_config_token_is_used_without_login() -> None:
    pool, login, _ = await make_pool([AccountSettings(email="t@x", token="cfg-token")])
    async with pool.lease() as lease:
        assert await lease.token() == "cfg-token"
    assert login.count() == 0
    await pool.close()


async def test_token_only_account_is_marked_when_its_token_dies() -> None:
    pool, login, store = await make_pool([AccountSettings(email="t@x", token="cfg-token")])
    async with pool.lease() as lease:
        await lease.token()
        lease.report(error(ErrorKind.TOKEN_INVALID))
        with pytest.raises(UpstreamFailure) as info:
            await lease.token()
    # "token expired, paste a new one" (needs_token), never a login attempt
    assert info.value.kind is ErrorKind.NEEDS_TOKEN and login.count() == 0
    assert "paste a fresh token" in info.value.error.message
    assert pool.status()[0]["state"] == "needs_token"
    await pool.close()
    assert (await store.load())["t@x"].status == "needs_token"


async def test_relogin_then_second_failure_cools_the_account_down() -> None:
    clock = FakeClock()
    pool, login, store = await make_pool(("a", "b"), clock=clock, cooldown_rate_limited=60.0)
    async with pool.lease(exclude={"b"}) as lease:
        assert await lease.token() == "token-a-1"
        assert await lease.relogin() == "token-a-2"  # first TOKEN_INVALID: log in again
        with pytest.raises(UpstreamFailure) as info:
            await lease.relogin()  # the fresh token was refused too
    # The login worked, so the password is fine: a cool-down, not bad_credentials for good.
    assert info.value.kind is ErrorKind.TOKEN_INVALID
    assert login.count("a") == 2
    row = next(r for r in pool.status() if r["id"] == "a")
    assert row["state"] == "cooling" and row["reason"] == "token rejected right after a fresh login"
    assert not row["has_token"]
    assert await lease_once(pool) == "b"
    await pool.flush()
    assert (await store.load())["a"].status == "cooling"
    clock.now += 61  # back after the cool-down, with a fresh login
    async with pool.lease(exclude={"b"}) as lease:
        assert await lease.token() == "token-a-3"
    await pool.close()


async def test_report_then_token_path_also_cools_down_after_two_rejections() -> None:
    pool, login, _ = await make_pool(("a",))
    async with pool.lease() as lease:
        await lease.token()
        lease.report(error(ErrorKind.TOKEN_INVALID))
        assert await lease.token() == "token-a-2"
        lease.report(error(ErrorKind.TOKEN_INVALID))
    assert pool.status()[0]["state"] == "cooling" and login.count() == 2
    await pool.close()


async def test_success_between_relogins_keeps_the_account() -> None:
    pool, login, _ = await make_pool(("a",))
    async with pool.lease() as lease:
        await lease.token()
        await lease.relogin()
        lease.report_success()  # the re-logged-in token worked
        assert await lease.relogin() == "token-a-3"
    assert pool.status()[0]["state"] == "ready" and login.count() == 3
    await pool.close()


async def test_concurrent_relogins_share_one_fresh_token() -> None:
    pool, login, _ = await make_pool(("a",), login=FakeLogin(delay=0.01), per_account_concurrency=5)

    async def request() -> str:
        async with pool.lease() as lease:
            await lease.token()
            return await lease.relogin()

    tokens = await asyncio.wait_for(asyncio.gather(*(request() for _ in range(5))), BOUND)
    assert set(tokens) == {"token-a-2"} and login.count() == 2
    assert pool.status()[0]["state"] == "ready"
    await pool.close()


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (ErrorKind.BAD_CREDENTIALS, "bad_credentials"),
        (ErrorKind.ACCOUNT_BANNED, "banned"),
        (ErrorKind.ACCOUNT_MUTED, "muted"),
        (ErrorKind.RATE_LIMITED, "cooling"),
    ],
)
async def test_login_failures_change_the_account_state(kind: ErrorKind, state: str) -> None:
    clock = FakeClock()
    pool, login, store = await make_pool(("a", "b"), clock=clock)
    login.fail["a"] = error(kind)
    async with pool.lease(exclude={"b"}) as lease:
        with pytest.raises(UpstreamFailure) as info:
            await lease.token()
    assert info.value.kind is kind
    assert pool.status()[0]["state"] == state
    await pool.close()
    assert (await store.load())["a"].status == state


async def test_network_login_failure_blames_the_proxy_not_the_account() -> None:
    proxies = ProxyPool(["http://p:1"], enabled=True, quarantine_failures=1)
    pool, login, _ = await make_pool(("a",), proxies=proxies)
    login.fail["a"] = error(ErrorKind.NETWORK)
    async with pool.lease() as lease:
        assert lease.proxy == "http://p:1"
        with pytest.raises(UpstreamFailure):
            await lease.token()
    assert login.calls == [("a", "http://p:1")]
    assert pool.status()[0]["state"] == "ready"
    assert proxies.stats()[0]["quarantined"] is True
    await pool.close()


# ---- reports, persistence, status ---------------------------------------------------------


async def test_report_transitions() -> None:
    clock = FakeClock()
    proxies = ProxyPool(["", "http://p:1"], enabled=True, quarantine_failures=2)
    pool, _, _ = await make_pool(("a",), clock=clock, proxies=proxies, cooldown_rate_limited=60,
                                 cooldown_busy=5)

    def state() -> dict[str, object]:
        return pool.status()[0]

    async with pool.lease() as lease:
        lease.report(error(ErrorKind.RATE_LIMITED))
    assert state()["state"] == "cooling" and state()["until"] == clock.now + 60
    clock.now += 61
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.RATE_LIMITED, retry_after=7))
    assert state()["until"] == clock.now + 7
    clock.now += 8
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.BUSY))
    assert state()["state"] == "cooling" and state()["until"] == clock.now + 5
    clock.now += 6
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.ACCOUNT_MUTED))  # no mute_until: an hour
        lease.report(error(ErrorKind.BUSY))  # a short cooling never shortens a mute
    assert state()["state"] == "muted" and state()["until"] == clock.now + 3600
    clock.now += 3601
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.ACCOUNT_MUTED, until=clock.now + 500))
        assert state()["until"] == clock.now + 500
        lease.report(error(ErrorKind.PROTOCOL))  # others: no state change
        lease.report(error(ErrorKind.CONTENT_FILTER))
    assert state()["state"] == "muted"
    clock.now += 501
    assert state()["state"] == "ready"
    for _ in range(2):
        async with pool.lease() as lease:
            lease.report(error(ErrorKind.WAF_BLOCKED))
            lease.report(error(ErrorKind.NETWORK))
    assert any(s["quarantined"] for s in proxies.stats())
    assert state()["state"] == "ready"
    async with pool.lease() as lease:
        lease.report(error(ErrorKind.ACCOUNT_BANNED))
        lease.report(error(ErrorKind.RATE_LIMITED))  # never downgrades a ban
    assert state()["state"] == "banned" and state()["failures"] >= 10
    await pool.close()


async def test_state_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "state.db")
    pool, login, _ = await make_pool(("a", "b", "c", "d"), store=store, clock=clock, queue_timeout=0)
    for target in ("a", "b", "c", "d"):
        async with pool.lease(exclude={x for x in "abcd" if x != target}) as lease:
            await lease.token()
            if target == "b":
                lease.report(error(ErrorKind.RATE_LIMITED, retry_after=300))
            elif target == "c":
                lease.report(error(ErrorKind.ACCOUNT_BANNED))
            elif target == "d":
                lease.report(error(ErrorKind.ACCOUNT_MUTED, until=clock.now + 1000))
    assert login.count() == 4
    await pool.close()
    await store.close()

    store = SqliteStateStore(tmp_path / "state.db")
    pool, login, _ = await make_pool(("a", "b", "c", "d"), store=store, clock=clock)
    states = {row["id"]: row for row in pool.status()}
    assert {k: v["state"] for k, v in states.items()} == {
        "a": "ready", "b": "cooling", "c": "banned", "d": "muted"
    }
    assert states["b"]["until"] == clock.now + 300 and states["d"]["until"] == clock.now + 1000
    assert all(row["has_token"] for row in states.values())
    async with pool.lease() as lease:
        assert lease.account_id == "a" and await lease.token() == "token-a-1"
    assert login.count() == 0  # the learned token was kept: no login after the restart
    assert states["a"]["requests"] == 1
    await pool.close()
    await store.close()


async def test_changed_credentials_forget_learned_state() -> None:
    store = MemoryStateStore()
    pool, login, _ = await make_pool(("a",), store=store)
    async with pool.lease() as lease:
        await lease.token()
        lease.report(error(ErrorKind.BAD_CREDENTIALS))
    await pool.close()

    fixed = [AccountSettings(email="a@example.com", name="a", password="new-password")]
    pool, login, _ = await make_pool(fixed, store=store)
    assert pool.status()[0]["state"] == "ready" and not pool.status()[0]["has_token"]
    async with pool.lease() as lease:
        await lease.token()
    assert login.count() == 1
    await pool.close()


async def test_state_changes_are_persisted_without_close() -> None:
    store = MemoryStateStore()
    pool, _, _ = await make_pool(("a", "b"), store=store, queue_timeout=0)
    async with pool.lease(exclude={"b"}) as lease:
        lease.report(error(ErrorKind.ACCOUNT_BANNED))
    await pool.flush()
    assert (await store.load())["a"].status == "banned"
    await pool.close()


async def test_broken_store_does_not_stop_the_pool(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(MemoryStateStore):
        async def load(self) -> dict[str, AccountState]:
            raise OSError("disk on fire")

        async def save(self, account_id: str, state: AccountState) -> None:
            raise OSError("disk on fire")

    with caplog.at_level(logging.WARNING, logger="deepseek2api.pool"):
        pool, _, _ = await make_pool(("a",), store=BrokenStore())
        async with pool.lease() as lease:
            await lease.token()
        await pool.close()
    assert "disk on fire" in caplog.text


async def test_status_never_reveals_secrets(caplog: pytest.LogCaptureFixture) -> None:
    proxied = AccountSettings(email="p@x", password="hunter2", proxy="http://user:proxy-pass@h:1", token="tok-xyz")
    with caplog.at_level(logging.DEBUG):
        pool, _, _ = await make_pool([proxied] + accounts("a"))
        async with pool.lease(exclude={"a"}) as lease:
            assert lease.proxy == "http://user:proxy-pass@h:1"  # the client needs the real URL
            assert await lease.token() == "tok-xyz"
            lease.report(error(ErrorKind.TOKEN_INVALID))
            await lease.relogin()
            lease.report(error(ErrorKind.RATE_LIMITED))
        rows = pool.status()
        await pool.close()
    text = repr(rows) + repr(lease) + caplog.text
    for secret in ("hunter2", "proxy-pass", "tok-xyz", "token-p@x"):
        assert secret not in text
    assert rows[0]["proxy"] == "http://***@h:1" and rows[0]["has_token"] is True
    assert set(rows[0]) >= {"id", "state", "reason", "until", "in_use", "has_token", "proxy"}


async def test_proxy_per_lease_comes_from_the_pool() -> None:
    proxies = ProxyPool(["", "socks5://s:1"], enabled=True, strategy="sticky")
    own = AccountSettings(email="own@x", password="p", proxy="http://own:2")
    pool, _, _ = await make_pool(accounts("a", "b") + [own], proxies=proxies)
    seen: dict[str, set[str | None]] = collections.defaultdict(set)
    for _ in range(9):
        async with pool.lease() as lease:
            seen[lease.account_id].add(lease.proxy)
    assert seen["own@x"] == {"http://own:2"}
    assert seen["a"] != seen["b"] and len(seen["a"]) == len(seen["b"]) == 1  # sticky, evenly spread
    await pool.close()


async def test_prewarm_logs_in_accounts_without_tokens() -> None:
    pool, login, _ = await make_pool(accounts("a", "b") + [AccountSettings(email="t@x", token="cfg")])
    assert await pool.prewarm() == 2
    assert login.count() == 2 and all(row["has_token"] for row in pool.status())
    await pool.close()


async def test_close_turns_waiters_away() -> None:
    pool, _, _ = await make_pool(("a",), queue_timeout=BOUND)
    async with pool.lease():
        waiter = asyncio.create_task(lease_once(pool))
        await asyncio.sleep(0)
        await pool.close()
        with pytest.raises(PoolExhausted):
            await asyncio.wait_for(waiter, BOUND)
    assert pool.leases_out == 0


def test_pool_settings_defaults() -> None:
    settings = PoolSettings()
    assert settings.per_account_concurrency == 1 and settings.queue_size == 64 and settings.queue_timeout == 30


async def test_a_token_restored_from_the_state_store_is_masked_in_the_logs() -> None:
    store = MemoryStateStore()
    await store.save("a", AccountState(token="restored-token-0123456789"))
    pool, login, _ = await make_pool(("a",), store=store)
    async with pool.lease() as lease:
        assert await lease.token() == "restored-token-0123456789"
    assert login.calls == []
    assert "restored-token-0123456789" not in redactor.redact("sent restored-token-0123456789 upstream")


async def test_a_learned_token_whose_save_failed_once_is_saved_at_close() -> None:
    class FlakyStore(MemoryStateStore):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 1

        async def save(self, account_id: str, state: AccountState) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("disk busy for a moment")
            await super().save(account_id, state)

    store = FlakyStore()
    pool, _, _ = await make_pool(("a",), store=store)
    async with pool.lease() as lease:
        token = await lease.token()
    await pool.flush()
    assert store.failures == 0
    await pool.close()
    assert (await store.load())["a"].token == token
