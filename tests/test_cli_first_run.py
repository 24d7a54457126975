"""What a new user sees from the command line: warnings, banners, messages and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from deepseek2api.deepseek.pow import hash_hex
from deepseek2api.demo import banner
from deepseek2api.simulator.cli import build_parser as simulator_parser

REPO = Path(__file__).resolve().parent.parent


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
