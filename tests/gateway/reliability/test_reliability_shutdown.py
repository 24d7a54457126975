"""Graceful shutdown of the real CLI process (issue #6 item 5).

SIGTERM: the listening socket closes at once (new connections are refused), streams in flight run to
their end (up to `server.shutdown_grace`), leases go back, account states are flushed to the state
store, and the process exits 0 — what systemd, Docker and Kubernetes expect.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deepseek2api.simulator import SimulatorConfig, SimulatorServer
from gateway_support import API_KEY, TEST_DIFFICULTY, sim_users
from reliability_support import (
    GatewayProcess,
    config_dict,
    expected_reply,
    integrity_check,
    port_refuses,
    stored_states,
    write_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(users=sim_users(2), difficulty=TEST_DIFFICULTY, tokens_per_second=40, seed=7)
    with SimulatorServer(config) as server:
        yield server


def _gateway(tmp_path: Path, simulator: SimulatorServer, grace: float) -> tuple[GatewayProcess, Path]:
    db = tmp_path / "state.db"
    data = config_dict(simulator.base_url, simulator.state.config.users, server={"shutdown_grace": grace},
                       state={"backend": "sqlite", "path": str(db)})
    return GatewayProcess(write_config(tmp_path / "config.json", data)), db


def _wait_refused(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_refuses(port):
            return True
        time.sleep(0.02)
    return False


def _stream_request(prompt: str) -> dict[str, object]:
    return {"model": "deepseek-chat", "stream": True, "messages": [{"role": "user", "content": prompt}]}


def test_sigterm_lets_the_stream_finish_then_exits_0(tmp_path: Path, simulator: SimulatorServer) -> None:
    gateway, db = _gateway(tmp_path, simulator, grace=20.0)
    prompt = "a slow goodbye [sim:words=40]"  # ~130 pieces at 40/s: about three seconds
    with gateway:
        with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=_stream_request(prompt),
                          headers={"authorization": f"Bearer {API_KEY}"}, timeout=30) as response:
            lines = response.iter_lines()
            head = []
            for line in lines:
                head.append(line)
                if '"content"' in line:
                    break
            gateway.signal(signal.SIGTERM)  # mid-stream
            assert _wait_refused(gateway.port), "the gateway still accepts connections after SIGTERM"
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{gateway.base_url}/health", timeout=2)
            assert simulator.state.stats()["active_total"] == 1  # the stream is still running
            tail = list(lines)
        events = [line[len("data: "):] for line in head + tail if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        content = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                          for e in events[:-1] if json.loads(e)["choices"])
        assert content == expected_reply(prompt, thinking=False)[0]
        assert gateway.wait(20) == 0
        log = gateway.stderr()
    assert "Traceback" not in log
    assert integrity_check(db) == "ok"
    states = stored_states(db)
    used = [s for s in states.values() if s["token"]]
    assert used and all(s["status"] == "ready" for s in states.values()), states


def test_sigterm_grace_ends_a_stream_that_runs_too_long(tmp_path: Path, simulator: SimulatorServer) -> None:
    gateway, db = _gateway(tmp_path, simulator, grace=0.5)
    prompt = "a very long goodbye [sim:words=400]"  # far longer than the grace
    answers: list[httpx.Response] = []

    def non_stream() -> None:
        answers.append(httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=30,
                                  headers={"authorization": f"Bearer {API_KEY}"},
                                  json={"model": "deepseek-chat", "messages": [{"role": "user", "content": prompt}]}))

    with gateway:
        waiter = threading.Thread(target=non_stream)
        waiter.start()
        with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=_stream_request(prompt),
                          headers={"authorization": f"Bearer {API_KEY}"}, timeout=30) as response:
            lines = response.iter_lines()
            for line in lines:
                if '"content"' in line:
                    break
            deadline = time.monotonic() + 10  # both requests are in flight before the signal
            while time.monotonic() < deadline and httpx.get(
                    f"{gateway.base_url}/admin/status", headers={"authorization": f"Bearer {API_KEY}"}
            ).json()["inflight"] < 2:
                time.sleep(0.02)
            gateway.signal(signal.SIGTERM)
            tail = list(lines)
        # Cut short by the grace, with an error event that says why (not a silently cut connection) …
        events = [line[len("data: "):] for line in tail if line.startswith("data: ")]
        assert events and events[-1] != "[DONE]"
        assert json.loads(events[-1])["error"]["code"] == "server_shutting_down"
        assert gateway.wait(20) == 0  # … and still a clean exit
        log = gateway.stderr()
        waiter.join(30)
    # The non-streaming request that was still running got a 503 that says why.
    assert answers and answers[0].status_code == 503, answers
    assert answers[0].json()["error"]["code"] == "server_shutting_down"
    assert answers[0].headers["retry-after"]
    assert "Traceback" not in log
    assert integrity_check(db) == "ok"
    assert any(s["token"] for s in stored_states(db).values())
    # The abandoned reply was stopped upstream before the process went away.
    deadline = time.monotonic() + 5
    while simulator.state.stats()["active_total"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert simulator.state.stats()["active_total"] == 0
    assert simulator.state.stats()["stop_streams"] >= 1
