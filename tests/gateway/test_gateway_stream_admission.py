"""A stream that waits for an account sends nothing until it has one.

Before, the first `: keep-alive` (after `server.keepalive_interval`) committed HTTP 200 while the turn was
still queued, so a pool that stayed busy ended the stream with an error event: no 429, no `Retry-After`,
and no SDK retry. Here the keep-alive interval is far shorter than the queue timeout, so a keep-alive
sent while queued would make these tests fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, Stack, running_stack

HOLD = "hold the only account [sim:fault=slow] [sim:words=60]"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def access_lines() -> Iterator[list[str]]:
    logger = logging.getLogger("deepseek2api.access")
    handler = _Lines()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextlib.contextmanager
def account_held(stack: Stack) -> Iterator[dict[str, str]]:
    """A slow stream holds the only account for a few seconds (the issue's repro)."""
    result: dict[str, str] = {}

    def hold() -> None:
        with stack.openai().chat.completions.create(
                model="deepseek-chat", stream=True, messages=[{"role": "user", "content": HOLD}]) as stream:
            result["text"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    thread = threading.Thread(target=hold)
    thread.start()
    deadline = time.monotonic() + 10
    while stack.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stack.gateway.pool.leases_out == 1
    try:
        yield result
    finally:
        thread.join(60)


def _stream_text(stack: Stack, prompt: str, **options: Any) -> str:
    with stack.openai(**options).chat.completions.create(
            model="deepseek-chat", stream=True, messages=[{"role": "user", "content": prompt}]) as stream:
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _stack(**pool: float) -> contextlib.AbstractContextManager[Stack]:
    return running_stack(accounts=1, sim={"slow_tokens_per_second": 40.0},
                         server={"keepalive_interval": 0.1}, pool={"queue_timeout": 0.8, **pool})


def test_a_stream_waiting_for_a_busy_pool_gets_a_real_429_with_retry_after() -> None:
    with _stack() as stack, access_lines() as lines, account_held(stack) as held:
        with pytest.raises(openai.RateLimitError) as limited:
            _stream_text(stack, "second")
        response = limited.value.response
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert limited.value.body["code"] == "pool_all_busy"  # type: ignore[index]
        request_id = response.headers["x-request-id"]
    assert held["text"] == reply_for(HOLD, thinking=False, search=False).content
    line = next(line for line in lines if f"request_id={request_id} " in line)
    assert " status=429 " in line and "error=pool_all_busy" in line and "stream=true" in line


def test_the_sdk_retries_that_429_and_the_stream_then_succeeds() -> None:
    with _stack() as stack, account_held(stack):
        text = _stream_text(stack, "second", max_retries=4)
    assert text == reply_for("second", thinking=False, search=False).content


def test_a_stream_that_gets_an_account_while_waiting_is_served_normally() -> None:
    with _stack(queue_timeout=30.0) as stack, account_held(stack) as held:
        text = _stream_text(stack, "patient")
    assert held["text"] and text == reply_for("patient", thinking=False, search=False).content


def test_keep_alives_start_once_the_turn_runs() -> None:
    # A stalled upstream after the account was granted: the stream opens with keep-alive comments.
    with running_stack(accounts=1, server={"keepalive_interval": 0.1}, sim={"stall_seconds": 0.6}) as stack:
        with stack.http().stream("POST", "/v1/chat/completions", json={
                "model": "deepseek-chat", "stream": True,
                "messages": [{"role": "user", "content": "wait [sim:stall=0.6]"}]}) as response:
            assert response.status_code == 200
            body = b"".join(response.iter_bytes())
        assert body.startswith(b": keep-alive\n\n")
        assert body.rstrip().endswith(b"data: [DONE]")


def test_the_anthropic_and_responses_streams_get_the_same_real_429() -> None:
    import anthropic

    with _stack() as stack, account_held(stack):
        sdk = anthropic.Anthropic(base_url=stack.base_url, api_key=API_KEY, max_retries=0, timeout=60)
        with pytest.raises(anthropic.RateLimitError) as limited, sdk.messages.stream(
                model="claude-haiku-4-5", max_tokens=1024, messages=[{"role": "user", "content": "second"}]) as stream:
            stream.get_final_message()
        assert int(limited.value.response.headers["retry-after"]) >= 1
        with pytest.raises(openai.RateLimitError) as refused:
            list(stack.openai().responses.create(model="deepseek-chat", input="second", stream=True))
        assert int(refused.value.response.headers["retry-after"]) >= 1


def _wait_for(condition: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _open_stream(stack: Stack, path: str, body: dict[str, Any]) -> socket.socket:
    """A raw HTTP request for a stream, left unread: the caller hangs up by closing the socket."""
    payload = json.dumps(body).encode()
    host, port = stack.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {API_KEY}\r\n"
                 f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "deepseek-chat", "stream": True,
                              "messages": [{"role": "user", "content": "queued"}]}),
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 1024, "stream": True,
                      "messages": [{"role": "user", "content": "queued"}]}),
    ("/v1/responses", {"model": "deepseek-chat", "input": "queued", "stream": True}),
])
def test_a_stream_whose_client_hangs_up_while_queued_leaves_the_queue_at_once(path: str, body: dict[str, Any]) -> None:
    with _stack(queue_timeout=60.0) as stack, access_lines() as lines:
        pool = stack.gateway.pool
        holder = _open_stream(stack, "/v1/chat/completions", {
            "model": "deepseek-chat", "stream": True, "messages": [{"role": "user", "content": "hold [sim:stall=60]"}]})
        try:
            _wait_for(lambda: pool.leases_out == 1, "the holder never got the account")
            waiter = _open_stream(stack, path, body)
            _wait_for(lambda: pool.waiting == 1, "the second stream never queued")
            waiter.close()
            # The queued turn is cancelled while the account is still held: it never runs, and says 499.
            _wait_for(lambda: pool.waiting == 0, "the gone client's turn stayed in the queue")
            _wait_for(lambda: any(" status=499 " in line for line in lines), "no access line for the gone client")
            assert pool.leases_out == 1
        finally:
            holder.close()
