"""Several gateway processes, one Redis, one pool: the invariants of docs/cluster.md end to end.

Every test starts its own `redis-server` and simulator and three real `deepseek2api serve` processes,
and stops them. The simulator counts concurrent streams per account (each replica could hold its own
token; the shared pool shares one), so a violation is two streams on one account, whatever the token.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

import httpx
import pytest

from cluster_gateway_support import (
    CLUSTER,
    ClusterStack,
    StreamResult,
    client,
    cluster_stack,
    stream,
)
from cluster_support import (
    NOTHING_LEFT,
    REDIS_SERVER,
    RedisServer,
    free_port,
    leftover_keys,
)
from deepseek2api.background import BackgroundServer
from deepseek2api.pool.cluster import ClusterConfig
from deepseek2api.server import create_app
from deepseek2api.simulator import SimulatorConfig
from deepseek2api.simulator import create_app as create_simulator
from gateway_support import (
    API_KEY,
    TEST_DIFFICULTY,
    gateway_settings,
    running_stack,
    sim_users,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")]

NAMESPACE = ClusterConfig(name=str(CLUSTER["name"]))


def nothing_left(stack: ClusterStack) -> bool:
    return leftover_keys(stack.redis, NAMESPACE) == NOTHING_LEFT


def assert_served_or_told_to_wait(results: list[StreamResult]) -> None:
    for result in results:
        if result.status == 200:
            assert result.done and result.error is None and result.text, result
        else:
            assert result.status == 429, result
            assert result.retry_after is not None and int(result.retry_after) >= 1, result
            assert result.error is not None and str(result.error["code"]).startswith("pool_"), result


async def spread(stack: ClusterStack, count: int, prompt: str = "hello") -> list[StreamResult]:
    """`count` concurrent streaming requests, round-robin over the replicas."""
    async with client() as http:
        return list(await asyncio.gather(*(
            stream(http, stack.replicas[i % len(stack.replicas)].base_url, f"{prompt} {i}") for i in range(count)
        )))


def test_three_replicas_serve_200_concurrent_requests_on_20_accounts_with_one_stream_per_account_and_no_leak(
        tmp_path: Path) -> None:
    # A longer lease here: with 200 streams on a loaded 2-core machine, a renewal delayed past a 2 s lease
    # makes the holder fence itself (correctly, with a pool_lease_lost error), which is not what this tests.
    with cluster_stack(tmp_path, accounts=20, sim={"tokens_per_second": 400.0}, cluster={"lease_ttl": 8.0},
                       pool={"queue_timeout": 30.0, "queue_size": 200}) as stack:
        results = asyncio.run(spread(stack, 200))
        assert_served_or_told_to_wait(results)
        served = sum(1 for r in results if r.status == 200)
        assert served >= 20
        stats = stack.sim_stats()
        assert stats["violations"] == 0
        assert max(stats["max_concurrent"].values()) == 1
        assert len(stats["max_concurrent"]) == 20  # the load was spread over every account
        stack.wait_until(lambda: nothing_left(stack), what="no lease, ticket, grant or proxy use left in Redis")
        status = stack.status(stack.replicas[0])
        assert status["mode"] == "cluster"


def test_a_replica_killed_mid_stream_gives_its_accounts_back_after_the_lease_expires(tmp_path: Path) -> None:
    with cluster_stack(tmp_path, replicas=2, accounts=2, sim={"tokens_per_second": 4.0}) as stack:
        victim, survivor = stack.replicas

        async def scenario() -> list[StreamResult]:
            async with client() as http:
                doomed = [asyncio.ensure_future(stream(http, victim.base_url, f"long {i}")) for i in range(2)]
                await asyncio.to_thread(stack.wait_until, lambda: stack.sim_stats()["active_total"] == 2,
                                        10.0, "both accounts streaming on the victim")
                assert leftover_keys(stack.redis, NAMESPACE)["leases"] == 2
                victim.kill()  # SIGKILL: no release, its leases stay in Redis until they expire
                await asyncio.gather(*doomed, return_exceptions=True)
                await asyncio.to_thread(stack.sim_set, tokens_per_second=400.0)
                after = [stream(http, survivor.base_url, f"after {i}", max_tokens=5) for i in range(2)]
                return list(await asyncio.gather(*after))

        results = asyncio.run(scenario())
        assert [r.status for r in results] == [200, 200]
        assert all(r.done for r in results)
        assert stack.sim_stats()["violations"] == 0
        stack.wait_until(lambda: nothing_left(stack), what="the killed replica's leases reaped")


def test_a_replica_cut_off_from_redis_stops_its_streams_before_its_leases_expire(tmp_path: Path) -> None:
    # 2 pieces/s: the two long replies (~35 pieces) must still be running when the relay is cut, however
    # slowly a loaded machine starts the second one
    with cluster_stack(tmp_path, replicas=2, accounts=2, relayed=1, sim={"tokens_per_second": 2.0}) as stack:
        direct, cut_off = stack.replicas
        relay = stack.relay
        assert relay is not None
        redis = stack.redis.client()

        async def scenario() -> tuple[list[StreamResult], list[int], StreamResult, list[StreamResult]]:
            async with client() as http:
                held = [asyncio.ensure_future(stream(http, cut_off.base_url, f"long {i}")) for i in range(2)]
                await asyncio.to_thread(stack.wait_until, lambda: stack.sim_stats()["active_total"] == 2,
                                        10.0, "both accounts streaming on the relayed replica")
                relay.cut()
                stopped = list(await asyncio.gather(*held))
                # the holder gave up first: Redis still counts both leases as live at this moment
                clock = redis.time()
                now_ms = int(clock[0]) * 1000 + int(clock[1]) // 1000
                live = cast(list[tuple[bytes, float]], redis.zrange(NAMESPACE.prefix + "exp", 0, -1, withscores=True))
                expiries = [int(score) - now_ms for _, score in live]
                refused = await stream(http, cut_off.base_url, "while cut off")
                await asyncio.to_thread(stack.sim_set, tokens_per_second=400.0)
                later = list(await asyncio.gather(*(stream(http, direct.base_url, f"after {i}", max_tokens=5)
                                                    for i in range(2))))
                return stopped, expiries, refused, later

        try:
            stopped, expiries, refused, later = asyncio.run(scenario())
        finally:
            redis.close()
        for result in stopped:
            assert result.status == 200 and not result.done
            assert result.error is not None and result.error["code"] == "pool_lease_lost"
        assert len(expiries) == 2 and all(left > 0 for left in expiries)
        assert refused.status == 503 and refused.retry_after is not None
        assert [r.status for r in later] == [200, 200]
        assert stack.sim_stats()["violations"] == 0


def test_a_redis_restart_answers_503_while_recovering_then_serves_without_a_second_stream(tmp_path: Path) -> None:
    # 3 pieces/s: both long replies (~35 pieces) overlap even when a loaded machine starts them seconds apart
    with cluster_stack(tmp_path, replicas=2, accounts=2, sim={"tokens_per_second": 3.0}) as stack:

        async def scenario() -> tuple[list[StreamResult], list[StreamResult]]:
            async with client() as http:
                running = [asyncio.ensure_future(stream(http, stack.replicas[i].base_url, f"long {i}"))
                           for i in range(2)]
                await asyncio.to_thread(stack.wait_until, lambda: stack.sim_stats()["active_total"] == 2,
                                        30.0, "both accounts streaming")
                await asyncio.to_thread(stack.redis.restart)  # empty: no persistence
                answers: list[StreamResult] = []
                i = 0
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    result = await stream(http, stack.replicas[i % 2].base_url, "during recovery", max_tokens=5)
                    answers.append(result)
                    if result.status == 200:
                        break
                    i += 1
                    await asyncio.sleep(0.2)
                return answers, list(await asyncio.gather(*running))

        answers, running = asyncio.run(scenario())
        refused, served = answers[:-1], answers[-1]
        assert refused, "the first requests after the data loss must be refused"
        for result in refused:
            assert result.status in (503, 429) and result.retry_after is not None, result
        assert any(r.status == 503 and r.error is not None and r.error["code"] in ("pool_recovering", "pool_redis_down")
                   for r in refused)
        assert served.status == 200 and served.done
        for result in running:  # streams across the data loss: finished, or stopped with an error event
            assert result.done or (result.error is not None and result.error["code"] == "pool_lease_lost"), result
        assert stack.sim_stats()["violations"] == 0


def test_a_new_cluster_serves_its_first_request_and_a_flushed_one_waits_the_recovery_window(tmp_path: Path) -> None:
    # a 25 s recovery window (lease_ttl + grace): any request inside it would be a 503
    with cluster_stack(tmp_path, replicas=2, accounts=2, own_state=True, wait=False,
                       cluster={"lease_ttl": 20.0, "grace": 5.0}) as stack:

        async def ask(replica: int) -> StreamResult:
            async with client() as http:
                return await stream(http, stack.replicas[replica].base_url, "first", max_tokens=5)

        for index in range(2):  # the first requests, as soon as the processes are up
            result = asyncio.run(ask(index))
            assert result.status == 200 and result.done, result
        logs = [replica.stderr() for replica in stack.replicas]
        assert sum("cluster test: first start, seeded" in log for log in logs) == 1, logs
        assert not any("lost its data" in log for log in logs), logs

        flush = stack.redis.client()
        flush.flushall()  # Redis loses its data under running replicas: they were members, so the window opens
        flush.close()
        lost = asyncio.run(ask(0))
        assert lost.status == 503 and lost.error is not None and lost.error["code"] == "pool_recovering", lost
        assert lost.retry_after is not None
        assert any("Redis lost its data; recovery window of" in r.stderr() for r in stack.replicas)

        for replica in stack.replicas:
            replica.kill()
        stack.redis.restart()  # empty again, and the replica restarts: its state file says it was a member
        seen = len(stack.replicas[0].stderr())
        stack.replicas[0].start(60.0)
        again = asyncio.run(ask(0))
        assert again.status == 503 and again.error is not None and again.error["code"] == "pool_recovering", again
        restarted = stack.replicas[0].stderr()[seen:]
        assert "Redis lost its data; recovery window of" in restarted and "first start" not in restarted


def test_a_rate_limit_seen_by_one_replica_keeps_the_others_off_the_account_until_its_deadline(
        tmp_path: Path) -> None:
    with cluster_stack(tmp_path, replicas=2, accounts=1, pool={"cooldown_rate_limited": 60.0, "max_failover": 1},
                       sim={"retry_after": 60.0}) as stack:
        stack.sim_fault("user1@sim.test", "rate_limit")  # the simulator names accounts by email

        async def scenario() -> list[StreamResult]:
            async with client() as http:
                first = await stream(http, stack.replicas[0].base_url, "one")
                others = [await stream(http, replica.base_url, "two") for replica in stack.replicas[1:]]
                return [first, *others]

        first, *others = asyncio.run(scenario())
        assert first.status == 503 and first.error is not None and first.error["code"] == "upstream_rate_limited"
        completions = stack.sim_stats()["requests"].get("completion", 0)
        for result in others:  # never sent upstream: the shared pool knows the account is cooling
            assert result.status == 429 and result.error is not None
            assert result.error["code"] == "pool_all_cooling"
            assert result.retry_after is not None and int(result.retry_after) > 30
        assert stack.sim_stats()["requests"].get("completion", 0) == completions


def test_an_expired_token_is_renewed_with_exactly_one_login_across_replicas(tmp_path: Path) -> None:
    with cluster_stack(tmp_path, accounts=1, pool={"per_account_concurrency": 3},
                       sim={"max_streams_per_account": 3, "tokens_per_second": 100.0}) as stack:

        async def scenario() -> list[StreamResult]:
            async with client() as http:
                return list(await asyncio.gather(*(stream(http, r.base_url, "hi") for r in stack.replicas)))

        warm = asyncio.run(scenario())
        assert [r.status for r in warm] == [200, 200, 200]
        assert stack.sim_stats()["logins"] == 1  # one token for three replicas
        stack.sim_reset(everything=True)  # the simulator forgets every token: they have all expired
        again = asyncio.run(scenario())
        assert [r.status for r in again] == [200, 200, 200] and all(r.done for r in again)
        stats = stack.sim_stats()
        assert stats["logins"] == 1
        assert stats["violations"] == 0


def test_a_gateway_whose_redis_is_unreachable_fails_closed_with_503_and_is_not_ready() -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    with running_stack(accounts=2, check=False, cluster={"redis_url": unreachable, "lease_ttl": 2.0}) as stack:
        assert httpx.get(f"{stack.base_url}/ready", timeout=5).status_code == 503
        with stack.http() as http:
            response = http.post("/v1/chat/completions", json={"model": "deepseek-chat",
                                                               "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "pool_redis_down"
        assert int(response.headers["retry-after"]) >= 1
        assert stack.sim_stats()["logins"] == 0  # no silent per-process fallback


def test_the_in_process_pool_stays_the_default_without_a_redis_url() -> None:
    with running_stack(accounts=1) as stack:
        assert stack.gateway.status()["mode"] == "single"
        with stack.http() as http:
            response = http.post("/v1/chat/completions", json={"model": "deepseek-chat",
                                                               "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200


def test_the_cluster_snapshot_lists_the_replicas_with_their_heartbeat_age() -> None:
    server = RedisServer()
    server.start()
    try:
        cluster = {"redis_url": server.url, "lease_ttl": 2.0, "grace": 0.5, "name": "snap"}
        with running_stack(accounts=2, cluster=cluster) as stack:
            snapshot = asyncio.run_coroutine_threadsafe(stack.gateway.pool.snapshot(),
                                                        stack.gateway_server.loop).result(10)  # type: ignore[arg-type]
            assert snapshot["mode"] == "cluster" and snapshot["name"] == "snap"
            assert [r["alive"] for r in snapshot["replicas"]] == [True]
            assert snapshot["replicas"][0]["heartbeat_age"] >= 0
            assert sorted(a["id"] for a in snapshot["accounts"]) == sorted(stack.gateway.pool.account_ids())
    finally:
        server.cleanup()


def test_bad_credentials_found_by_one_replica_keep_the_other_from_trying_to_log_in() -> None:
    server = RedisServer()
    server.start()
    users = sim_users(1)
    sim_config = SimulatorConfig(users=users, difficulty=TEST_DIFFICULTY, seed=7, over_limit_grace=0.0)
    try:
        with BackgroundServer(create_simulator(sim_config), quiet=True) as simulator:
            settings = gateway_settings(
                simulator.base_url, users, accounts=[{"email": users[0].email, "password": "not-the-password"}],
                cluster={"redis_url": server.url, "lease_ttl": 2.0, "grace": 0.5, "name": "creds"})
            with BackgroundServer(create_app(settings), quiet=True) as first, \
                    BackgroundServer(create_app(settings), quiet=True) as second:
                for base in (first.base_url, second.base_url):
                    wait_ready(base)
                body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
                headers = {"authorization": f"Bearer {API_KEY}"}
                stats_url = f"{simulator.base_url}/_sim/stats"
                one = httpx.post(f"{first.base_url}/v1/chat/completions", json=body, headers=headers, timeout=30)
                assert one.status_code == 503 and one.json()["error"]["code"] == "upstream_auth_failed"
                failures = httpx.get(stats_url, timeout=5).json()["login_failures"]
                assert failures == 1
                two = httpx.post(f"{second.base_url}/v1/chat/completions", json=body, headers=headers, timeout=30)
                assert two.status_code == 429 and two.json()["error"]["code"] == "pool_none_usable"
                assert httpx.get(stats_url, timeout=5).json()["login_failures"] == failures  # never tried again
    finally:
        server.cleanup()


def wait_ready(base_url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base_url}/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, f"{base_url} not ready"
        time.sleep(0.1)
