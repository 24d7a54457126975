"""Seed compatibility: `python app.py` and `uvicorn app:app` serve the configured gateway (or the demo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from deepseek2api.background import BackgroundServer, free_port
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator

REPO = Path(__file__).resolve().parents[2]


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("launcher", ["python", "uvicorn"])
def test_seed_entry_points_serve_config_json(tmp_path: Path, launcher: str) -> None:
    users = [SimUser(email="seed@sim.test", password="pw")]
    with BackgroundServer(create_simulator(SimulatorConfig(users=users, difficulty=1000))) as simulator:
        port = free_port()
        # The seed's config.json shape, plus the simulator as upstream.
        (tmp_path / "config.json").write_text(json.dumps({
            "keys": ["key1"],
            "accounts": [{"email": "seed@sim.test", "password": "pw", "token": ""}],
            "proxy_pool_enabled": False, "proxy_pool": [],
            "upstream": {"base_url": simulator.base_url, "impersonate": None},
            "state": {"path": str(tmp_path / "state.db")},
            "server": {"port": port},
        }))
        (tmp_path / "app.py").write_text((REPO / "app.py").read_text().replace(
            'os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")', repr(str(REPO / "src"))))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DS2API_")}
        args = ["app.py"] if launcher == "python" else \
            ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
        process = _start(args, env, tmp_path)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, process)
            client = OpenAI(base_url=f"{base}/v1", api_key="key1", max_retries=0)
            reply = client.chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "seed"}])
            assert reply.choices[0].message.content.startswith("This is a synthetic reply")
        finally:
            process.terminate()
            process.wait(20)


def test_app_without_config_serves_the_demo(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text((REPO / "app.py").read_text().replace(
        'os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")', repr(str(REPO / "src"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DS2API_")}
    env["DS2API_PORT"] = str(port)
    process = _start(["app.py"], env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process)
        client = OpenAI(base_url=f"{base}/v1", api_key="sk-demo", max_retries=0)
        reply = client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "demo"}])
        assert "simulator" in reply.choices[0].message.content
    finally:
        process.terminate()
        process.wait(20)
