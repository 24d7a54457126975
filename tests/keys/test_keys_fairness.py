"""Fair turns between keys: a key with 20 queued streams does not hold back another key's
single request past its fair turn — the pool's queue takes owners round-robin, FIFO within one owner."""

from __future__ import annotations

import asyncio
from typing import Any

from deepseek2api.pool.accounts import AccountPool
from deepseek2api.pool.fairness import fair_order
from gateway_support import running_stack
from pool_support import make_pool


class _W:
    def __init__(self, owner: str, n: int) -> None:
        self.owner, self.n = owner, n

    def __repr__(self) -> str:
        return f"{self.owner}{self.n}"


def test_fair_order_is_round_robin_between_owners_and_fifo_within_one() -> None:
    waiters = [_W("a", i) for i in range(3)] + [_W("b", 0), _W("c", 0), _W("b", 1)]
    assert repr(fair_order(waiters, {})) == "[a0, b0, c0, a1, b1, a2]"
    # the owner served most recently goes last among the waiting owners
    assert repr(fair_order(waiters, {"a": 9, "b": 3})) == "[c0, b0, a0, b1, a1, a2]"
    assert fair_order(waiters[:3], {"a": 1}) == waiters[:3]


async def test_a_single_request_of_another_key_gets_the_next_free_slot() -> None:
    pool, _, _ = await make_pool(("only",), queue_size=64, queue_timeout=30)
    order: list[str] = []
    hold = asyncio.Event()

    async def run(owner: str, n: int) -> None:
        async with pool.lease(owner=owner):
            order.append(f"{owner}{n}")
            await hold.wait() if not order[1:] else await asyncio.sleep(0)

    tasks = [asyncio.create_task(run("busy", i)) for i in range(21)]
    for _ in range(100):
        await asyncio.sleep(0)
    assert pool.waiting == 20
    single = asyncio.create_task(run("single", 0))
    await asyncio.sleep(0)
    hold.set()
    await asyncio.gather(*tasks, single)
    assert order.index("single0") == 1, order  # right after the lease that was running
    assert order[2:] == [f"busy{i}" for i in range(1, 21)]  # the busy key's own order is kept
    pool.assert_idle()


def test_end_to_end_twenty_streams_of_one_key_do_not_delay_another_keys_request() -> None:
    keys: list[dict[str, Any]] = [{"name": "busy", "key": "sk-busy-00000000000000"},
                                  {"name": "single", "key": "sk-single-000000000000"}]
    with running_stack(accounts=1, keys=keys, pool={"queue_timeout": 120.0},
                       sim={"tokens_per_second": 400.0}) as stack:
        finished: list[str] = []

        async def one(key: str, label: str) -> None:
            client = stack.async_openai(api_key=key, timeout=120)
            chunks = await client.chat.completions.create(
                model="deepseek-chat", stream=True, messages=[{"role": "user", "content": f"story {label}"}])
            async for _ in chunks:
                pass
            finished.append(label)
            await client.close()

        async def main() -> None:
            pool = stack.gateway.pool
            assert isinstance(pool, AccountPool)
            busy = [asyncio.create_task(one("sk-busy-00000000000000", f"busy{i}")) for i in range(20)]
            for _ in range(6000):  # bounded: 60 s
                if pool.waiting >= 15:
                    break
                await asyncio.sleep(0.01)
            single = asyncio.create_task(one("sk-single-000000000000", "single"))
            for _ in range(60000):
                if pool.waiting_by_owner().get("single"):
                    break
                await asyncio.sleep(0.001)
            ahead = pool.waiting_by_owner().get("busy", 0)
            done_before = len(finished)
            await single
            await asyncio.gather(*busy)
            return ahead, done_before

        ahead, done_before = asyncio.run(main())
        assert ahead >= 5  # it queued behind several of the busy key's streams …
        # … and was served right after the stream that was running (one more may have ended meanwhile)
        assert finished.index("single") <= done_before + 2, (done_before, finished)
