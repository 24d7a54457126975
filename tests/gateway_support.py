"""The real stack on loopback for end-to-end tests: simulator ◄── gateway ◄── real clients.

`running_stack()` starts the simulator and the gateway (each with uvicorn in its own thread and
event loop) and, on exit, checks the invariants every test must keep: all leases back, nothing in
flight, zero per-account concurrency violations upstream.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAI

from deepseek2api.background import BackgroundServer
from deepseek2api.server import Gateway, create_app
from deepseek2api.settings import Settings
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator

API_KEY = "sk-test-key-0123456789"
TEST_DIFFICULTY = 2000  # a real PoW, cheap enough for hundreds of requests


def sim_users(n: int) -> list[SimUser]:
    return [SimUser(email=f"user{i}@sim.test", password=f"password-{i}") for i in range(1, n + 1)]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Stack:
    simulator: BackgroundServer
    gateway_server: BackgroundServer
    sim_config: SimulatorConfig
    settings: Settings

    @property
    def base_url(self) -> str:
        return self.gateway_server.base_url

    @property
    def gateway(self) -> Gateway:
        return self.gateway_server.config.app.state.gateway  # type: ignore[no-any-return]

    def openai(self, **options: Any) -> OpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 60)
        return OpenAI(base_url=f"{self.base_url}/v1", api_key=options.pop("api_key", API_KEY), **options)

    def async_openai(self, **options: Any) -> AsyncOpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 60)
        return AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=options.pop("api_key", API_KEY), **options)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=60)

    def sim_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.simulator.base_url}/_sim/stats", timeout=10).json()  # type: ignore[no-any-return]

    def sim_fault(self, account: str, fault: str, count: int = 1) -> None:
        response = httpx.post(f"{self.simulator.base_url}/_sim/faults",
                              json={"account": account, "fault": fault, "count": count}, timeout=10)
        response.raise_for_status()

    def sim_set(self, **changes: Any) -> None:
        httpx.post(f"{self.simulator.base_url}/_sim/config", json=changes, timeout=10).raise_for_status()

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Bounded wait until every lease is back and no turn is in flight."""
        deadline = time.monotonic() + timeout
        gateway = self.gateway
        while time.monotonic() < deadline:
            if gateway.pool.leases_out == 0 and gateway.inflight_count == 0:
                return
            time.sleep(0.02)
        raise AssertionError(f"gateway not idle after {timeout} s: leases_out={gateway.pool.leases_out} "
                             f"inflight={gateway.inflight_count}")

    def assert_invariants(self) -> None:
        self.wait_idle()
        stats = self.sim_stats()
        assert stats["violations"] == 0, f"per-account concurrency violated upstream: {stats}"


def gateway_settings(simulator_url: str, users: list[SimUser], **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "keys": [{"name": "test", "key": API_KEY}],
        "accounts": [{"email": u.email, "password": u.password} if u.email else
                     {"mobile": u.mobile, "password": u.password} for u in users],
        "server": {"keepalive_interval": 5.0, "shutdown_grace": 5.0},
        "pool": {"queue_timeout": 10.0},
        "upstream": {"base_url": simulator_url, "impersonate": None, "idle_timeout": 30.0},
        "state": {"backend": "memory"},
    }
    return Settings.model_validate(_merge(base, overrides))


@contextlib.contextmanager
def running_stack(*, accounts: int = 3, sim: dict[str, Any] | None = None, check: bool = True,
                  **settings_overrides: Any) -> Iterator[Stack]:
    """Simulator + gateway on loopback; invariants checked on a clean exit."""
    # No grace for a second stream on one account: any overlap at all counts as a violation.
    sim_options: dict[str, Any] = {"users": sim_users(accounts), "difficulty": TEST_DIFFICULTY, "seed": 7,
                                   "over_limit_grace": 0.0}
    sim_options.update(sim or {})
    sim_config = SimulatorConfig(**sim_options)
    with BackgroundServer(create_simulator(sim_config)) as simulator:
        settings = gateway_settings(simulator.base_url, sim_config.users, **settings_overrides)
        with BackgroundServer(create_app(settings)) as gateway_server:
            stack = Stack(simulator, gateway_server, sim_config, settings)
            yield stack
            if check:
                stack.assert_invariants()
