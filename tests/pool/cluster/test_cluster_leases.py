"""The shared pool on a real redis-server: leases across replicas, fencing, queue, failures, tokens, proxies.

Each test starts its own `redis-server` on a free loopback port and stops it by PID. The "replicas"
are several coordinators in one process, each with its own connection pool and replica id — to Redis
they are indistinguishable from separate processes.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from cluster_support import (
    NOTHING_LEFT,
    REDIS_SERVER,
    RedisServer,
    Relay,
    accounts,
    coordinator,
    leftover_keys,
)
from deepseek2api.pool.cluster import (
    ClusterConfig,
    ClusterCoordinator,
    ClusterExhausted,
    ClusterLease,
    ClusterUnavailable,
    ExhaustedReason,
    HealthReport,
    LeaseLost,
    LostReason,
    UnavailableKind,
)

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs it)")


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.cleanup()


class Replicas:
    """Coordinators started together and always closed, even when a test fails."""

    def __init__(self) -> None:
        self.started: list[ClusterCoordinator] = []

    async def add(self, coord: ClusterCoordinator) -> ClusterCoordinator:
        await coord.start()
        self.started.append(coord)
        return coord

    async def close(self) -> None:
        for coord in self.started:
            await coord.close()
            await coord._client.aclose()


@pytest.fixture
async def replicas() -> AsyncIterator[Replicas]:
    group = Replicas()
    try:
        yield group
    finally:
        await group.close()


def quick(**changes: object) -> ClusterConfig:
    values: dict[str, object] = {"lease_ttl": 3.0, "grace": 0.3, "recovery_window": 0, "queue_timeout": 10.0}
    values.update(changes)
    return ClusterConfig(**values)  # type: ignore[arg-type]


async def wait_for(predicate: object, limit: float = 10.0) -> None:
    """Poll a condition in a bounded loop (no timing assertion: only a cap so a broken test ends)."""
    assert callable(predicate)
    for _ in range(int(limit / 0.05)):
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_three_replicas_never_put_more_than_the_limit_on_one_account(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick(per_account_concurrency=2, queue_size=400)
    accs = accounts(5)
    coords = [await replicas.add(coordinator(server.url, config, accs, ["", "http://p1:1"], replica=f"r{i}"))
              for i in range(3)]
    in_use: collections.Counter[str] = collections.Counter()
    peak: collections.Counter[str] = collections.Counter()
    violations: list[str] = []
    fences: dict[str, set[int]] = collections.defaultdict(set)
    served = 0

    async def one(i: int) -> None:
        nonlocal served
        lease = await coords[i % 3].acquire()
        assert lease.fence not in fences[lease.account_id], "a fence was granted twice"
        fences[lease.account_id].add(lease.fence)
        in_use[lease.account_id] += 1
        peak[lease.account_id] = max(peak[lease.account_id], in_use[lease.account_id])
        if in_use[lease.account_id] > 2:
            violations.append(lease.account_id)
        await asyncio.sleep(random.uniform(0, 0.01))
        in_use[lease.account_id] -= 1
        await lease.release()
        served += 1

    await asyncio.gather(*(one(i) for i in range(150)))
    assert violations == []
    assert served == 150
    assert max(peak.values()) == 2  # there was contention, and the limit held under it
    assert leftover_keys(server, config) == NOTHING_LEFT


async def test_cancelled_waiters_and_holders_leave_nothing_behind(server: RedisServer, replicas: Replicas) -> None:
    config = quick(queue_size=100)
    accs = accounts(2)
    coords = [await replicas.add(coordinator(server.url, config, accs, ["", "http://p:1"], replica=f"r{i}"))
              for i in range(2)]

    async def hold(i: int) -> None:
        lease = await coords[i % 2].acquire()
        try:
            await asyncio.sleep(10)
        finally:
            await lease.release()

    tasks = [asyncio.ensure_future(hold(i)) for i in range(12)]
    await wait_for(lambda: sum(c.held for c in coords) == 2 and sum(c.waiting for c in coords) == 10)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert leftover_keys(server, config) == NOTHING_LEFT
    lease = await coords[0].acquire(wait=False)  # the pool still works afterwards
    await lease.release()


async def test_the_queue_is_first_come_first_served_across_replicas(server: RedisServer, replicas: Replicas) -> None:
    config = quick()
    accs = accounts(1)
    coords = [await replicas.add(coordinator(server.url, config, accs, replica=f"r{i}")) for i in range(3)]
    first = await coords[0].acquire()
    order: list[int] = []

    async def wait_turn(i: int) -> None:
        lease = await coords[i % 3].acquire()
        order.append(i)
        await lease.release()

    tasks = []
    for i in range(6):
        tasks.append(asyncio.ensure_future(wait_turn(i)))
        await wait_for(lambda n=i + 1: sum(c.waiting for c in coords) == n)
    await first.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 5]


async def test_a_full_queue_answers_429_with_retry_after(server: RedisServer, replicas: Replicas) -> None:
    config = quick(queue_size=2)
    a = await replicas.add(coordinator(server.url, config, accounts(1), replica="a"))
    b = await replicas.add(coordinator(server.url, config, accounts(1), replica="b"))
    held = await a.acquire()

    async def take_turn() -> None:
        lease = await b.acquire()
        await lease.release()

    waiters = [asyncio.ensure_future(take_turn()) for _ in range(2)]
    await wait_for(lambda: b.waiting == 2)
    with pytest.raises(ClusterExhausted) as caught:
        await a.acquire()
    assert caught.value.reason is ExhaustedReason.QUEUE_FULL
    assert caught.value.retry_after >= 1
    await held.release()
    await asyncio.gather(*waiters)
    assert leftover_keys(server, config) == NOTHING_LEFT


async def test_a_wait_that_times_out_answers_429_all_busy(server: RedisServer, replicas: Replicas) -> None:
    config = quick(queue_timeout=0.3)
    a = await replicas.add(coordinator(server.url, config, accounts(1), replica="a"))
    held = await a.acquire()
    with pytest.raises(ClusterExhausted) as caught:
        await a.acquire()
    assert caught.value.reason is ExhaustedReason.ALL_BUSY
    assert caught.value.retry_after >= 1
    await held.release()
    assert leftover_keys(server, config) == NOTHING_LEFT


async def test_a_rate_limit_seen_by_one_replica_keeps_the_others_off_that_account(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick()
    a = await replicas.add(coordinator(server.url, config, accounts(2), replica="a"))
    b = await replicas.add(coordinator(server.url, config, accounts(2), replica="b"))
    lease = await a.acquire(exclude={"acc1"})
    assert lease.account_id == "acc0"
    await lease.release(health=HealthReport("cooling", "rate limited", time.time() + 60), failed=True)
    for _ in range(5):
        other = await b.acquire()
        assert other.account_id == "acc1"
        await other.release()
    with pytest.raises(ClusterExhausted) as caught:
        await b.acquire(exclude={"acc1"})
    assert caught.value.reason is ExhaustedReason.ALL_COOLING
    assert 30 <= caught.value.retry_after <= 61
    snap = await b.snapshot()
    row = next(r for r in snap.accounts if r["id"] == "acc0")
    assert row["status"] == "cooling" and row["reason"] == "rate limited" and row["failures"] == 1


async def test_a_cool_down_never_lifts_a_ban_and_never_shortens_a_mute(server: RedisServer, replicas: Replicas) -> None:
    a = await replicas.add(coordinator(server.url, quick(), accounts(2), replica="a"))
    now = time.time()
    assert await a.report("acc0", HealthReport("banned", "banned upstream")) == "applied"
    assert await a.report("acc0", HealthReport("cooling", "busy", now + 5)) == "ignored"
    assert await a.report("acc1", HealthReport("muted", "muted", now + 600)) == "applied"
    assert await a.report("acc1", HealthReport("cooling", "busy", now + 5)) == "ignored"
    rows = {r["id"]: r for r in (await a.snapshot()).accounts}
    assert rows["acc0"]["status"] == "banned"
    assert rows["acc1"]["status"] == "muted"
    assert await a.report("acc0", HealthReport("ready"), force=True) == "applied"  # the operator's word wins
    lease = await a.acquire(exclude={"acc1"})
    assert lease.account_id == "acc0"
    await lease.release()


async def test_a_dead_holders_lease_expires_and_the_account_comes_back(server: RedisServer, replicas: Replicas) -> None:
    config = quick(lease_ttl=1.0, grace=0.2)
    dead = coordinator(server.url, config, accounts(1), replica="dead")
    await dead.start()
    lease = await dead.acquire()
    await dead.close(release=False)  # like SIGKILL: no release, no renewal
    await dead._client.aclose()
    alive = await replicas.add(coordinator(server.url, config, accounts(1), replica="alive"))
    late = await alive.acquire()  # waits in the queue until Redis reaps the dead lease
    assert late.account_id == lease.account_id and late.fence > lease.fence
    assert (await alive.snapshot()).reaped == 1
    await late.release()
    assert leftover_keys(server, config) == NOTHING_LEFT


async def test_tickets_of_a_replica_that_stopped_beating_are_skipped(server: RedisServer, replicas: Replicas) -> None:
    config = quick(replica_timeout=0.5)
    holder = await replicas.add(coordinator(server.url, config, accounts(1), replica="holder"))
    crashed = coordinator(server.url, config, accounts(1), replica="crashed")
    await crashed.start()
    lease = await holder.acquire()
    orphan = asyncio.ensure_future(crashed.acquire())
    await wait_for(lambda: crashed.waiting == 1)
    await crashed.close(release=False)  # its ticket stays in Redis, nobody will claim a grant for it
    with pytest.raises(ClusterUnavailable):
        await orphan

    async def crashed_is_gone() -> bool:
        return not next(r for r in (await holder.snapshot()).replicas if r.id == "crashed").alive

    await wait_for(crashed_is_gone)
    survivor = await replicas.add(coordinator(server.url, config, accounts(1), replica="survivor"))
    waiting = asyncio.ensure_future(survivor.acquire())
    await wait_for(lambda: survivor.waiting == 1)
    await lease.release()
    late = await waiting
    assert late.fence == lease.fence + 1  # the slot went past the dead ticket, straight to the live one
    assert (await survivor.snapshot()).reaped == 0  # no grant was parked on the dead replica
    await late.release()
    assert leftover_keys(server, config) == NOTHING_LEFT
    await crashed._client.aclose()


async def test_a_replica_that_shuts_down_leaves_the_queue_and_gives_its_leases_back(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick()
    other = await replicas.add(coordinator(server.url, config, accounts(1), replica="other"))
    leaving = coordinator(server.url, config, accounts(1), replica="leaving")
    await leaving.start()
    await leaving.acquire()
    queued = asyncio.ensure_future(leaving.acquire())
    await wait_for(lambda: leaving.waiting == 1)
    await leaving.aclose()
    with pytest.raises(ClusterUnavailable) as caught:
        await queued
    assert caught.value.kind is UnavailableKind.CLOSED
    assert leftover_keys(server, config) == NOTHING_LEFT
    lease = await other.acquire(wait=False)
    await lease.release()


REPLICA_PROCESS = """
import asyncio, sys
from deepseek2api.pool.cluster import ClusterAccount, ClusterConfig, ClusterCoordinator

