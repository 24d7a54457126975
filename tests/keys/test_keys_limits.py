"""Keys for people: each rule refused on each surface with the surface's 403/429 and headers.

The real stack (simulator ◄── gateway ◄── the openai / anthropic SDKs and raw httpx): a model outside a
key's list is the surface's 403 naming the allowed models; `rpm`, `max_streams` and `tokens_per_day` are
429s with Retry-After and the rate-limit headers (OpenAI's x-ratelimit-*, Anthropic's anthropic-ratelimit-*).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway_support import Stack, running_stack

KEYS: list[dict[str, Any]] = [
    {"name": "test", "key": "sk-test-key-0123456789"},
    {"name": "chat-only", "key": "sk-chat-only-000000000", "models": ["deepseek-chat", "claude-*"]},
    {"name": "rpm2", "key": "sk-rpm2-00000000000000", "rpm": 2},
    {"name": "one-stream", "key": "sk-one-stream-00000000", "max_streams": 1},
    {"name": "tiny", "key": "sk-tiny-00000000000000", "tokens_per_day": 1},
    {"name": "off", "key": "sk-off-000000000000000", "enabled": False},
    {"name": "old", "key": "sk-old-000000000000000", "expires_at": "2020-01-01T00:00:00Z"},
]
SURFACES = ("openai", "anthropic", "responses")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=2, keys=KEYS, sim={"tokens_per_second": 200.0},
                       ollama={"enabled": True, "require_key": True}) as s:
        yield s


def _post(stack: Stack, surface: str, key: str, model: str = "deepseek-chat", stream: bool = False) -> httpx.Response:
    """One small request on `surface`, raw, so the status, headers and body are what the client got."""
    headers = {"authorization": f"Bearer {key}"}
    if surface == "openai":
        path, body = "/v1/chat/completions", {"model": model, "stream": stream,
                                              "messages": [{"role": "user", "content": "hi"}]}
    elif surface == "anthropic":
        path, body = "/v1/messages", {"model": model, "max_tokens": 64, "stream": stream,
                                      "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    else:
        path, body = "/v1/responses", {"model": model, "input": "hi", "stream": stream}
    return httpx.post(stack.base_url + path, json=body, headers=headers, timeout=60)


def _error(surface: str, response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if surface == "anthropic":
        assert body["type"] == "error"
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_model_outside_the_list_is_the_surfaces_403_naming_the_allowed_models(
        stack: Stack, surface: str, stream: bool) -> None:
    response = _post(stack, surface, "sk-chat-only-000000000", "deepseek-reasoner", stream)
    assert response.status_code == 403
    error = _error(surface, response)
    assert "deepseek-chat" in error["message"] and "claude-*" in error["message"]
    assert error["type"] == "permission_error"
    if surface != "anthropic":
        assert error["code"] == "model_not_allowed" and error["param"] == "model"
    allowed = _post(stack, surface, "sk-chat-only-000000000", "deepseek-chat", stream)
    assert allowed.status_code == 200


def test_the_sdks_see_a_permission_error(stack: Stack) -> None:
    client = stack.openai(api_key="sk-chat-only-000000000")
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": "hi"}])
    assert "deepseek-chat" in str(caught.value)
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="deepseek-reasoner", input="hi")
    claude = anthropic.Anthropic(base_url=stack.base_url, api_key="sk-chat-only-000000000", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        claude.messages.create(model="deepseek-reasoner", max_tokens=64, messages=[{"role": "user", "content": "x"}])
    # an alias of an allowed model is allowed (deepseek-v3 is deepseek-chat)
    assert client.chat.completions.create(model="deepseek-v3", messages=[{"role": "user", "content": "hi"}]).choices


def _assert_rate_headers(response: httpx.Response, limit: int, kind: str = "requests") -> None:
    headers = response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers[f"x-ratelimit-limit-{kind}"] == str(limit)
    assert headers[f"x-ratelimit-remaining-{kind}"] == "0"
    assert headers[f"x-ratelimit-reset-{kind}"].endswith("s")
    assert headers[f"anthropic-ratelimit-{kind}-limit"] == str(limit)
    assert headers[f"anthropic-ratelimit-{kind}-remaining"] == "0"
    assert headers[f"anthropic-ratelimit-{kind}-reset"].endswith("Z")


def test_rpm_is_a_429_with_retry_after_and_rate_limit_headers_on_every_surface(stack: Stack) -> None:
    # the window is shared by the surfaces: two requests pass, every further one is refused
    assert _post(stack, "openai", "sk-rpm2-00000000000000").status_code == 200
    assert _post(stack, "responses", "sk-rpm2-00000000000000").status_code == 200
    for surface in SURFACES:
        for stream in (False, True):
            response = _post(stack, surface, "sk-rpm2-00000000000000", stream=stream)
            assert response.status_code == 429, (surface, stream, response.text)
            error = _error(surface, response)
            assert error["type"] == "rate_limit_error"
            assert "2 requests per minute" in error["message"]
            if surface != "anthropic":
                assert error["code"] == "key_rpm_exceeded"
            _assert_rate_headers(response, 2)
    with pytest.raises(openai.RateLimitError):
        stack.openai(api_key="sk-rpm2-00000000000000").chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(base_url=stack.base_url, api_key="sk-rpm2-00000000000000", max_retries=0).messages.create(
            model="deepseek-chat", max_tokens=64, messages=[{"role": "user", "content": "x"}])


def test_max_streams_refuses_a_second_concurrent_request(stack: Stack) -> None:
    stack.sim_set(tokens_per_second=20.0)  # the first stream stays open a while
    try:
        started = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with httpx.stream("POST", stack.base_url + "/v1/chat/completions", timeout=60,
                              headers={"authorization": "Bearer sk-one-stream-00000000"},
                              json={"model": "deepseek-chat", "stream": True,
                                    "messages": [{"role": "user", "content": "tell me a long story"}]}) as response:
                assert response.status_code == 200
                for _ in response.iter_lines():
                    started.set()
                    if release.is_set():
                        break

        thread = threading.Thread(target=hold)
        thread.start()
        assert started.wait(30)
        for surface in SURFACES:
            response = _post(stack, surface, "sk-one-stream-00000000")
            assert response.status_code == 429, response.text
            assert "already runs 1" in _error(surface, response)["message"]
            _assert_rate_headers(response, 1)
        release.set()
        thread.join(60)
        stack.wait_idle()
        assert _post(stack, "openai", "sk-one-stream-00000000").status_code == 200  # the slot came back
    finally:
        stack.sim_set(tokens_per_second=200.0)


def test_tokens_per_day_is_a_429_once_todays_tokens_are_used(stack: Stack) -> None:
    first = _post(stack, "openai", "sk-tiny-00000000000000")
    assert first.status_code == 200  # under the limit when it started
    stack.wait_idle()
    for surface in SURFACES:
        response = _post(stack, surface, "sk-tiny-00000000000000")
        assert response.status_code == 429
        assert "tokens for today" in _error(surface, response)["message"]
        _assert_rate_headers(response, 1, "tokens")
        assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("key, code", [("sk-off-000000000000000", "key_disabled"),
                                       ("sk-old-000000000000000", "key_expired")])
def test_a_disabled_or_expired_key_is_refused(stack: Stack, key: str, code: str) -> None:
    for surface in SURFACES:
        response = _post(stack, surface, key)
        assert response.status_code == 401
        if surface != "anthropic":
            assert _error(surface, response)["code"] == code


def test_a_key_without_rules_is_not_limited_and_refusals_take_no_account(stack: Stack) -> None:
    for _ in range(4):
        assert _post(stack, "openai", "sk-test-key-0123456789").status_code == 200
    before = stack.sim_stats()
    assert before["completions"] > 0
    _post(stack, "openai", "sk-chat-only-000000000", "deepseek-reasoner")
    assert stack.sim_stats().get("completions") == before.get("completions")


def test_the_gemini_and_ollama_surfaces_pass_the_same_gate(stack: Stack) -> None:
    """The checks sit where every turn passes (the runner), so surfaces added later enforce them too."""
    gemini = httpx.post(f"{stack.base_url}/v1beta/models/deepseek-reasoner:generateContent", timeout=60,
                        headers={"x-goog-api-key": "sk-chat-only-000000000"},
                        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert gemini.status_code == 403, gemini.text
    assert "deepseek-chat" in gemini.text
    ollama = httpx.post(f"{stack.base_url}/api/chat", timeout=60,
                        headers={"authorization": "Bearer sk-chat-only-000000000"},
                        json={"model": "deepseek-reasoner", "stream": False,
                              "messages": [{"role": "user", "content": "hi"}]})
    assert ollama.status_code == 403, ollama.text
    allowed = httpx.post(f"{stack.base_url}/v1beta/models/deepseek-chat:generateContent", timeout=60,
                         headers={"x-goog-api-key": "sk-chat-only-000000000"},
                         json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert allowed.status_code == 200, allowed.text
