"""What the gateway says: one message per error, and logs that describe what really happens."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from gateway_support import API_KEY, running_stack


def _login_token(simulator_url: str, email: str, password: str) -> str:
    answer = httpx.post(f"{simulator_url}/api/v0/users/login", timeout=10,
                        json={"email": email, "password": password, "device_id": "x", "os": "android"})
    return str(answer.json()["data"]["biz_data"]["user"]["token"])


def test_an_unknown_model_gets_the_same_message_from_chat_and_from_retrieve() -> None:
    with running_stack(accounts=1) as stack:
        auth = {"authorization": f"Bearer {API_KEY}"}
        chat = httpx.post(f"{stack.base_url}/v1/chat/completions", headers=auth, timeout=30,
                          json={"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]})
        retrieve = httpx.get(f"{stack.base_url}/v1/models/gpt-17", headers=auth, timeout=30)
    assert chat.status_code == retrieve.status_code == 404
    assert chat.json() == retrieve.json()
    assert chat.json()["error"]["code"] == "model_not_found"


def test_a_failed_passthrough_token_does_not_claim_to_try_another_account(caplog: pytest.LogCaptureFixture) -> None:
    with running_stack(accounts=1, token_passthrough=True) as stack:
        user = stack.sim_config.users[0]
        token = _login_token(stack.simulator.base_url, user.email or "", user.password)
        with caplog.at_level(logging.INFO, logger="deepseek2api.chat.runner"), pytest.raises(openai.APIStatusError):
            stack.openai(api_key=token).chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "[sim:fault=busy] hello"}])
    runner_lines = [r.getMessage() for r in caplog.records if r.name == "deepseek2api.chat.runner"]
    assert any("account passthrough failed before output (busy)" in line for line in runner_lines), runner_lines
    assert not any("another account" in line or "retrying on" in line for line in runner_lines), runner_lines


def test_a_failover_in_the_pool_names_the_account_it_retries_on(caplog: pytest.LogCaptureFixture) -> None:
    with running_stack(accounts=2) as stack:
        stack.sim_fault(stack.sim_config.users[0].email or "", "busy")
        with caplog.at_level(logging.INFO, logger="deepseek2api.chat.runner"):
            for _ in range(3):  # the least recently used account goes first: the faulty one within two
                reply = stack.openai().chat.completions.create(
                    model="deepseek-chat", messages=[{"role": "user", "content": "hello"}])
                assert reply.choices[0].message.content
    runner_lines = [r.getMessage() for r in caplog.records if r.name == "deepseek2api.chat.runner"]
    assert any("failed before output (busy)" in line for line in runner_lines), runner_lines
    assert any("retrying on account" in line for line in runner_lines), runner_lines