async def main():
    config = ClusterConfig(lease_ttl=1.5, grace=0.3, recovery_window=0)
    coord = ClusterCoordinator.from_url(sys.argv[1], config, [ClusterAccount("acc0", "cred0")], replica_id="doomed")
    await coord.start()
    lease = await coord.acquire()
    print(lease.fence, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_replica_killed_with_sigkill_gives_its_account_back_after_ttl_and_grace(
    server: RedisServer, replicas: Replicas
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    doomed = subprocess.Popen(  # noqa: ASYNC220 - started once, killed by PID; nothing to await
        [sys.executable, "-c", REPLICA_PROCESS, server.url], stdout=subprocess.PIPE, env=env
    )
    try:
        assert doomed.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(doomed.stdout.readline), 20)
        fence = int(line)
        survivor = await replicas.add(
            coordinator(server.url, quick(lease_ttl=1.5, grace=0.3), accounts(1), replica="survivor")
        )
        with pytest.raises(ClusterExhausted):
            await survivor.acquire(wait=False)  # held by the other process
        doomed.kill()
        doomed.wait(5)
        lease = await survivor.acquire()  # queued until Redis reaps the dead lease and the cool-down ends
        assert lease.fence == fence + 1
        assert (await survivor.snapshot()).reaped == 1
        await lease.release()
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(5)


async def test_a_stale_holder_can_neither_release_nor_report_on_the_new_lease(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick(lease_ttl=1.0, grace=0.1)
    old = coordinator(server.url, config, accounts(1), replica="old")
    await old.start()
    stale = await old.acquire()
    await old.close(release=False)
    new = await replicas.add(coordinator(server.url, config, accounts(1), replica="new"))
    current = await new.acquire()
    assert current.fence > stale.fence
    # the stale holder wakes up: its fenced calls change nothing
    stale.released = False
    stale.coordinator = new
    assert await new.report("acc0", HealthReport("banned", "stale view"), lease=stale) == "stale"
    assert await stale.release() is False
    snap = await new.snapshot()
    assert snap.accounts[0]["in_use"] == 1 and snap.accounts[0]["status"] == "ready"
    await current.release()
    await old._client.aclose()


async def test_a_holder_whose_lease_redis_dropped_learns_it_at_its_next_renewal(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick(lease_ttl=1.5, grace=0.1)
    a = await replicas.add(coordinator(server.url, config, accounts(1), replica="a"))
    losses: list[LeaseLost] = []
    lease = await a.acquire(on_lost=losses.append)
    direct = server.client()
    direct.zadd(config.prefix + "exp", {lease.member: 0})  # as if it had expired during a long pause
    direct.close()
    await asyncio.wait_for(lease.lost.wait(), 10)
    assert lease.lost_reason is LostReason.REVOKED
    assert [loss.reason for loss in losses] == [LostReason.REVOKED]
    with pytest.raises(LeaseLost):
        lease.check()
    assert await lease.release() is False


async def test_a_replica_cut_off_from_redis_stops_its_stream_before_its_lease_expires(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick(lease_ttl=1.5, grace=0.5)
    relay = Relay(server.port)
    await relay.start()
    try:
        cut_off = await replicas.add(coordinator(relay.url, config, accounts(1), replica="cut"))
        still_held_when_fenced: list[bool] = []
        stream = asyncio.ensure_future(asyncio.sleep(60))  # stands for the upstream stream

        def on_lost(loss: LeaseLost) -> None:
            probe = server.client()
            seconds, micros = probe.time()
            expiry = probe.zscore(config.prefix + "exp", lease.member)
            probe.close()
            still_held_when_fenced.append(expiry is not None and expiry > seconds * 1000 + micros / 1000)
            stream.cancel()

        lease = await cut_off.acquire(on_lost=on_lost)
        relay.cut()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stream, 10)
        assert lease.lost_reason is LostReason.RENEW_DEADLINE
        assert cut_off.events["leases_lost_renew_deadline"] == 1 and cut_off.events["renew_failures"] >= 1
        assert still_held_when_fenced == [True]  # it stopped while Redis still counted the lease as its own
        with pytest.raises(ClusterUnavailable) as caught:
            await cut_off.acquire()  # fail closed, never a private pool
        assert caught.value.kind is UnavailableKind.REDIS_DOWN
        assert not cut_off.available
        other = await replicas.add(coordinator(server.url, config, accounts(1), replica="other"))
        late = await other.acquire()  # after expiry + grace
        assert late.fence > lease.fence
        await late.release()
    finally:
        await relay.close()


async def test_redis_down_is_a_typed_error_and_service_resumes_when_it_is_back(
    server: RedisServer, replicas: Replicas
) -> None:
    a = await replicas.add(coordinator(server.url, quick(backstop=0.2), accounts(1), replica="a"))
    held = await a.acquire()
    waiter = asyncio.ensure_future(a.acquire())
    await wait_for(lambda: a.waiting == 1)
    server.stop()
    with pytest.raises(ClusterUnavailable) as caught:
        await a.acquire()
    assert caught.value.kind is UnavailableKind.REDIS_DOWN and caught.value.retry_after > 0
    with pytest.raises(ClusterUnavailable) as waited:
        await waiter  # a waiting request is turned away too, not left hanging
    assert waited.value.kind is UnavailableKind.REDIS_DOWN
    assert not a.available
    server.start()  # empty: a new epoch, no recovery window configured here
    assert await held.release() is False  # its lease went with Redis's data
    lease = await a.acquire()
    assert a.available
    await lease.release()


async def test_redis_restarted_empty_recovers_live_leases_before_granting_again(
    server: RedisServer, replicas: Replicas
) -> None:
    config = ClusterConfig(lease_ttl=1.5, grace=0.3, queue_timeout=5.0)  # default recovery window: ttl + grace
    holder = await replicas.add(coordinator(server.url, config, accounts(1), replica="holder"))
    other = await replicas.add(coordinator(server.url, config, accounts(1), replica="other"))

    async def serving() -> bool:
        try:
            lease = await holder.acquire(wait=False)
        except ClusterUnavailable:
            return False
        held.append(lease)
        return True

    held: list[ClusterLease] = []
    await wait_for(serving)  # a brand-new namespace opens the window too
    lease = held[0]
    server.restart()  # every key is gone
    with pytest.raises(ClusterUnavailable) as caught:
        await other.acquire()
    assert caught.value.kind is UnavailableKind.RECOVERING and caught.value.retry_after >= 1

    async def window_closed() -> bool:
        try:
            extra = await other.acquire(wait=False)
        except ClusterUnavailable:
            return False
        except ClusterExhausted as exc:
            assert exc.reason is ExhaustedReason.ALL_BUSY  # the holder re-registered its lease
            return True
        await extra.release()
        raise AssertionError("a second lease was granted on an account still streaming")

    await wait_for(window_closed)
    assert lease.lost_reason is None
    await lease.release()
    again = await other.acquire()
    assert again.fence > lease.fence
    await again.release()


async def test_an_expired_token_causes_exactly_one_login_across_replicas(
    server: RedisServer, replicas: Replicas
) -> None:
    accs = accounts(1)
    coords = [await replicas.add(coordinator(server.url, quick(), accs, replica=f"r{i}")) for i in range(3)]
    logins = 0

    async def login() -> str:
        nonlocal logins
        logins += 1
        await asyncio.sleep(0.1)
        return f"token-{logins}"

    first = await asyncio.gather(*(coords[i % 3].login_once("acc0", login) for i in range(30)))
    assert logins == 1 and {t.token for t in first} == {"token-1"}
    lease = await coords[1].acquire()
    assert lease.token == "token-1" and lease.token_version == first[0].version  # shared with every grant
    await lease.release()
    # the token expires; every replica notices at once
    await coords[0].forget_token("acc0", first[0].version)
    assert await coords[2].forget_token("acc0", first[0].version) > first[0].version  # compare-and-delete: no-op
    second = await asyncio.gather(
        *(coords[i % 3].login_once("acc0", login, seen_version=first[0].version) for i in range(30))
    )
    assert logins == 2 and {t.token for t in second} == {"token-2"}


async def test_a_failed_login_frees_the_lock_and_a_dead_account_is_not_logged_in(
    server: RedisServer, replicas: Replicas
) -> None:
    a = await replicas.add(coordinator(server.url, quick(), accounts(1), replica="a"))

    async def broken() -> str:
        raise RuntimeError("upstream down")

    with pytest.raises(RuntimeError):
        await a.login_once("acc0", broken)

    async def works() -> str:
        return "fresh"

    fresh = await a.login_once("acc0", works)
    assert fresh.token == "fresh"
    await a.report("acc0", HealthReport("bad_credentials", "wrong password"))
    with pytest.raises(ClusterExhausted) as caught:
        await a.login_once("acc0", works, seen_version=fresh.version)
    assert caught.value.reason is ExhaustedReason.NONE_USABLE


async def test_proxy_use_and_quarantine_are_shared(server: RedisServer, replicas: Replicas) -> None:
    config = quick(proxy_quarantine_failures=2, proxy_quarantine_seconds=60)
    proxies = ["http://p1:1", "http://p2:2"]
    a = await replicas.add(coordinator(server.url, config, accounts(4), proxies, replica="a"))
    b = await replicas.add(coordinator(server.url, config, accounts(4), proxies, replica="b"))
    one, two = await a.acquire(), await b.acquire()
    assert {one.proxy, two.proxy} == set(proxies)  # least used across replicas
    await one.release()
    await two.release()
    await a.report_proxy("http://p1:1", ok=False)
    await a.report_proxy("http://p1:1", ok=False)
    for _ in range(6):
        lease = await b.acquire()
        assert lease.proxy == "http://p2:2"
        await lease.release()
    rows = {r["proxy"]: r for r in (await b.snapshot()).proxies}
    assert float(str(rows["http://p1:1"]["quarantine_left"])) > 0
    await b.report_proxy("http://p1:1", ok=True)  # works again: back in rotation
    seen = set()
    for _ in range(2):
        lease = await a.acquire()
        seen.add(lease.proxy)
    assert seen == set(proxies)


async def test_the_snapshot_lists_replicas_with_their_heartbeats(server: RedisServer, replicas: Replicas) -> None:
    config = quick()
    coords = [await replicas.add(coordinator(server.url, config, accounts(2), replica=f"r{i}")) for i in range(3)]
    snap = await coords[0].snapshot()
    assert snap.mode == "cluster" and snap.name == "default"
    assert {r.id for r in snap.replicas} == {"r0", "r1", "r2"}
    assert all(r.alive and r.heartbeat_age >= 0 for r in snap.replicas)
    assert [r["id"] for r in snap.accounts] == ["acc0", "acc1"]
    assert all("token" not in r for r in snap.accounts)


async def test_two_cluster_names_on_one_redis_do_not_share_anything(server: RedisServer, replicas: Replicas) -> None:
    blue = await replicas.add(coordinator(server.url, quick(name="blue"), accounts(1), replica="b"))
    green = await replicas.add(coordinator(server.url, quick(name="green"), accounts(1), replica="g"))
    one = await blue.acquire(wait=False)
    two = await green.acquire(wait=False)  # same account id, other namespace
    await one.release()
    await two.release()


async def test_scripts_are_loaded_again_after_redis_forgot_them(server: RedisServer, replicas: Replicas) -> None:
    a = await replicas.add(coordinator(server.url, quick(), accounts(1), replica="a"))
    direct = server.client()
    direct.script_flush()
    direct.close()
    lease = await a.acquire(wait=False)  # NOSCRIPT → SCRIPT LOAD → EVALSHA, invisible to the caller
    assert await lease.release() is True


async def test_a_waiter_is_served_even_when_its_wake_up_message_is_lost(
    server: RedisServer, replicas: Replicas
) -> None:
    a = await replicas.add(coordinator(server.url, quick(backstop=0.2), accounts(1), replica="a"))
    b = await replicas.add(coordinator(server.url, quick(backstop=0.2), accounts(1), replica="b"))
    assert b._listener is not None
    b._listener.cancel()  # as if pub/sub were down: only the backstop tick remains
    held = await a.acquire()
    waiting = asyncio.ensure_future(b.acquire())
    await wait_for(lambda: b.waiting == 1)
    await held.release()
    lease = await waiting
    assert lease.fence == held.fence + 1
    await lease.release()


async def test_sticky_proxies_pin_each_account_to_one_exit_for_every_replica(
    server: RedisServer, replicas: Replicas
) -> None:
    config = quick(proxy_strategy="sticky", per_account_concurrency=2)
    proxies = ["http://p1:1", "http://p2:2"]
    coords = [await replicas.add(coordinator(server.url, config, accounts(4), proxies, replica=f"r{i}"))
              for i in range(2)]
    exits: dict[str, set[str | None]] = collections.defaultdict(set)
    for round_ in range(6):
        lease = await coords[round_ % 2].acquire()
        exits[lease.account_id].add(lease.proxy)
        await lease.release()
    assert len(exits) == 4 and all(len(seen) == 1 for seen in exits.values())
    pinned = collections.Counter(next(iter(seen)) for seen in exits.values())
    assert pinned == {"http://p1:1": 2, "http://p2:2": 2}  # assigned evenly
    assert leftover_keys(server, config) == NOTHING_LEFT


async def test_a_request_cancelled_while_its_acquire_is_on_the_wire_gives_the_grant_back(
        server: RedisServer, replicas: Replicas) -> None:
    config = quick()
    coord = await replicas.add(coordinator(server.url, config, accounts(1), replica="r0"))
    answered = asyncio.Event()
    reply_back = asyncio.Event()
    run = coord._run

    async def slow_reply(name: str, *args: object) -> dict[str, object]:
        reply = await run(name, *args)
        if name == "acquire":  # Redis granted; the reply is still travelling when the client leaves
            answered.set()
            await reply_back.wait()
        return reply

    coord._run = slow_reply  # type: ignore[method-assign]
    task = asyncio.ensure_future(coord.acquire())
    await answered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reply_back.set()
    coord._run = run  # type: ignore[method-assign]
    await wait_for(lambda: leftover_keys(server, config) == NOTHING_LEFT)
    lease = await coord.acquire(wait=False)  # the one account is free again, not held until its lease expires
    await lease.release()
