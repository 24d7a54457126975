"""A client that stops reading a stream cannot hold its account.

Raw sockets with tiny receive buffers send a streaming request for a long reply and never read. Before,
both accounts stayed leased until the sockets closed (150 s in the issue) while every other user got 429s.
Now a write that waits `server.write_timeout` seconds for the client ends the turn: upstream stopped,
session deleted, lease back, connection dropped. The waits below are bounded loops, not timing asserts.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, running_stack
from reliability_support import error_log
from test_gateway_stream_admission import access_lines

LONG = "write a long answer [sim:words=8000]"


def _stalled_stream(base_url: str, receive_buffer: int | None = 1024, path: str = "/v1/chat/completions",
                    body: dict[str, object] | None = None) -> socket.socket:
    """A streaming request on a socket with a tiny receive buffer, which is then never read."""
    parts = urlsplit(base_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect: it caps the TCP window
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    raw = json.dumps(body or {"model": "deepseek-chat", "stream": True,
                              "messages": [{"role": "user", "content": LONG}]}).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n".encode()
                 + f"authorization: Bearer {API_KEY}\r\ncontent-length: {len(raw)}\r\n\r\n".encode() + raw)
    return sock


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _peer_closed(sock: socket.socket) -> bool:
    """True once the gateway dropped the connection (reads what is left without waiting)."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_clients_that_stop_reading_give_their_accounts_back_within_the_write_timeout() -> None:
    with running_stack(accounts=2, server={"write_timeout": 1.0}) as stack, access_lines() as lines, \
            error_log() as errors:
        pool = stack.gateway.pool
        sockets = [_stalled_stream(stack.base_url) for _ in range(2)]
        try:
            assert _until(lambda: pool.leases_out == 2, 10), "both stalled streams should have taken an account"
            assert _until(lambda: pool.leases_out == 0), f"leases still out: {pool.leases_out}"
            assert _until(lambda: stack.sim_stats()["sessions"] == 0), stack.sim_stats()
            stats = stack.sim_stats()
            assert stats["deletes"] >= 2 and not any(stats["active_streams"].values()), stats
            # The accounts serve others again while the stalled sockets are still open.
            answer = stack.openai().chat.completions.create(model="deepseek-chat",
                                                            messages=[{"role": "user", "content": "next"}])
            assert answer.choices[0].message.content == reply_for("next", thinking=False, search=False).content
            assert all(_until(lambda s=s: _peer_closed(s), 10) for s in sockets), "connections were not dropped"
        finally:
            for sock in sockets:
                sock.close()
        stack.wait_idle()
    cut = [line for line in lines if "error=write_timeout" in line]
    assert len(cut) == 2 and all(" status=200 " in line for line in cut), lines
    assert not errors.lines(), errors.lines()


def test_a_slow_but_reading_client_is_not_cut() -> None:
    # Read in small pieces with pauses: slower than the gateway writes (its writes wait for the client),
    # yet the stream completes. (Not with the 1 KiB buffer: so small a TCP window makes the kernel itself
    # wait on its zero-window probe timer for seconds, which is a client that does not drain.)
    with running_stack(accounts=1, server={"write_timeout": 1.0}) as stack:
        sock = _stalled_stream(stack.base_url, receive_buffer=None)
        received = bytearray()
        try:
            sock.settimeout(10)
            while not received.rstrip().endswith(b"0\r\n\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
                time.sleep(0.001)
        finally:
            sock.close()
        assert received.startswith(b"HTTP/1.1 200")
        assert b"data: [DONE]" in received


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 64000, "stream": True,
                      "messages": [{"role": "user", "content": LONG}]}),
    ("/v1/responses", {"model": "deepseek-chat", "stream": True, "input": LONG}),
])
def test_every_surface_drops_a_client_that_stops_reading(path: str, body: dict[str, object]) -> None:
    with running_stack(accounts=1, server={"write_timeout": 1.0}) as stack, access_lines() as lines:
        pool = stack.gateway.pool
        sock = _stalled_stream(stack.base_url, path=path, body=body)
        try:
            assert _until(lambda: pool.leases_out == 1, 10)
            assert _until(lambda: pool.leases_out == 0), f"leases still out: {pool.leases_out}"
            assert _until(lambda: stack.sim_stats()["sessions"] == 0), stack.sim_stats()
            assert _until(lambda: _peer_closed(sock), 10)
        finally:
            sock.close()
        stack.wait_idle()
    # Logged as the chat surface logs it: the client got 200 and the gateway cut it (not a 499 hang-up).
    assert len(lines) == 1 and " status=200 " in lines[0] and "error=write_timeout" in lines[0], lines
