"""Crash safety of the real CLI process (issue #6 item 4).

`kill -9` the gateway again and again while it logs accounts in and writes their tokens and states;
after every restart the SQLite state store passes `PRAGMA integrity_check` and the learned tokens are
used again: the only logins after a restart are those of accounts whose stored token is really gone.
A state file that is garbage, or a state path that cannot be opened, gives a warning — never a
gateway that refuses to serve.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from deepseek2api.simulator import SimulatorConfig, SimulatorServer
from gateway_support import API_KEY, TEST_DIFFICULTY, running_stack, sim_users
from reliability_support import (
    GatewayProcess,
    config_dict,
    expected_reply,
    integrity_check,
    stored_states,
    write_config,
)

pytestmark = pytest.mark.slow

ACCOUNTS = 5
KILLS = 5
AUTH = {"authorization": f"Bearer {API_KEY}"}


def _ask(base_url: str, prompt: str, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", headers=AUTH, timeout=timeout,
                      json={"model": "deepseek-chat", "messages": [{"role": "user", "content": prompt}]})


def _load_until(base_url: str, stop: threading.Event, worker: int, started: list[int]) -> int:
    """Requests in a loop until `stop`; failures are expected (the process gets killed under us).

    `started` counts requests begun by every worker (list.append is atomic under the GIL)."""
    sent = 0
    while not stop.is_set():
        sent += 1
        started.append(worker)
        try:
            _ask(base_url, f"load {worker}-{sent}", timeout=5)
        except httpx.HTTPError:
            time.sleep(0.01)
    return sent


def _wait_upstream_idle(sim: SimulatorServer, timeout: float = 10.0) -> None:
    """The simulator has noticed every connection of the killed gateway (no stream slot still held)."""
    deadline = time.monotonic() + timeout
    while sim.state.stats()["active_total"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.state.stats()["active_total"] == 0


def test_kill_9_during_logins_keeps_the_store_intact_and_tokens_reused(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    users = sim_users(ACCOUNTS)
    sim_config = SimulatorConfig(users=users, difficulty=TEST_DIFFICULTY, seed=7, retry_after=0.2)
    db = tmp_path / "state.db"
    load_logins = 0
    stale_total = 0
    with SimulatorServer(sim_config) as sim:
        config = write_config(tmp_path / "config.json", config_dict(
            sim.base_url, users, state={"backend": "sqlite", "path": str(db)},
            pool={"cooldown_rate_limited": 0.2, "cooldown_busy": 0.2, "queue_timeout": 5.0}))
        stale: set[str] = set()
        alive = {u.account for u in users}
        for cycle in range(KILLS + 1):
            with GatewayProcess(config) as gateway:
                if cycle:
                    # Restarted after kill -9: quiet upstream, every live account used once, side by side.
                    _on_sim_loop(sim, lambda: sim.state.config.update(
                        {"token_ttl": None, "fault_rates": {}, "tokens_per_second": 120.0}))
                    _on_sim_loop(sim, sim.state.reset)  # zero the counters
                    prompts = [f"after restart {cycle}.{i} [sim:words=20]" for i in range(len(alive))]
                    with ThreadPoolExecutor(len(prompts)) as pool:
                        answers = list(pool.map(lambda p: _ask(gateway.base_url, p), prompts))
                    for prompt, answer in zip(prompts, answers, strict=True):
                        assert answer.status_code == 200, answer.text
                        assert answer.json()["choices"][0]["message"]["content"] == \
                            expected_reply(prompt, thinking=False)[0]
                    stats = sim.state.stats()
                    assert set(stats["max_concurrent"]) == alive, stats["max_concurrent"]
                    assert stats["violations"] == 0
                    # Only accounts whose stored token was really gone had to log in again.
                    assert stats["logins"] == len(stale & alive), (cycle, stats["logins"], stale)
                    stale_total += len(stale & alive)
                if cycle == KILLS:
                    break
                # Load with tokens that expire after half a second: the gateway keeps logging in again
                # and writing tokens and states, and we kill it at a random moment of that.
                before = sim.state.stats()["logins"]
                _on_sim_loop(sim, lambda: sim.state.config.update(
                    {"token_ttl": 0.5, "tokens_per_second": None, "fault_rates": {"busy": 0.05, "rate_limit": 0.05}}))
                stop = threading.Event()
                started: list[int] = []
                with ThreadPoolExecutor(8) as pool:
                    workers = [pool.submit(_load_until, gateway.base_url, stop, w, started) for w in range(8)]
                    time.sleep(rng.uniform(0.5, 1.2))
                    # On a loaded machine the first requests take longer: kill only once the load runs.
                    deadline = time.monotonic() + 30
                    while len(started) <= 8 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    gateway.signal(signal.SIGKILL)
                    assert gateway.wait(10) == -signal.SIGKILL
                    stop.set()
                    assert sum(w.result() for w in workers) > 8
                load_logins += sim.state.stats()["logins"] - before
            # The process is dead: what did it leave behind?
            _on_sim_loop(sim, lambda: sim.state.config.update({"token_ttl": None, "fault_rates": {}}))  # no expiry now
            _wait_upstream_idle(sim)
            assert integrity_check(db) == "ok"
            states = stored_states(db)
            assert set(states) <= {u.account for u in users}
            valid = set(sim.state.tokens)
            stale = {a for a in alive if not states.get(a, {}).get("token") or states[a]["token"] not in valid}
            alive = {a for a in alive if states.get(a, {}).get("status") not in ("bad_credentials", "banned")}
            assert alive, states
    print(f"logins under load: {load_logins}, stale tokens after kills: {stale_total}, alive: {len(alive)}")
    assert load_logins >= 2 * KILLS  # the kills really hit a gateway busy logging in
    assert stale_total < KILLS * len(alive)  # learned tokens were reused, not all thrown away


def _on_sim_loop(sim: SimulatorServer, action: Callable[[], object]) -> None:
    """Change the simulator's state on its own event loop (streams may be reading it)."""
    async def run() -> None:
        action()

    sim.call(run())


