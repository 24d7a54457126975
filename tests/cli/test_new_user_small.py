"""Small rough edges of the README walk and the probe: each one as a user met it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from deepseek2api.api.errors import from_upstream
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.pool.cluster.coordinator import down_reason
from gateway_support import API_KEY, Stack

REPO = Path(__file__).resolve().parents[2]


STACK_ACCOUNTS = 1  # for the shared `stack` fixture (tests/conftest.py)


def test_the_cut_stream_message_says_it_once() -> None:
    error = from_upstream(UpstreamError(ErrorKind.STREAM_CUT, "upstream stream ended before the reply finished"))
    assert error.message == "DeepSeek's stream ended before the reply finished"
    other = from_upstream(UpstreamError(ErrorKind.PROTOCOL, "unexpected frame 7"))
    assert other.message.endswith(": unexpected frame 7")


def test_models_with_a_trailing_slash_is_the_list_and_favicon_ico_exists(stack: Stack) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    listed = httpx.get(f"{stack.base_url}/v1/models/", headers=headers, timeout=30)
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert httpx.get(f"{stack.base_url}/v1/models/deepseek-chat", headers=headers, timeout=30).status_code == 200
    icon = httpx.get(f"{stack.base_url}/favicon.ico", timeout=30)
    assert icon.status_code == 200 and icon.content.lstrip().startswith(b"<")


def test_packaging_has_a_license_file_and_a_setuptools_floor_that_reads_an_spdx_license() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    floor = next(r for r in project["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(floor.split(">=")[1].split(".")[0]) >= 77
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "DeepSeek2API contributors" in text


def test_a_refused_redis_password_is_not_called_unreachable() -> None:
    assert "authentication failed" in down_reason(AuthenticationError("invalid password"))
    assert "authentication failed" in down_reason(RedisConnectionError("WRONGPASS invalid username-password pair"))
    assert down_reason(RedisConnectionError("Connection refused")) == "Redis unreachable (ConnectionError)"


def test_metrics_label_the_resolved_model_and_the_surface(stack: Stack) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=60) as http:
        assert http.post("/v1/messages", json={"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 200
        assert http.post("/v1/chat/completions", json={"model": "DeepSeek-R1", "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 200
        text = http.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("deepseek2api_requests_total{")]
    assert any('gen_ai_request_model="deepseek-reasoner"' in line and 'surface="anthropic"' in line for line in lines)
    assert any('gen_ai_request_model="deepseek-reasoner"' in line and 'surface="openai"' in line for line in lines)
    assert not any('gen_ai_request_model="other"' in line for line in lines)
