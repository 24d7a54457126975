"""The real stack against the simulator's late-2026 profile (docs/deepseek-changes.md): the version gate,
risk-controlled password logins, accounts that work with the tokens they start with, expert and vision
disabled, new stream fields. Like gateway_support.running_stack, with the invariants checked on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from deepseek2api.background import BackgroundServer
from deepseek2api.server import create_app
from deepseek2api.simulator import SimulatorConfig
from deepseek2api.simulator import create_app as create_simulator
from deepseek2api.simulator.config import preset_token
from gateway_support import API_KEY, TEST_DIFFICULTY, Stack, gateway_settings, sim_users


def late_config(accounts: int) -> SimulatorConfig:
    config = SimulatorConfig(users=sim_users(accounts), difficulty=TEST_DIFFICULTY, seed=7, over_limit_grace=0.0)
    config.use_profile("late-2026")
    return config


def token_accounts(config: SimulatorConfig) -> list[dict[str, Any]]:
    """The gateway's accounts as an operator configures them today: e-mail and a pasted token, no password."""
    return [{"email": u.email, "token": preset_token(u.account)} for u in config.users]


@contextlib.contextmanager
def late_stack(*, accounts: int = 3, token_only: bool = True, check: bool = True,
               **overrides: Any) -> Iterator[Stack]:
    sim_config = late_config(accounts)
    with BackgroundServer(create_simulator(sim_config)) as simulator:
        if token_only:
            overrides.setdefault("accounts", token_accounts(sim_config))
        settings = gateway_settings(simulator.base_url, sim_config.users, **overrides)
        with BackgroundServer(create_app(settings)) as gateway_server:
            stack = Stack(simulator, gateway_server, sim_config, settings)
            yield stack
            if check:
                stack.assert_invariants()


class Admin:
    """The admin API with the test key (any API key opens the console when no admin_keys are set)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/admin/api", timeout=60,
                                 headers={"authorization": f"Bearer {API_KEY}"})

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    def account(self, account_id: str) -> dict[str, Any]:
        return next(a for a in self.call("GET", "/accounts")["accounts"] if a["id"] == account_id)


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