# ---------------------------------------------------------------------------------- bad state files


def test_garbage_state_file_starts_with_a_warning_and_serves(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a database\x00" * 300)
    with SimulatorServer(SimulatorConfig(users=sim_users(1), difficulty=TEST_DIFFICULTY)) as sim:
        config = write_config(tmp_path / "config.json", config_dict(
            sim.base_url, sim.state.config.users, state={"backend": "sqlite", "path": str(db)}))
        with GatewayProcess(config) as gateway:
            answer = _ask(gateway.base_url, "hello after a bad state file")
            assert answer.status_code == 200, answer.text
            log = gateway.stderr()
    assert "WARNING" in log and "unusable" in log and "Traceback" not in log
    assert list(tmp_path.glob("state.db.corrupt-*"))  # kept for the operator, not deleted
    assert integrity_check(db) == "ok"


@pytest.mark.parametrize("kind", ["truncated", "directory", "parent_is_a_file"])
def test_unusable_state_path_starts_with_a_warning_and_serves(tmp_path: Path, kind: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state.db"
    if kind == "truncated":  # a real database cut in half, as a full disk or a bad copy leaves it
        with running_stack(accounts=1, state={"backend": "sqlite", "path": str(db)}) as stack:
            stack.openai().chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "fill"}])
        data = db.read_bytes()
        assert len(data) > 4096
        db.write_bytes(data[: len(data) // 2 + 7])
    elif kind == "directory":
        db.mkdir()
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a directory should be")
        db = blocker / "state.db"
    with caplog.at_level(logging.WARNING, logger="deepseek2api.store"):
        with running_stack(accounts=1, state={"backend": "sqlite", "path": str(db)}) as stack:
            reply = stack.openai().chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "still serving"}])
            assert reply.choices[0].message.content == expected_reply("still serving", thinking=False)[0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "deepseek2api.store"]
    assert warnings, "no warning about the unusable state store"
