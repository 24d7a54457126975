"""The shared pool's cost: Redis round trips per request and the time acquire + release adds.

Side by side in one run, on one machine, against a `redis-server` this script starts on a free
loopback port (no persistence):

1. sequential acquire + release, one request at a time: the in-process pool (`AccountPool`) vs the
   Redis coordinator — p50/p99 per request and the difference ("added");
2. round trips per request (script calls, counted by the coordinator; the periodic tick is shown
   apart because it is per replica, not per request);
3. contention: 3 replicas × 64 concurrent requests on 20 accounts, each holding its lease ~2 ms,
   vs one in-process pool with the same load: requests per second and the wait p50/p99;
4. end to end through real gateway processes (`--gateway`, on by default): time to first byte p50/p99
   of a gateway on the Redis pool vs one on the in-process pool (same simulator, requests interleaved),
   Redis script calls per request (from Redis's own `INFO commandstats`, the idle replicas' periodic
   ticks subtracted), and requests per second through 3 replicas vs 1 on the shared pool (fast simulator).

    python bench/cluster.py [--requests 2000] [--seconds 5] [--turns 300] [--no-gateway]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from deepseek2api.pool import AccountPool
from deepseek2api.pool.cluster import ClusterAccount, ClusterConfig, ClusterCoordinator
from deepseek2api.settings import AccountSettings, PoolSettings
from deepseek2api.store import MemoryStateStore

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Redis:
    def __init__(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            sys.exit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ds2api-bench-redis-")
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


async def no_login(account: AccountSettings, proxy: str | None) -> str:
    return "token"


def local_pool(n: int, queue: int = 256) -> AccountPool:
    accounts = [AccountSettings(name=f"acc{i}", email=f"a{i}@example.com", password="x", token="t")
                for i in range(n)]
    return AccountPool(accounts, settings=PoolSettings(queue_size=queue, queue_timeout=30.0),
                       store=MemoryStateStore(), login=no_login)


def cluster(url: str, n: int, replica: str, name: str) -> ClusterCoordinator:
    config = ClusterConfig(name=name, recovery_window=0, queue_size=256, queue_timeout=30.0)
    accounts = [ClusterAccount(id=f"acc{i}", credentials="c", token="t") for i in range(n)]
    return ClusterCoordinator.from_url(url, config, accounts, ["", "http://p1:1", "http://p2:2"], replica_id=replica)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(n: int, one: Callable[[], Awaitable[None]], warm: int = 200) -> list[float]:
    for _ in range(min(warm, n)):
        await one()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await one()
        out.append(time.perf_counter() - start)
    return out


async def sequential(url: str, n: int) -> None:
    pool = local_pool(20)
    await pool.start()

    async def local_one() -> None:
        async with pool.lease():
            pass

    coord = cluster(url, 20, "seq", "bench-seq")
    await coord.start()

    async def shared_one() -> None:
        lease = await coord.acquire()
        await lease.release()

    # alternate rounds so background noise hits both alike
    local: list[float] = []
    shared: list[float] = []
    for _ in range(4):
        local += await timed(n // 4, local_one)
        shared += await timed(n // 4, shared_one)
    before = dict(coord.calls)
    await timed(n, shared_one, warm=0)
    after = dict(coord.calls)
    per_request = (after["acquire"] - before.get("acquire", 0) + after["release"] - before.get("release", 0)) / n
    ticks = after.get("tick", 0) - before.get("tick", 0)
    await coord.aclose()
    await pool.close()
    us = 1e6
    print("\n### Sequential acquire + release (one request at a time)\n")
    print("| pool | p50 | p99 | mean |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| in-process | {pct(local, .5) * us:.0f} µs | {pct(local, .99) * us:.0f} µs | "
          f"{statistics.mean(local) * us:.0f} µs |")
    print(f"| Redis (shared) | {pct(shared, .5) * us:.0f} µs | {pct(shared, .99) * us:.0f} µs | "
          f"{statistics.mean(shared) * us:.0f} µs |")
    print(f"| **added** | **{(pct(shared, .5) - pct(local, .5)) * 1000:.2f} ms** | "
          f"{(pct(shared, .99) - pct(local, .99)) * 1000:.2f} ms | |")
    print(f"\nRedis round trips per request: **{per_request:.2f}** (acquire + release); "
          f"plus {ticks} periodic tick(s) for the whole replica during the run.")


async def contention(url: str, seconds: float) -> None:
    hold = 0.002

    async def drive(acquire_release: Callable[[], Awaitable[float]], workers: int) -> tuple[float, list[float]]:
        waits: list[float] = []
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                waits.append(await acquire_release())
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return done / (time.perf_counter() - start), waits

    pool = local_pool(20)
    await pool.start()

    async def local_one() -> float:
        start = time.perf_counter()
        async with pool.lease():
            waited = time.perf_counter() - start
            await asyncio.sleep(hold * random.uniform(0.5, 1.5))
        return waited

    local_rate, local_waits = await drive(local_one, 64)
    await pool.close()

    coords = [cluster(url, 20, f"r{i}", "bench-load") for i in range(3)]
    for coord in coords:
        await coord.start()

    async def shared_one_on(coord: ClusterCoordinator) -> float:
        start = time.perf_counter()
        lease = await coord.acquire()
        waited = time.perf_counter() - start
        await asyncio.sleep(hold * random.uniform(0.5, 1.5))
        await lease.release()
        return waited

    rates = await asyncio.gather(*(drive(lambda c=c: shared_one_on(c), 22) for c in coords))  # type: ignore[misc]
    shared_rate = sum(r for r, _ in rates)
    shared_waits = [w for _, ws in rates for w in ws]
    for coord in coords:
        await coord.aclose()
    print(f"\n### Contention: ~64 concurrent requests on 20 accounts, ~{hold * 1000:.0f} ms hold, {seconds:g} s\n")
    print("| pool | requests/s | acquire wait p50 | p99 |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| in-process, 1 replica | {local_rate:.0f} | {pct(local_waits, .5) * 1000:.2f} ms | "
          f"{pct(local_waits, .99) * 1000:.2f} ms |")
    print(f"| Redis, 3 replicas (one process here) | {shared_rate:.0f} | {pct(shared_waits, .5) * 1000:.2f} ms | "
          f"{pct(shared_waits, .99) * 1000:.2f} ms |")


def redis_script_calls(port: int) -> int:
    """EVALSHA/EVAL calls Redis has served so far (its own count, so every replica is included)."""
    import redis as redis_client

    client = redis_client.Redis(host="127.0.0.1", port=port)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    """A new namespace opens the recovery window once: wait until /ready says yes."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} not ready")


