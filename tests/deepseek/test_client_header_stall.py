"""A completion whose response headers never come: the transfer must really end at the first-byte
timeout (and on cancellation), not linger upstream while the account is handed to the next request."""

from __future__ import annotations

import asyncio
import contextlib

from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.deepseek.profile import ClientProfile


class SilentServer:
    """Accepts connections, reads the request, never answers; records when each connection closes."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        with contextlib.suppress(Exception):
            while await reader.read(4096):
                pass
        self.closed += 1
        writer.close()


async def _wait_until(predicate, limit: float = 5.0) -> bool:
    for _ in range(int(limit / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_first_byte_timeout_closes_the_upstream_connection() -> None:
    silent = SilentServer()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    profile = ClientProfile(base_url=f"http://127.0.0.1:{port}", impersonate=None, first_byte_timeout=0.3,
                            idle_timeout=60.0)
    async with DeepSeekClient(profile) as client:
        events = [e async for e in client.completion("tok", session_id="s", prompt="p", pow_header="h",
                                                      thinking=False, search=False)]
        assert isinstance(events[-1], UpstreamError) and events[-1].kind is ErrorKind.NETWORK
        assert await _wait_until(lambda: silent.closed == silent.opened == 1)
    server.close()


async def test_cancelled_wait_for_headers_closes_the_upstream_connection() -> None:
    silent = SilentServer()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    profile = ClientProfile(base_url=f"http://127.0.0.1:{port}", impersonate=None, first_byte_timeout=30.0)
    async with DeepSeekClient(profile) as client:
        async def consume() -> None:
            async for _ in client.completion("tok", session_id="s", prompt="p", pow_header="h",
                                             thinking=False, search=False):
                pass

        task = asyncio.ensure_future(consume())
        assert await _wait_until(lambda: silent.opened == 1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await _wait_until(lambda: silent.closed == 1)
    server.close()
