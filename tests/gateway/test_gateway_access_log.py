"""The access log: one line per request whatever its status, nothing a client sends can
split a line or forge a field, and request ids are the gateway's own."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from deepseek2api.logs import log_value
from gateway_support import API_KEY, Stack, running_stack
from test_gateway_stream_admission import access_lines

AUTH = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=1, server={"max_body_bytes": 4096}) as running:
        yield running


@pytest.fixture(scope="module")
def lines() -> Iterator[list[str]]:
    """Every access line of the module (a line is written once the response is out: it may trail the client)."""
    with access_lines() as captured:
        yield captured


def _line(lines: list[str], request_id: str) -> str:
    """The request's line (written once the response is out, so it may trail the client a little)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(line.startswith(f"request_id={request_id} ") for line in lines):
        time.sleep(0.01)
    time.sleep(0.05)  # a second line, if one were written, would follow at once
    found = [line for line in lines if line.startswith(f"request_id={request_id} ")]
    assert len(found) == 1, (request_id, lines)  # exactly one line: none missing, none doubled
    return found[0]


def _chat(stack: Stack, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{stack.base_url}/v1/chat/completions", json=body, headers=headers if headers is not None
                      else AUTH, timeout=30)


@pytest.mark.parametrize("model", ["deepseek-chat\n", "deepseek-chat\r\n", "deepseek-chat\u2028",
                                   "deepseek-chat\u2029", " deepseek-chat\x0b\x0c\x1c\x85"])
def test_a_model_name_with_line_breaks_stays_on_one_escaped_line(stack: Stack, lines: list[str], model: str) -> None:
    response = _chat(stack, {"model": model, "messages": [{"role": "user", "content": "hi"}]})
    stack.wait_idle()
    assert response.status_code == 200
    line = _line(lines, response.headers["x-request-id"])
    assert line.splitlines() == [line]
    assert not any(char in line for char in "\n\r\u2028\u2029\x0b\x0c\x1c\x85")
    assert f"model={log_value(model)} " in line and " status=200 " in line


def test_a_forged_field_in_a_model_name_is_escaped(stack: Stack, lines: list[str]) -> None:
    response = _chat(stack, {"model": "deepseek-chat status=500 key=admin",
                             "messages": [{"role": "user", "content": "hi"}]})
    line = _line(lines, response.headers["x-request-id"])
    assert response.status_code == 404 and " status=404 " in line
    assert " status=500" not in line and " key=admin" not in line


def test_request_ids_are_the_gateways_own_and_the_clients_id_is_kept_beside(stack: Stack, lines: list[str]) -> None:
    first = httpx.get(f"{stack.base_url}/v1/models", headers={**AUTH, "x-request-id": "client-abc.1"})
    second = httpx.get(f"{stack.base_url}/v1/models", headers={**AUTH, "x-request-id": "client-abc.1"})
    taken = httpx.get(f"{stack.base_url}/v1/models", headers={**AUTH, "x-request-id": first.headers["x-request-id"]})
    ids = [r.headers["x-request-id"] for r in (first, second, taken)]
    assert len(set(ids)) == 3 and all(i.startswith("req_") for i in ids)  # a client cannot repeat an id
    assert first.headers["x-client-request-id"] == "client-abc.1"
    assert "client_request_id=client-abc.1 " in _line(lines, ids[0])
    assert "key=test " in _line(lines, ids[0])


def test_an_unsafe_client_request_id_is_escaped_and_not_echoed(stack: Stack, lines: list[str]) -> None:
    response = httpx.get(f"{stack.base_url}/v1/models",
                         headers={**AUTH, "x-request-id": "evil\tstatus=200 key=x\u00e9".encode("latin-1")})
    assert "x-client-request-id" not in response.headers
    line = _line(lines, response.headers["x-request-id"])
    assert "client_request_id=evil\\tstatus=200\\x20key=x\u00e9 " in line


