"""The demo: the gateway wired to the built-in DeepSeek simulator, so anyone can try it offline.

Used by `deepseek2api demo`, and by `python app.py` / `uvicorn app:app` when there is no config.json.
The simulator runs in a background thread on its own loopback port and is started and stopped with
the gateway's lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .background import BackgroundServer, free_port
from .settings import Settings

DEMO_KEY = "sk-demo"


def demo_settings(simulator_url: str, users: Any, *, host: str, port: int) -> Settings:
    """Gateway settings for the demo: one key, the simulator's users as accounts, state in memory."""
    accounts = [{"email": u.email, "password": u.password} if u.email else {"mobile": u.mobile, "password": u.password}
                for u in users]
    return Settings.model_validate({
        "keys": [{"name": "demo", "key": DEMO_KEY}],
        "accounts": accounts,
        "server": {"host": host, "port": port},
        "upstream": {"base_url": simulator_url, "impersonate": None},
        "state": {"backend": "memory"},
    })


def build_demo_app(*, host: str = "127.0.0.1", port: int = 5001, accounts: int = 3,
                   simulator_port: int = 0) -> tuple[Any, Settings, str]:
    """(ASGI app, its settings, a banner with ready-to-paste examples)."""
    from .server import create_app
    from .simulator import create_app as create_simulator
    from .simulator import demo_config

    sim_config = demo_config(accounts)
    sim_port = simulator_port or free_port()
    # quiet: the simulator must not reconfigure the process's logging (uvicorn would set `uvicorn.error`
    # to WARNING and hide the gateway server's "Uvicorn running on" line), nor print its own address.
    simulator = BackgroundServer(create_simulator(sim_config), port=sim_port, quiet=True)
    settings = demo_settings(simulator.base_url, sim_config.users, host=host, port=port)

    @contextlib.contextmanager
    def run_simulator() -> Iterator[None]:
        simulator.start()
        try:
            yield
        finally:
            simulator.stop()

    app = create_app(settings, companion=run_simulator)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return app, settings, banner(f"http://{shown_host}:{port}", simulator.base_url, len(sim_config.users))


def banner(base: str, simulator_url: str, accounts: int) -> str:
    return f"""
DeepSeek2API demo: the gateway at {base} talks to the built-in DeepSeek simulator at {simulator_url}
({accounts} simulated account{'' if accounts == 1 else 's'}; answers are synthetic and say so). API key: {DEMO_KEY}

  curl {base}/v1/chat/completions -H 'Authorization: Bearer {DEMO_KEY}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"model": "deepseek-chat", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

  pip install openai   # the OpenAI Python SDK, for this example (not a dependency of the gateway)
  python -c "from openai import OpenAI; c = OpenAI(base_url='{base}/v1', api_key='{DEMO_KEY}'); \\
print(c.chat.completions.create(model='deepseek-reasoner', \\
messages=[{{'role': 'user', 'content': 'Hi'}}]).choices[0].message)"

Models: deepseek-chat, deepseek-reasoner, deepseek-chat-search, deepseek-reasoner-search (+ expert variants).
Console: {base}/admin (key: {DEMO_KEY}) · Prometheus metrics: {base}/metrics
Press Ctrl+C to stop.
"""
