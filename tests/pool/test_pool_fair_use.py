"""Per-account fair use: `max_requests_per_hour` and `min_request_gap`, honoured by the pool's
dispatch — an account at its limit is skipped (never failed or cooled), and waiters get it when it is
usable again; the console's view says when that is."""

from __future__ import annotations

import asyncio

import pytest

from deepseek2api.pool.errors import PoolExhausted, PoolReason
from deepseek2api.settings import AccountSettings
from pool_support import FakeClock, make_pool


async def _one(pool: object, **kw: object) -> str:
    async with pool.lease(**kw) as lease:  # type: ignore[attr-defined]
        return str(lease.account_id)


async def test_an_account_over_its_hourly_limit_is_skipped_not_failed() -> None:
    clock = FakeClock()
    pool, _, _ = await make_pool(("a", "b"), clock=clock, max_requests_per_hour=2, queue_timeout=0.2)
    got = [await _one(pool) for _ in range(4)]
    assert sorted(got) == ["a", "a", "b", "b"]
    with pytest.raises(PoolExhausted) as refused:
        await _one(pool)
    assert refused.value.reason is PoolReason.ALL_BUSY
    assert {r["state"] for r in pool.status()} == {"ready"}  # skipped, not failed
    rows = {r["id"]: r for r in pool.fair_use()}
    assert rows["a"]["requests_last_hour"] == 2 and rows["a"]["usable_in"] == 3600.0
    clock.now += 3600
    assert await _one(pool) in ("a", "b")
    pool.assert_idle()


async def test_the_gap_between_two_turns_on_one_account_and_a_waiter_gets_it_when_it_passes() -> None:
    clock = FakeClock()
    accounts = [AccountSettings(email="a@example.com", name="a", password="pw", min_request_gap=30),
                AccountSettings(email="b@example.com", name="b", password="pw")]
    pool, _, _ = await make_pool(accounts, clock=clock, queue_timeout=30)
    assert await _one(pool, only="a") == "a"
    assert pool.fair_use_until("a") == clock.now + 30
    assert await _one(pool) == "b"  # a is held back: b serves without waiting
    waiting = asyncio.create_task(_one(pool, only="a"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done() and pool.waiting == 1
    clock.now += 30
    pool._dispatch()  # what the pool's wake timer does when the gap has passed
    assert await asyncio.wait_for(waiting, 5) == "a"
    assert pool.fair_use_until("b") is None  # b has no gap of its own and the pool sets none
    pool.assert_idle()
