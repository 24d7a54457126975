"""Conformance (docs/clients.md): on raw bytes: SSE framing, CORS preflight, base URL forms, keep-alives."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from conformance_support import (
    ConformanceStack,
    OpenAISchemas,
    conformance_stack,
    data_events,
    keepalive_count,
    openai_schemas,
    parse_sse,
    user,
)
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY

__all__ = ["openai_schemas"]

KEEPALIVE = 0.2  # server.keepalive_interval for this module (the default is 5 s)


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    with conformance_stack(openai_schemas, accounts=2, server={"keepalive_interval": KEEPALIVE}) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


def raw_stream(stack: ConformanceStack, body: dict[str, object]) -> tuple[httpx.Response, bytes]:
    """POST and read the response exactly as the bytes arrived (no decoding, no SSE parsing)."""
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            raw = b"".join(response.iter_raw())
    return response, raw


def test_o18_raw_stream_framing(stack: ConformanceStack) -> None:
    prompt = "O18 raw framing [sim:stall=1] [sim:words=30]"
    response, raw = raw_stream(stack, {"model": "deepseek-reasoner", "stream": True, "messages": user(prompt),
                                       "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in response.headers  # compression would buffer events
    assert raw.endswith(b"data: [DONE]\n\n")
    blocks = raw[:-2].split(b"\n\n")
    for block in blocks:
        assert b"\n" not in block and b"\r" not in block, block  # one line per event, blank line between
        assert block.startswith(b"data: ") or block.startswith(b":"), block
    comments = [b for b in blocks if b.startswith(b":")]
    assert len(comments) >= 2, "the stalled upstream should have produced keep-alive comments"
    payloads = [json.loads(b[len(b"data: "):]) for b in blocks if b.startswith(b"data: {")]
    reply = reply_for(prompt, thinking=True, search=False)
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads if p["choices"]) == reply.content
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] > 0


def test_o18_stream_request_is_never_answered_with_json(stack: ConformanceStack) -> None:
    """Success is always SSE; only an error before the first byte may be a JSON body (with an error status)."""
    response, raw = raw_stream(stack, {"model": "deepseek-chat", "stream": True, "messages": user("sse please")})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert data_events(raw)[-1] == "[DONE]"
    response, raw = raw_stream(stack, {"model": "gpt-17", "stream": True, "messages": user("no such model")})
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")
    assert set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions", "/v1/models"])
def test_o18_cors_preflight(stack: ConformanceStack, path: str) -> None:
    origin = "http://localhost:3000"
    response = httpx.options(f"{stack.base_url}{path}", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type"}, timeout=10)
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in ("*", origin)
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed  # listed explicitly: `*` does not cover Authorization
    methods = {m.strip().upper() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST"} <= methods


def test_o18_cors_headers_on_the_actual_request(stack: ConformanceStack) -> None:
    origin = "http://localhost:3000"
    response = httpx.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                          headers={"origin": origin, "authorization": f"Bearer {API_KEY}"},
                          json={"model": "deepseek-chat", "messages": user("from a browser")})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", origin)
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after", "x-should-retry"} <= exposed  # what browser SDKs read


@pytest.mark.parametrize("suffix", ["/v1", "", "/v1/"])
def test_base_url_with_and_without_v1(stack: ConformanceStack, suffix: str) -> None:
    client = openai.OpenAI(base_url=f"{stack.base_url}{suffix}", api_key=API_KEY, max_retries=0,
                           _strict_response_validation=True)
    prompt = f"base url '{suffix}'"
    completion = client.chat.completions.create(model="deepseek-chat", messages=user(prompt))
    assert completion.choices[0].message.content == reply_for(prompt, thinking=False, search=False).content
    assert "deepseek-chat" in {m.id for m in client.models.list()}
    assert client.models.retrieve("deepseek-chat").id == "deepseek-chat"
    chunks = list(client.chat.completions.create(model="deepseek-chat", messages=user(prompt), stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content


def test_o19_keepalives_while_upstream_is_silent(stack: ConformanceStack) -> None:
    """A stalled upstream (the simulator's stall fault) gets `: keep-alive` comments; the SDK still succeeds."""
    prompt = "O19 slow upstream [sim:stall=1.5]"
    mark = stack.wire.mark()
    client = stack.openai(_strict_response_validation=True)
    chunks = list(client.chat.completions.create(model="deepseek-reasoner", messages=user(prompt), stream=True))
    reply = reply_for(prompt, thinking=True, search=False)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.content
    [exchange] = stack.wire.chat_since(mark)
    events = parse_sse(bytes(exchange.body))
    assert keepalive_count(bytes(exchange.body)) >= 2
    first_data = next(i for i, e in enumerate(events) if e.kind == "data")
    assert first_data >= 2, "the comments must arrive while the upstream is silent, before the first chunk"