def test_every_refused_request_is_logged_with_its_status_and_never_the_key(stack: Stack, lines: list[str]) -> None:
    messages = [{"role": "user", "content": "x"}]
    cases = [
        (_chat(stack, {"model": "deepseek-chat", "messages": messages},
               {"authorization": "Bearer guess-0123456789"}), 401, "key=unknown ", "invalid_api_key"),
        (_chat(stack, {"model": "deepseek-chat", "messages": messages}, {}), 401, "key=unknown ", None),
        (httpx.post(f"{stack.base_url}/v1/chat/completions", content=b"{nope", headers=AUTH), 400, "key=test ",
         "invalid_json"),
        (_chat(stack, {"model": "gpt-17", "messages": messages}), 404, "key=test ", "model_not_found"),
        (httpx.get(f"{stack.base_url}/v1/nothing-here", headers=AUTH), 404, None, "unknown_route"),
        (httpx.post(f"{stack.base_url}/v1/chat/completions", content=b"{" + b" " * 5000 + b"}", headers=AUTH),
         413, None, "request_too_large"),
    ]
    for response, status, key, code in cases:
        assert response.status_code == status
        line = _line(lines, response.headers["x-request-id"])
        assert f" status={status} " in line
        if key:
            assert key in line
        if code:
            assert f"error={code} " in line
        assert "guess-0123456789" not in line and API_KEY not in line


def test_a_served_chat_request_is_logged_once_with_its_turn(stack: Stack, lines: list[str]) -> None:
    response = _chat(stack, {"model": "deepseek-chat", "messages": [{"role": "user", "content": "once"}]})
    stack.wait_idle()
    line = _line(lines, response.headers["x-request-id"])
    assert " status=200 " in line and "account=user1@sim.test " in line and "prompt_tokens=" in line
    assert "method=POST path=/v1/chat/completions " in line


def test_health_probes_are_logged_at_debug_level(stack: Stack, lines: list[str]) -> None:
    logger = logging.getLogger("deepseek2api.access")
    quiet = httpx.get(f"{stack.base_url}/health")
    assert quiet.status_code == 200
    later = httpx.get(f"{stack.base_url}/v1/models", headers=AUTH)
    _line(lines, later.headers["x-request-id"])  # written by now, and so would the probe's be
    assert not any(line.startswith(f"request_id={quiet.headers['x-request-id']} ") for line in lines)
    logger.setLevel(logging.DEBUG)
    try:
        response = httpx.get(f"{stack.base_url}/health")
        assert " status=200 " in _line(lines, response.headers["x-request-id"])
    finally:
        logger.setLevel(logging.INFO)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "one"}]}),
    ("/v1/responses", {"model": "deepseek-chat", "input": "one"}),
])
def test_every_surface_writes_the_same_documented_line(stack: Stack, lines: list[str], path: str,
                                                        body: dict[str, object]) -> None:
    response = httpx.post(f"{stack.base_url}{path}", json=body, headers={**AUTH, "x-request-id": "mine.2"}, timeout=30)
    assert response.status_code == 200
    stack.wait_idle()
    line = _line(lines, response.headers["x-request-id"])
    assert "client_request_id=mine.2 key=test " in line and f"method=POST path={path} " in line
    assert " status=200 " in line and "account=user1@sim.test " in line and "prompt_tokens=" in line


def test_an_unknown_previous_response_id_is_logged_with_its_404(stack: Stack, lines: list[str]) -> None:
    response = httpx.post(f"{stack.base_url}/v1/responses", headers=AUTH, timeout=30,
                          json={"model": "deepseek-chat", "input": "next", "previous_response_id": "resp_unknown"})
    assert response.status_code == 404
    line = _line(lines, response.headers["x-request-id"])
    assert " status=404 " in line and "path=/v1/responses " in line and "key=test " in line


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/responses/resp_unknown"),
    ("DELETE", "/v1/responses/resp_unknown"), ("GET", "/v1/responses/resp_unknown/input_items"),
])
def test_the_anthropic_and_responses_routes_name_the_key_in_their_line(stack: Stack, lines: list[str], method: str,
                                                                       path: str) -> None:
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "count"}]}
    response = httpx.request(method, f"{stack.base_url}{path}", headers=AUTH, timeout=30,
                             json=body if method == "POST" else None)
    assert response.status_code in (200, 404)
    assert "key=test " in _line(lines, response.headers["x-request-id"])
