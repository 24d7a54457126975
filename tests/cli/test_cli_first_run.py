"""What a new user sees from the command line: warnings, banners, messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from deepseek2api.background import BackgroundServer, free_port
from deepseek2api.deepseek.pow import hash_hex
from deepseek2api.demo import banner
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator
from deepseek2api.simulator.cli import build_parser as simulator_parser

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 60, **env_changes: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DS2API_")}
    env["PYTHONPATH"] = str(REPO / "src")
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "deepseek2api.cli", *args], capture_output=True, text=True,
                          check=False, timeout=timeout, env=env, cwd=cwd)


def test_the_python_pow_backend_warns_that_it_is_slow() -> None:
    salt, expire_at, answer = "0123456789abcdef0123", 1790000000000, 42
    challenge = {"algorithm": "DeepSeekHashV1", "challenge": hash_hex(f"{salt}_{expire_at}_{answer}".encode()),
                 "salt": salt, "signature": "ab" * 32, "difficulty": 100, "expire_at": expire_at,
                 "target_path": "/api/v0/chat/completion"}
    slow = run_cli("pow", "--backend", "python", "--challenge", json.dumps(challenge))
    assert slow.returncode == 0, slow.stderr
    assert json.loads(slow.stdout)["answer"] == answer
    assert "warning" in slow.stderr and "minutes" in slow.stderr
    fast = run_cli("pow", "--backend", "numpy", "--challenge", json.dumps(challenge))
    assert fast.returncode == 0 and "warning" not in fast.stderr


def test_the_demo_banner_counts_accounts_in_good_english() -> None:
    assert "(1 simulated account;" in banner("http://127.0.0.1:5001", "http://127.0.0.1:9", 1)
    assert "(3 simulated accounts;" in banner("http://127.0.0.1:5001", "http://127.0.0.1:9", 3)


def test_simulate_port_is_optional_and_the_readme_says_its_default() -> None:
    assert simulator_parser().parse_args([]).port == 5002
    readme = (REPO / "README.md").read_text()
    assert "`deepseek2api simulate [--port N]" in readme and "port 5002 unless given" in readme


def test_serve_without_any_config_stops_and_says_where_it_looked(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "no configuration found" in result.stderr
    assert str(tmp_path) in result.stderr and "./config.json" in result.stderr and "$DS2API_CONFIG" in result.stderr
    assert "deepseek2api demo" in result.stderr
    assert "Uvicorn running" not in result.stdout + result.stderr


def test_check_without_any_config_stops_the_same_way(tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and "no configuration found" in result.stderr


def _check_config(tmp_path: Path, simulator_url: str, accounts: list[dict[str, object]]) -> Path:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"keys": ["k"], "accounts": accounts, "state": {"backend": "memory"},
                                  "upstream": {"base_url": simulator_url, "impersonate": None}}))
    config.chmod(0o600)
    return config


def _rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("account "))
    return {line.split()[0]: line.split(maxsplit=3)[1:] for line in lines[header + 1:-1]}


def test_check_names_the_file_it_read_and_exits_0_when_every_enabled_account_works(tmp_path: Path) -> None:
    users = [SimUser(email="good@sim.test", password="right")]
    with BackgroundServer(create_simulator(SimulatorConfig(users=users, difficulty=1000))) as simulator:
        _check_config(tmp_path, simulator.base_url, [
            {"email": "good@sim.test", "password": "right"},
            {"email": "off@sim.test", "password": "whatever", "enabled": False}])
        result = run_cli("check", cwd=tmp_path)  # ./config.json, found by itself
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == f"config file: {(tmp_path / 'config.json').resolve()}"
    rows = _rows(result.stdout)
    assert rows["good@sim.test"][:2] == ["ready", "direct"]
    assert rows["off@sim.test"][0] == "disabled"
    assert result.stdout.splitlines()[-1] == "1 of 1 enabled account(s) usable"


def test_check_exits_1_when_one_enabled_account_fails_and_shows_each_proxy_once(tmp_path: Path) -> None:
    users = [SimUser(email=f"u{i}@sim.test", password="right") for i in range(3)]
    dead = free_port()  # nothing listens there: the proxy cannot be reached
    plain_proxy = f"socks5://127.0.0.1:{dead}"
    secret_proxy = f"http://puser:proxy-secret-pw@127.0.0.1:{dead}"
    with BackgroundServer(create_simulator(SimulatorConfig(users=users, difficulty=1000))) as simulator:
        config = _check_config(tmp_path, simulator.base_url, [
            {"email": "u0@sim.test", "password": "right"},
            {"email": "u1@sim.test", "password": "right", "proxy": plain_proxy},
            {"email": "u2@sim.test", "password": "right", "proxy": secret_proxy}])
        result = run_cli("check", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows["u0@sim.test"][0] == "ready"
    state, via, detail = rows["u1@sim.test"]
    assert (state, via) == ("network", plain_proxy)
    assert "***" not in detail and "/users/login" in detail  # never masked in one place and shown in another
    state, via, detail = rows["u2@sim.test"]
    assert (state, via) == ("network", f"http://***@127.0.0.1:{dead}")
    assert "proxy-secret-pw" not in result.stdout + result.stderr and "puser" not in result.stdout
    assert result.stdout.splitlines()[-1] == "1 of 3 enabled account(s) usable"


def test_check_exits_2_on_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"accounts": [{"email": "a@b.c", "password": "x", "proxy": "ftp://h:1"}]}))
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 2 and "invalid configuration" in result.stderr