async def gateway_side_by_side(redis: Redis, turns: int, seconds: float) -> None:
    """Time to first byte, script calls per request and throughput through real gateway processes."""
    sys.path.insert(0, str(BENCH_DIR))
    from harness import Connection, Gateway, Simulator, gateway_turn, percentile

    cluster_cfg = {"redis_url": redis.url, "name": "bench-e2e", "lease_ttl": 3.0, "grace": 1.0}
    with Simulator(20, tokens_per_second=0.0) as sim:
        assert isinstance(sim, Simulator)
        local = Gateway(sim, log_level="warning", pool={"queue_size": 256})
        shared = [Gateway(sim, log_level="warning", pool={"queue_size": 256}, cluster=cluster_cfg)
                  for _ in range(3)]
        gateways = [local, *shared]
        try:
            for gw in gateways:
                gw.start()
            for gw in gateways:
                wait_ready(gw.base_url)

            # 1. TTFB, one request at a time, the two gateways interleaved (same load on the machine)
            conns = {"local": Connection(local.port), "shared": Connection(shared[0].port)}
            for conn in conns.values():  # warm up: logins, connections, tokenizer
                for _ in range(40):
                    await gateway_turn(conn, "warm up")
            ttfb: dict[str, list[float]] = {"local": [], "shared": []}
            idle_start, idle_t0 = redis_script_calls(redis.port), time.perf_counter()
            await asyncio.sleep(2.0)
            idle_rate = (redis_script_calls(redis.port) - idle_start) / (time.perf_counter() - idle_t0)
            calls_before, t0 = redis_script_calls(redis.port), time.perf_counter()
            shared_turns = 0
            for i in range(turns):
                for name in (("local", "shared") if i % 2 else ("shared", "local")):
                    sample = await gateway_turn(conns[name], f"question {i}")
                    if sample.ok and sample.ttfb is not None:
                        ttfb[name].append(sample.ttfb)
                    if name == "shared":
                        shared_turns += 1
            elapsed = time.perf_counter() - t0
            calls = redis_script_calls(redis.port) - calls_before - idle_rate * elapsed
            for conn in conns.values():
                conn.close()
            print(f"\n### End to end through the gateway: {turns} sequential streamed turns each, interleaved\n")
            print("| gateway | ttfb p50 | ttfb p99 | ok |")
            print("| --- | ---: | ---: | ---: |")
            for name, label in (("local", "in-process pool"), ("shared", "Redis pool")):
                values = ttfb[name]
                print(f"| {label} | {percentile(values, 50) * 1000:.2f} ms | {percentile(values, 99) * 1000:.2f} ms "
                      f"| {len(values)}/{turns} |")
            added50 = (percentile(ttfb["shared"], 50) - percentile(ttfb["local"], 50)) * 1000
            added99 = (percentile(ttfb["shared"], 99) - percentile(ttfb["local"], 99)) * 1000
            print(f"| **added by Redis** | **{added50:.2f} ms** | {added99:.2f} ms | |")
            print(f"\nRedis script calls per request: **{calls / max(1, shared_turns):.2f}** "
                  f"(periodic ticks/snapshots of the 3 idle replicas, {idle_rate:.1f}/s, subtracted)")

            # 2. throughput: 1 replica vs 3 replicas on the shared pool, same total concurrency
            concurrency = 24

            async def rate(targets: list[Gateway]) -> tuple[float, int]:
                conns_: list[Connection] = [Connection(targets[i % len(targets)].port) for i in range(concurrency)]
                stop_at = time.perf_counter() + seconds
                done = [0, 0]

                async def worker(conn: Connection) -> None:
                    while time.perf_counter() < stop_at:
                        sample = await gateway_turn(conn, "throughput")
                        done[0 if sample.ok else 1] += 1

                started = time.perf_counter()
                await asyncio.gather(*(worker(c) for c in conns_))
                for c in conns_:
                    c.close()
                return done[0] / (time.perf_counter() - started), done[1]

            one, one_failed = await rate(shared[:1])
            three, three_failed = await rate(shared)
            local_rate, local_failed = await rate([local])
            print(f"\n### Throughput, {concurrency} concurrent streaming clients, 20 accounts, fast simulator, "
                  f"{seconds:g} s each\n")
            print("| gateways | requests/s | not ok |")
            print("| --- | ---: | ---: |")
            print(f"| 1 replica, in-process pool | {local_rate:.0f} | {local_failed} |")
            print(f"| 1 replica, Redis pool | {one:.0f} | {one_failed} |")
            print(f"| 3 replicas, Redis pool | {three:.0f} | {three_failed} |")
            print(f"\nsimulator violations (two streams on one account): {sim.sim_stats()['violations']}")
        finally:
            for gw in gateways:
                gw.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--turns", type=int, default=300, help="sequential turns per gateway for the TTFB table")
    parser.add_argument("--no-gateway", action="store_true", help="skip the end-to-end gateway section")
    args = parser.parse_args()
    redis = Redis()
    try:
        print(f"## Shared pool (Redis) vs in-process pool — Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        await sequential(redis.url, args.requests)
        await contention(redis.url, args.seconds)
        if not args.no_gateway:
            await gateway_side_by_side(redis, args.turns, args.seconds)
    finally:
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
