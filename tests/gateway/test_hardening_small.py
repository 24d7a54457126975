"""Small hardening: no Host-reflecting redirect, HEAD /health, no proxy host in client errors, a slow
salted credentials fingerprint, and short secrets redacted as whole words."""

from __future__ import annotations

import hashlib
import logging
import socket

import httpx
import openai
import pytest

from deepseek2api.background import BackgroundServer
from deepseek2api.logs import MASK, SecretRedactor
from deepseek2api.pool.record import (
    FINGERPRINT_COST,
    credentials_fingerprint,
    credentials_match,
)
from deepseek2api.server import create_app
from deepseek2api.settings import AccountSettings
from deepseek2api.simulator import SimulatorConfig
from deepseek2api.simulator import create_app as create_simulator
from gateway_support import (
    API_KEY,
    TEST_DIFFICULTY,
    Stack,
    gateway_settings,
    sim_users,
)

STACK_ACCOUNTS = 1  # for the shared `stack` fixture (tests/conftest.py)


def test_a_trailing_slash_is_not_redirected_to_the_host_the_client_named(stack: Stack) -> None:
    response = httpx.get(f"{stack.base_url}/health/", headers={"host": "evil.example"}, follow_redirects=False)
    assert not response.is_redirect, response.headers
    assert "evil.example" not in response.headers.get("location", "")
    assert response.status_code == 404
    v1 = httpx.get(f"{stack.base_url}/v1/models/", headers={"host": "evil.example"}, follow_redirects=False)
    assert not v1.is_redirect and "evil.example" not in v1.text


@pytest.mark.parametrize("path", ["/health", "/healthz", "/ready"])
def test_head_on_the_health_routes_answers_200_without_a_body(stack: Stack, path: str) -> None:
    response = httpx.head(f"{stack.base_url}{path}")
    assert response.status_code == 200
    assert response.content == b""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_client_error_does_not_name_the_proxy_but_the_log_does(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    user = sim_users(1)[0]
    accounts = [{"email": user.email, "password": user.password, "proxy": f"http://127.0.0.1:{port}"}]
    caplog.set_level(logging.INFO)
    sim_config = SimulatorConfig(users=[user], difficulty=TEST_DIFFICULTY)
    with BackgroundServer(create_simulator(sim_config)) as simulator:
        settings = gateway_settings(simulator.base_url, [user], accounts=accounts, pool={"max_failover": 1})
        with BackgroundServer(create_app(settings)) as gateway:
            client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=API_KEY, max_retries=0)
            with pytest.raises(openai.APIStatusError) as failed:
                client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "hi"}])
    error = failed.value
    assert error.code in ("upstream_unreachable", "upstream_auth_failed"), error.message
    assert str(port) not in error.message and "127.0.0.1" not in error.message and "proxy" not in error.message
    assert any(str(port) in record.getMessage() for record in caplog.records)


def test_the_credentials_fingerprint_is_salted_and_slow() -> None:
    account = AccountSettings(email="a@example.com", password="abc")
    first, second = credentials_fingerprint(account), credentials_fingerprint(account)
    assert first != second  # a fresh random salt each time: no precomputed table applies
    assert credentials_match(first, account) and credentials_match(second, account)
    assert not credentials_match(first, AccountSettings(email="a@example.com", password="abd"))
    assert first.startswith("scrypt$") and FINGERPRINT_COST >= 2**14 and f"${FINGERPRINT_COST}$" in first
    material = f"{account.id}\0a@example.com\0\0abc\0"
    old = hashlib.sha256(b"deepseek2api-credentials\0" + material.encode()).hexdigest()
    assert old[:16] not in first and old not in first
    assert not credentials_match(old[:16], account)  # the old format: a fresh login, nothing worse
    salt = bytes(16)
    pbkdf2 = hashlib.pbkdf2_hmac("sha256", b"deepseek2api-credentials\0" + material.encode(), salt, 20_000)
    assert not credentials_match(f"pbkdf2-sha256$20000${salt.hex()}${pbkdf2.hex()}", account)  # 0.2.0's format


def test_secrets_shorter_than_four_characters_are_masked_as_whole_words() -> None:
    redactor = SecretRedactor()
    redactor.add("xy")
    redactor.add("abc")
    assert redactor.redact("login with password abc failed") == f"login with password {MASK} failed"
    assert redactor.redact("token=xy;") == f"token={MASK};"
    assert redactor.redact("abcdef and galaxy stay") == "abcdef and galaxy stay"
