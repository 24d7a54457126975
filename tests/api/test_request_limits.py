"""Request heads and bodies are bounded in size, count and time; a preflight echoes only known header
names. Raw sockets on loopback, every wait bounded."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deepseek2api.api.request_limits import (
    ALLOWED_REQUEST_HEADERS,
    allowed_request_headers,
)
from deepseek2api.background import BackgroundServer
from deepseek2api.serve import uvicorn_limits
from deepseek2api.server import create_app
from gateway_support import API_KEY, gateway_settings, running_stack, sim_users

LIMITS = {"max_header_bytes": 8192, "max_headers": 40, "header_timeout": 1.0, "body_timeout": 1.0}


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    """The gateway as `deepseek2api serve` runs it (limited protocol), small limits, no upstream needed."""
    settings = gateway_settings("http://127.0.0.1:9", sim_users(1), server=LIMITS)
    with BackgroundServer(create_app(settings), **uvicorn_limits(settings.server)) as running:
        yield running


def exchange(server: BackgroundServer, head: bytes, body: bytes = b"", *, wait: float = 15.0) -> bytes:
    """Send `head` (+ `body`) and return what the server answers before it closes (or `wait` passes)."""
    with socket.create_connection((server.host, server.port), timeout=wait) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: its answer is still in our receive buffer
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                length = [line.split(b":", 1)[1] for line in head.lower().split(b"\r\n")
                          if line.startswith(b"content-length:")]
                if sep and length and len(rest) >= int(length[0]):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return data


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def test_an_oversized_header_is_refused_with_431_before_it_is_read_whole(server: BackgroundServer) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 4_000_000 + b"\r\n\r\n"
    assert status_of(exchange(server, head)) == 431


def test_too_many_headers_are_refused_with_431(server: BackgroundServer) -> None:
    lines = b"".join(b"X-Filler-%d: 1\r\n" % i for i in range(LIMITS["max_headers"] + 5))
    assert status_of(exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")) == 431


def test_a_head_that_never_finishes_is_answered_408(server: BackgroundServer) -> None:
    response = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
    assert status_of(response) == 408


def test_a_body_that_never_finishes_is_answered_408(server: BackgroundServer) -> None:
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: 500\r\n\r\n")
    response = exchange(server, head, b'{"model": "deepseek-chat", ')
    assert status_of(response) == 408
    body = response.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["error"]["code"] == "request_timeout"


def _parsed(response: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    headers = dict(line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:])
    return headers, json.loads(body)


@pytest.mark.parametrize("head, status, code", [
    (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431,
     "request_headers_too_large"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 408, "request_timeout"),
])
def test_408_and_431_carry_the_envelope_a_request_id_and_an_access_line(
        server: BackgroundServer, caplog: pytest.LogCaptureFixture, head: bytes, status: int, code: str) -> None:
    with caplog.at_level(logging.INFO, logger="deepseek2api.access"):
        response = exchange(server, head)
    assert status_of(response) == status
    headers, body = _parsed(response)
    assert headers["x-request-id"].startswith("req_") and headers["connection"] == "close"
    if b"/v1/messages" in head:  # the Anthropic shape on the Anthropic path
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["error"]["code"] == code
    lines = [r.getMessage() for r in caplog.records if r.name == "deepseek2api.access"]
    assert any(f"request_id={headers['x-request-id']}" in line and f"status={status}" in line for line in lines)


def test_a_keyless_client_trickling_a_body_is_disconnected_after_its_401(server: BackgroundServer) -> None:
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n")
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(head + b'{"model": ')
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        assert status_of(data) == 401
        for _ in range(50):  # keep trickling: the server must close rather than wait for the rest
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
        else:
            raise AssertionError("the connection stayed open after the 401")


def test_normal_requests_pass_and_a_kept_alive_connection_serves_several(server: BackgroundServer) -> None:
    with httpx.Client(base_url=f"http://{server.host}:{server.port}") as client:
        for _ in range(3):
            assert client.get("/health", headers={"user-agent": "x" * 2000}).status_code == 200
        assert client.head("/health").status_code == 200


def test_a_preflight_echoes_only_known_header_names(server: BackgroundServer) -> None:
    response = httpx.options(f"http://{server.host}:{server.port}/v1/chat/completions",
                             headers={"origin": "https://app.example", "access-control-request-method": "POST",
                                      "access-control-request-headers": "authorization, x-evil-" + "e" * 3000
                                      + ", x-stainless-helper-method"})
    assert response.status_code == 204
    allowed = response.headers["access-control-allow-headers"]
    assert "x-evil" not in allowed and "x-stainless-helper-method" in allowed and "authorization" in allowed


def test_the_echoed_header_list_stays_small_whatever_is_asked() -> None:
    asked = ", ".join([f"x-stainless-h{i}" for i in range(1000)] + ["y" * 100_000])
    allowed = allowed_request_headers(asked)
    names = [n.strip() for n in allowed.split(",")]
    assert len(names) <= len(ALLOWED_REQUEST_HEADERS) + 16 and len(allowed) < 2048


def test_without_the_limited_protocol_the_app_still_answers_431_for_big_headers() -> None:
    """`uvicorn app:app` without `--http deepseek2api.http_limits:…`: the middleware's rule still holds."""
    with running_stack(accounts=1, server={"max_header_bytes": 4096, "max_headers": 30}) as stack:
        big = httpx.get(f"{stack.base_url}/health", headers={"x-big": "b" * 20_000})
        assert big.status_code == 431 and big.json()["error"]["code"] == "request_headers_too_large"
        many = httpx.get(f"{stack.base_url}/health", headers={f"x-h{i}": "1" for i in range(40)})
        assert many.status_code == 431
