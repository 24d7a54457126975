"""The shared pool's cost: Redis round trips per request and the time acquire + release adds.

Side by side in one run, on one machine, against a `redis-server` this script starts on a free
loopback port (no persistence):

1. sequential acquire + release, one request at a time: the in-process pool (`AccountPool`) vs the
   Redis coordinator — p50/p99 per request and the difference ("added");
2. round trips per request (script calls, counted by the coordinator; the periodic tick is shown
   apart because it is per replica, not per request);
3. contention: 3 replicas × 64 concurrent requests on 20 accounts, each holding its lease ~2 ms,
   vs one in-process pool with the same load: requests per second and the wait p50/p99.

    python bench/cluster.py [--requests 2000] [--seconds 5]
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    redis = Redis()
    try:
        print(f"## Shared pool (Redis) vs in-process pool — Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        await sequential(redis.url, args.requests)
        await contention(redis.url, args.seconds)
    finally:
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
