"""Every error answer of the real gateway goes through one rendering (api/dialect.py): the route's
dialect picks the envelope and status, and the answer always carries the request id — on the chat
surfaces, the Anthropic routes, the admin API and a `/metrics` that requires a key alike."""

from __future__ import annotations

import httpx

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
