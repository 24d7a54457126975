"""The CLI as a user runs it: subprocesses, real config files, the simulator on loopback (and `serve`
in-process where what matters is the uvicorn configuration it builds)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deepseek2api import cli, logs
from deepseek2api.background import BackgroundServer
from deepseek2api.deepseek.pow import hash_hex
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("DS2API_CONFIG", None)
    env.pop("DS2API_CONFIG_JSON", None)
    return subprocess.run([sys.executable, "-m", "deepseek2api.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def test_check_logs_in_every_account_and_prints_states(tmp_path: Path) -> None:
    users = [SimUser(email="good@sim.test", password="right"), SimUser(mobile="13800000000", password="right")]
    with BackgroundServer(create_simulator(SimulatorConfig(users=users, difficulty=1000))) as simulator:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({
            "keys": ["k"],
            "accounts": [{"email": "good@sim.test", "password": "right"},
                         {"mobile": "13800000000", "password": "wrong", "name": "phone"}],
            "upstream": {"base_url": simulator.base_url, "impersonate": None},
            "state": {"backend": "memory"},
        }))
        config.chmod(0o600)
        result = run_cli("check", "--config", str(config))
    assert result.returncode == 1, result.stderr  # an enabled account cannot be used
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {config.resolve()}"
    assert lines[1].startswith("configuration OK: 1 key(s), 2 account(s)")
    states = {line.split()[0]: line.split()[1] for line in lines[3:-1]}
    assert states == {"good@sim.test": "ready", "phone": "bad_credentials"}
    assert lines[-1] == "1 of 2 enabled account(s) usable"
    assert "right" not in result.stdout + result.stderr and "wrong" not in result.stdout + result.stderr


def test_check_without_login_validates_the_example_config() -> None:
    result = run_cli("check", "--config", str(REPO / "config.example.json"), "--no-login")
    assert result.returncode == 0, result.stderr
    assert "configuration OK: 2 key(s), 2 account(s), 3 proxies (pool disabled)" in result.stdout


def test_pow_command_solves_a_challenge() -> None:
    salt, expire_at, answer = "0123456789abcdef0123", 1790000000000, 777
    challenge = {"algorithm": "DeepSeekHashV1", "challenge": hash_hex(f"{salt}_{expire_at}_{answer}".encode()),
                 "salt": salt, "signature": "ab" * 32, "difficulty": 1000, "expire_at": expire_at,
                 "target_path": "/api/v0/chat/completion"}
    result = run_cli("pow", "--challenge", json.dumps(challenge))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["answer"] == answer
    assert json.loads(base64.b64decode(out["header"]))["answer"] == answer


def test_serve_log_level_option_also_sets_uvicorns_own_loggers(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"keys": ["sk-test"], "state": {"backend": "memory"},
                                  "server": {"log_level": "info"}}))
    served: list[Any] = []
    monkeypatch.setattr(cli, "run_server", served.append)
    monkeypatch.setattr(logs, "configure_logging", lambda level: None)  # keep this process's logging as it is
    assert cli.main(["serve", "--config", str(config), "--log-level", "warning"]) == 0
    assert served[0].config.log_level == "warning"  # uvicorn's "started" lines obey --log-level too
