"""Secrets stay secret (issue #6 item 6).

The real CLI process at DEBUG log level goes through logins, re-logins, failed logins, upstream
failures, streams and token passthrough; its whole stderr must not contain a password, a DeepSeek
token (collected from the simulator as it issues them), an API key or an `x-ds-pow-response` value.
Also: every configured key is compared in constant time, the CLI warns about a config file other
users can read, and token passthrough is off unless configured.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import signal
from pathlib import Path

import httpx
import openai
import pytest

from deepseek2api.api import auth as auth_module
from deepseek2api.api.auth import Authenticator
from deepseek2api.api.errors import ApiError
from deepseek2api.simulator import SimulatorConfig, SimulatorServer, SimUser
from gateway_support import API_KEY, TEST_DIFFICULTY, running_stack, sim_users
from reliability_support import GatewayProcess, SecretCollector, config_dict, expected_reply, run_cli, write_config

pytestmark = pytest.mark.slow  # gateway processes and the CLI: ~30 s


def _login_token(simulator_url: str, email: str, password: str) -> str:
    """A real DeepSeek(-simulator) token, as a passthrough user would have it."""
    answer = httpx.post(f"{simulator_url}/api/v0/users/login", timeout=10,
                        json={"email": email, "password": password, "device_id": "x", "os": "android"})
    return str(answer.json()["data"]["biz_data"]["user"]["token"])


def test_debug_log_of_a_busy_gateway_holds_no_secret(tmp_path: Path) -> None:
    users = [SimUser(email=f"secret{i}@sim.test", password=f"pw-{secrets.token_hex(12)}") for i in (1, 2)]
    wrong_password = f"pw-{secrets.token_hex(12)}"  # configured for an account that exists with another one
    users.append(SimUser(email="wrongpw@sim.test", password=f"pw-{secrets.token_hex(12)}"))
    keys = [f"sk-{secrets.token_hex(16)}", f"sk-{secrets.token_hex(16)}"]
    bogus_bearer = f"bogus-{secrets.token_hex(16)}"
    sim = SimulatorServer(SimulatorConfig(users=users, difficulty=TEST_DIFFICULTY, seed=7, retry_after=0.2))
    collector = SecretCollector(sim.app)
    with sim:
        accounts = [{"email": "wrongpw@sim.test", "password": wrong_password}]  # tried first, fails to log in
        accounts += [{"email": u.email, "password": u.password} for u in users[:2]]
        data = config_dict(sim.base_url, users, keys=[keys[0], {"name": "second", "key": keys[1]}],
                           accounts=accounts, token_passthrough=True,
                           upstream={"idle_timeout": 0.5}, pool={"cooldown_rate_limited": 0.2},
                           state={"backend": "sqlite", "path": str(tmp_path / "state.db")})
        config = write_config(tmp_path / "config.json", data)
        with GatewayProcess(config, log_level="debug") as gateway:
            v1 = f"{gateway.base_url}/v1"
            first = openai.OpenAI(base_url=v1, api_key=keys[0], max_retries=0, timeout=30)
            second = openai.OpenAI(base_url=v1, api_key=keys[1], max_retries=0, timeout=30)
            ask = [{"role": "user", "content": "hello secrets"}]
            # Plain requests, a stream with reasoning, a second key.
            assert first.chat.completions.create(model="deepseek-chat", messages=ask).choices[0].message.content \
                == expected_reply("hello secrets", thinking=False)[0]
            chunks = list(second.chat.completions.create(model="deepseek-reasoner", messages=ask, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) \
                == expected_reply("hello secrets", thinking=True)[0]
            # A token that expires: transparent re-login.
            for user in users[:2]:
                httpx.post(f"{sim.base_url}/_sim/faults", json={"account": user.email, "fault": "token_expired"})
            for i in range(3):
                first.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": f"r{i}"}])
            # Upstream failures of every kind.
            for fault in ("waf", "rate_limit", "cut", "busy", "pow_rejected"):
                with pytest.raises(openai.APIError):
                    list(first.chat.completions.create(
                        model="deepseek-chat", stream=True,
                        messages=[{"role": "user", "content": f"fail [sim:fault={fault}] [sim:words=30]"}]))
            with pytest.raises(openai.APIStatusError):
                first.chat.completions.create(model="deepseek-chat",
                                              messages=[{"role": "user", "content": "stall [sim:stall=1.5]"}])
            # Token passthrough: a real token works as the key, a bogus one is refused.
            token = _login_token(sim.base_url, users[0].email or "", users[0].password)
            passthrough = openai.OpenAI(base_url=v1, api_key=token, max_retries=0, timeout=30)
            assert passthrough.chat.completions.create(model="deepseek-chat", messages=ask).choices[0].message.content
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=v1, api_key=bogus_bearer, max_retries=0).chat.completions.create(
                    model="deepseek-chat", messages=ask)
            # Other routes and the other header.
            assert httpx.get(f"{gateway.base_url}/admin/status",
                             headers={"authorization": f"Bearer {keys[0]}"}).status_code == 200
            assert httpx.get(f"{v1}/models", headers={"x-api-key": keys[1]}).status_code == 200
            assert httpx.get(f"{gateway.base_url}/admin/status",
                             headers={"authorization": f"Bearer {keys[0]}x"}).status_code == 401
            gateway.signal(signal.SIGTERM)
            assert gateway.wait(20) == 0
            log = gateway.stderr()

    assert "DEBUG" in log and "logged in" in log  # the log really was verbose
    assert "wrongpw@sim.test" in log  # the failed login was reported (by account id, not password)
    assert len(collector.tokens) >= 4 and len(collector.pow_headers) >= 10
    named = {"password": [u.password for u in users] + [wrong_password], "API key": keys + [f"{keys[0]}x"],
             "DeepSeek token": collector.tokens + [bogus_bearer], "x-ds-pow-response": collector.pow_headers}
    for kind, values in named.items():
        for value in values:
            assert value not in log, f"a {kind} appears in the log"
            if kind in ("API key", "DeepSeek token"):
                assert value[:16] not in log and value[-16:] not in log, f"part of a {kind} appears in the log"


# ---------------------------------------------------------------------------------- constant time


def test_every_configured_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [("a", "sk-first-key"), ("b", "sk-second-key-longer"), ("c", "k3")]
    authenticator = Authenticator(keys)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(x: bytes, y: bytes) -> bool:
        compared.append((x, y))
        return real(x, y)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", counting)
    digests = {hashlib.sha256(k.encode()).digest() for _, k in keys}
    for presented, name in [("sk-first-key", "a"), ("sk-second-key-longer", "b"), ("k3", "c"), ("nope", None),
                            ("sk-first-ke", None), ("x" * 5000, None)]:
        compared.clear()
        if name is None:
            with pytest.raises(ApiError) as refused:
                authenticator.authenticate({"authorization": f"Bearer {presented}"})
            assert refused.value.status == 401
        else:
            assert authenticator.authenticate({"authorization": f"Bearer {presented}"}).key_name == name
        # Every key, every time (no early exit), on fixed-length digests (no length leak).
        assert len(compared) == len(keys), presented
        assert {expected for _, expected in compared} == digests
        assert all(len(x) == len(y) == 32 for x, y in compared)


# ---------------------------------------------------------------------------------- config file mode


def test_cli_warns_about_a_config_file_others_can_read(tmp_path: Path) -> None:
    data = config_dict("http://127.0.0.1:9", sim_users(1))
    shared = write_config(tmp_path / "shared.json", data, mode=0o644)
    private = write_config(tmp_path / "private.json", data, mode=0o600)
    checked = run_cli("check", "--no-login", "--config", str(shared))
    assert checked.returncode == 0 and "readable by other users" in checked.stderr and "chmod 600" in checked.stderr
    checked = run_cli("check", "--no-login", "--config", str(private))
    assert checked.returncode == 0 and "readable by other users" not in checked.stderr
    with GatewayProcess(shared) as gateway:  # `serve` says it too, and still serves
        assert httpx.get(f"{gateway.base_url}/health").status_code == 200
        log = gateway.stderr()
    assert "readable by other users" in log and "chmod 600" in log


# ---------------------------------------------------------------------------------- passthrough


def test_token_passthrough_is_off_by_default() -> None:
    with running_stack(accounts=1) as stack:
        user = stack.sim_config.users[0]
        token = _login_token(stack.simulator.base_url, user.email or "", user.password)
        for bearer in (token, "some-unknown-bearer"):
            with pytest.raises(openai.AuthenticationError) as refused:
                stack.openai(api_key=bearer).chat.completions.create(
                    model="deepseek-chat", messages=[{"role": "user", "content": "let me in"}])
            assert refused.value.status_code == 401
            assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]


def test_token_passthrough_on_uses_a_real_token_as_the_key() -> None:
    with running_stack(accounts=1, token_passthrough=True) as stack:
        user = stack.sim_config.users[0]
        token = _login_token(stack.simulator.base_url, user.email or "", user.password)
        logins = stack.sim_stats()["logins"]
        reply = stack.openai(api_key=token).chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "my own token"}])
        assert reply.choices[0].message.content == expected_reply("my own token", thinking=False)[0]
        assert stack.sim_stats()["logins"] == logins  # the pool's accounts were not needed
        assert stack.gateway.pool.status()[0]["in_use"] == 0
        with pytest.raises(openai.AuthenticationError):  # an unknown bearer is tried upstream and refused
            stack.openai(api_key="not-a-deepseek-token").chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "x"}])
        # The configured key still means the pool.
        assert stack.openai(api_key=API_KEY).chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "pool"}]).choices[0].message.content
