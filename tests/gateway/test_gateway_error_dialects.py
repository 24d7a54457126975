"""Every error answer of the real gateway goes through one rendering (api/dialect.py): the route's
dialect picks the envelope and status, and the answer always carries the request id — on the chat
surfaces, the Anthropic routes, the admin API and a `/metrics` that requires a key alike."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from deepseek2api.api.errors import shutting_down
from deepseek2api.api.middleware import GatewayMiddleware
from deepseek2api.server import DIALECTS
from gateway_support import running_stack


def _request_id(response: httpx.Response) -> str:
    request_id = response.headers.get("x-request-id", "")
    assert request_id.startswith("req_"), response.headers
    return request_id


def test_every_error_answer_carries_the_request_id_in_its_routes_dialect() -> None:
    with running_stack(accounts=1, metrics={"require_key": True}) as stack, \
            httpx.Client(base_url=stack.base_url, timeout=10) as http:
        wrong = {"authorization": "Bearer wrong-key"}
        openai = http.post("/v1/chat/completions", headers=wrong, json={"model": "deepseek-chat", "messages": []})
        assert openai.status_code == 401
        assert set(openai.json()["error"]) == {"message", "type", "param", "code"}
        _request_id(openai)

        anthropic = http.post("/v1/messages", headers={"x-api-key": "wrong-key"},
                              json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []})
        assert anthropic.status_code == 401
        body = anthropic.json()
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
        assert body["request_id"] == anthropic.headers["request-id"] == _request_id(anthropic)

        gemini = http.post("/v1beta/models/gemini-2.5-flash:generateContent", headers={"x-goog-api-key": "wrong"},
                           json={"contents": [{"parts": [{"text": "hi"}]}]})
        assert gemini.status_code == 401 and gemini.json()["error"]["status"] == "UNAUTHENTICATED"
        _request_id(gemini)

        admin = http.get("/admin/api/summary", headers=wrong)
        assert admin.status_code == 401 and admin.headers["cache-control"] == "no-store"
        assert admin.json()["error"]["code"]
        _request_id(admin)

        metrics = http.get("/metrics")
        assert metrics.status_code == 401 and "error" in metrics.json()
        _request_id(metrics)

        unknown = http.get("/v1/nothing-here")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_route"
        _request_id(unknown)


def _cut_by_shutdown(path: str, content_type: bytes) -> list[bytes]:
    """The body parts a stream on `path` sends when the server's shutdown grace cancels it mid-answer."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        raise asyncio.CancelledError  # as when the grace is over (api/middleware.py)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = GatewayMiddleware(app, max_body_bytes=1000, cors_origins=[], dialects=DIALECTS)
    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}
    asyncio.run(middleware(scope, receive, send))
    return [m["body"] for m in sent if m["type"] == "http.response.body"]


@pytest.mark.parametrize(("path", "content_type", "prefix", "expected"), [
    # Ollama: one more NDJSON line, `{"error": message}` (what its clients raise as ResponseError)
    ("/api/chat", b"application/x-ndjson", b"", {"error": shutting_down().message}),
    # Gemini `?alt=sse`: a `data:` chunk in Google's envelope
    ("/v1beta/models/deepseek-chat:streamGenerateContent", b"text/event-stream; charset=utf-8", b"data: ",
     {"error": {"code": 503, "message": shutting_down().message, "status": "UNAVAILABLE",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVER_SHUTTING_DOWN",
                             "domain": "deepseek2api"},
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]}}),
    ("/v1/chat/completions", b"text/event-stream; charset=utf-8", b"data: ",
     {"error": {"message": shutting_down().message, "type": "server_error", "param": None,
                "code": "server_shutting_down"}}),
])
def test_the_shutdown_trailer_ends_a_stream_in_its_routes_dialect(path: str, content_type: bytes, prefix: bytes,
                                                                  expected: dict[str, Any]) -> None:
    parts = _cut_by_shutdown(path, content_type)
    assert parts[0] == b"first\n" and len(parts) == 2
    assert parts[1].startswith(prefix) and parts[1].endswith(b"\n")  # a complete line / event
    assert json.loads(parts[1].removeprefix(prefix)) == expected
