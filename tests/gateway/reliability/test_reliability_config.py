"""A broken config fails at start with ONE clear line naming the field (issue #6 item 7).

Through the real CLI (`python -m deepseek2api serve|check --no-login --config X`) as subprocesses:
exit code 2, stderr is exactly one line that names the bad field, no traceback, nothing served.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reliability_support import child_env

GOOD_ACCOUNT = {"email": "a@example.com", "password": "pw"}

# name → (file content, words the one line must contain)
BROKEN: dict[str, tuple[str, list[str]]] = {
    "bad_json": ('{"keys": ["k"], "accounts": [', ["invalid JSON", "line"]),
    "trailing_comma": ('{"keys": ["k"],}', ["invalid JSON"]),
    "not_an_object": ("[1, 2, 3]", ["JSON object"]),
    "deeply_nested": ('{"keys": ' + "[" * 100_000 + "]" * 100_000 + "}", ["nested too deeply"]),
    "unknown_proxy_scheme": (json.dumps({"keys": ["k"], "proxy_pool_enabled": True,
                                         "proxy_pool": ["http://h:1", "ftp://files.example.com:21"]}),
                             ["proxy_pool[1]", "ftp"]),
    "account_proxy_scheme": (json.dumps({"keys": ["k"], "accounts": [{**GOOD_ACCOUNT, "proxy": "gopher://x:1"}]}),
                             ["accounts[0].proxy", "gopher"]),
    "too_many_proxies": (json.dumps({"keys": ["k"], "proxy_pool": [f"http://h:{1000 + i}" for i in range(101)]}),
                         ["proxy_pool", "100"]),
    "account_without_password": (json.dumps({"keys": ["k"], "accounts": [{"email": "a@example.com"}]}),
                                 ["accounts[0]", "password"]),
    "password_not_a_string": (json.dumps({"keys": ["k"], "accounts": [{"email": "a@x.com", "password": 5}]}),
                              ["accounts[0].password"]),
    "accounts_not_a_list": (json.dumps({"keys": ["k"], "accounts": {"email": "a@x.com"}}), ["accounts"]),
    "port_not_a_number": (json.dumps({"keys": ["k"], "server": {"port": "eighty"}}), ["server.port"]),
    "port_out_of_range": (json.dumps({"keys": ["k"], "server": {"port": 70000}}), ["server.port"]),
    "negative_timeout": (json.dumps({"keys": ["k"], "upstream": {"idle_timeout": -1}}), ["upstream.idle_timeout"]),
    "queue_size_wrong_type": (json.dumps({"keys": ["k"], "pool": {"queue_size": "lots"}}), ["pool.queue_size"]),
    "key_wrong_type": (json.dumps({"keys": [None]}), ["keys[0]"]),
    "unknown_state_backend": (json.dumps({"keys": ["k"], "state": {"backend": "redis"}}), ["state.backend"]),
    "duplicate_account": (json.dumps({"keys": ["k"], "accounts": [GOOD_ACCOUNT, GOOD_ACCOUNT]}),
                          ["accounts[1]", "duplicate"]),
    "not_utf8": ("\udcff{}", ["UTF-8"]),  # written with surrogateescape: a raw 0xff byte
}


def _run(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "deepseek2api", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env(), cwd=cwd)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_config_is_one_line_naming_the_field(tmp_path: Path, name: str) -> None:
    content, words = BROKEN[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    path.chmod(0o600)
    runs = {command: _run([*command.split(), "--config", str(path), *extra], tmp_path)
            for command, extra in (("serve", ["--host", "127.0.0.1", "--port", "9"]), ("check --no-login", []))}
    try:
        for command, proc in runs.items():
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 2, (command, proc.returncode, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1, (command, err)
            line = lines[0]
            assert line.startswith("deepseek2api: invalid configuration: "), line
            assert "Traceback" not in err
            for word in words:
                assert word in line, (command, word, line)
            assert len(line) < 400, line
            assert not out.strip(), out
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_missing_config_file_is_one_line_too(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    for command in ("serve", "check --no-login"):
        proc = _run([*command.split(), "--config", str(missing)], tmp_path)
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 2 and err.strip().count("\n") == 0 and "not found" in err and str(missing) in err
