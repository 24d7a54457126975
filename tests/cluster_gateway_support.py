"""Test support for the shared pool end to end: one simulator (in this process), one `redis-server`,
and several real gateway processes (`python -m deepseek2api serve`) sharing it; a relay the test can cut.

The simulator counts streams per account (a token maps to its account), so two replicas streaming on
one account with different tokens is a violation as much as two streams with the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cluster_support import RedisServer, Relay
from deepseek2api.background import BackgroundServer
from deepseek2api.simulator import SimulatorConfig
from deepseek2api.simulator import create_app as create_simulator
from gateway_support import API_KEY, TEST_DIFFICULTY, sim_users
from reliability_support import GatewayProcess, config_dict, write_config

# Short times so the failure cases play out in seconds: a lease lives 2 s unless renewed (every ~0.67 s),
# a holder fences itself 0.4 s before that, an expired lease cools its account 0.5 s more.
CLUSTER = {"name": "test", "lease_ttl": 2.0, "grace": 0.5}
MODEL = "deepseek-chat"


@dataclass
class StreamResult:
    status: int
    retry_after: str | None = None
    text: str = ""
    done: bool = False
    error: dict[str, Any] | None = None
    events: int = 0


@dataclass
class ClusterStack:
    redis: RedisServer
    simulator: BackgroundServer
    replicas: list[GatewayProcess]
    relay: ThreadedRelay | None = None
    config_paths: list[Path] = field(default_factory=list)

    def sim_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.simulator.base_url}/_sim/stats", timeout=10).json()  # type: ignore[no-any-return]

    def sim_fault(self, account: str, fault: str, count: int = 1) -> None:
        httpx.post(f"{self.simulator.base_url}/_sim/faults", json={"account": account, "fault": fault,
                                                                   "count": count}, timeout=10).raise_for_status()

    def sim_set(self, **changes: Any) -> None:
        httpx.post(f"{self.simulator.base_url}/_sim/config", json=changes, timeout=10).raise_for_status()

    def sim_reset(self, *, everything: bool = False) -> None:
        httpx.post(f"{self.simulator.base_url}/_sim/reset", json={"all": everything}, timeout=10).raise_for_status()

    def wait_ready(self, replicas: list[GatewayProcess] | None = None, timeout: float = 30.0) -> None:
        """Bounded wait until every replica answers /ready with 200 (a new namespace opens a recovery window)."""
        deadline = time.monotonic() + timeout
        for replica in replicas or self.replicas:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{replica.base_url}/ready", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica {replica.port} not ready:\n{replica.stderr()[-3000:]}")
                time.sleep(0.1)

    def wait_until(self, predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout} s")
            time.sleep(0.05)

    def status(self, replica: GatewayProcess) -> dict[str, Any]:
        response = httpx.get(f"{replica.base_url}/admin/status", headers={"authorization": f"Bearer {API_KEY}"},
                             timeout=5)
        return response.json()  # type: ignore[no-any-return]


class ThreadedRelay:
    """cluster_support.Relay on its own event loop thread, so a gateway process can reach Redis through it."""

    def __init__(self, target_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="redis-relay", daemon=True)
        self.thread.start()
        self.relay = Relay(target_port)
        asyncio.run_coroutine_threadsafe(self.relay.start(), self.loop).result(10)

    @property
    def url(self) -> str:
        return self.relay.url

    def cut(self) -> None:
        self.loop.call_soon_threadsafe(self.relay.cut)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def cluster_stack(tmp_path: Path, *, replicas: int = 3, accounts: int = 4, sim: dict[str, Any] | None = None,
                  relayed: int = 0, own_state: bool = False, wait: bool = True,
                  **overrides: Any) -> Iterator[ClusterStack]:
    """Redis + simulator + `replicas` gateway processes sharing one pool; the last `relayed` replicas
    reach Redis through a relay the test can cut. Everything is stopped on exit.

    `own_state`: each replica keeps its own SQLite state file (`replicaN.db`) instead of memory state;
    `wait=False`: yield as soon as every process is healthy, without waiting for /ready."""
    sim_options: dict[str, Any] = {"users": sim_users(accounts), "difficulty": TEST_DIFFICULTY, "seed": 7,
                                   "over_limit_grace": 0.0}
    sim_options.update(sim or {})
    sim_config = SimulatorConfig(**sim_options)
    redis = RedisServer()
    redis.start()
    relay: ThreadedRelay | None = None
    processes: list[GatewayProcess] = []
    try:
        with BackgroundServer(create_simulator(sim_config), quiet=True) as simulator:
            if relayed:
                relay = ThreadedRelay(redis.port)
            paths = []
            cluster_extra = overrides.pop("cluster", {})
            for index in range(replicas):
                url = relay.url if relay is not None and index >= replicas - relayed else redis.url
                cluster = {**CLUSTER, **cluster_extra, "redis_url": url}
                extra = dict(overrides)
                if own_state:
                    extra["state"] = {"backend": "sqlite", "path": str(tmp_path / f"replica{index}.db")}
                data = config_dict(simulator.base_url, sim_config.users, cluster=cluster, **extra)
                paths.append(write_config(tmp_path / f"replica{index}.json", data))
            processes = [GatewayProcess(path) for path in paths]
            with ThreadPoolExecutor(len(processes)) as pool:
                list(pool.map(lambda p: p.start(60.0), processes))
            stack = ClusterStack(redis, simulator, processes, relay, paths)
            if wait:
                stack.wait_ready()
            yield stack
    finally:
        for process in processes:
            process.kill()
        if relay is not None:
            relay.close()
        redis.cleanup()


async def stream(client: httpx.AsyncClient, base_url: str, prompt: str = "hello", **body: Any) -> StreamResult:
    """One streaming chat completion, read to its end: [DONE], an error event, or an HTTP error."""
    payload = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True, **body}
    async with client.stream("POST", f"{base_url}/v1/chat/completions", json=payload,
                             headers={"authorization": f"Bearer {API_KEY}"}) as response:
        if response.status_code != 200:
            await response.aread()
            return StreamResult(response.status_code, response.headers.get("retry-after"),
                                error=response.json().get("error"))
        result = StreamResult(200)
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                result.done = True
                break
            event = json.loads(data)
            if "error" in event:
                result.error = event["error"]
                break
            result.events += 1
            for choice in event.get("choices") or []:
                result.text += (choice.get("delta") or {}).get("content") or ""
        return result


def client(**options: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    return httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits, **options)
