"""A lean ASGI streaming response that notices a client hanging up even while the body is silent.

Starlette's StreamingResponse only learns about a disconnect when a write fails (ASGI spec ≥ 2.4), so a
stalled stream would keep its account's stream slot for the whole stall. Here a watcher waits on
`receive()` and cancels the body as soon as `http.disconnect` arrives; the body generator's `finally`
then releases the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from starlette.types import Receive, Scope, Send

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """`text/event-stream` response over an async generator of bytes (closed when the stream ends)."""

    def __init__(self, body: AsyncGenerator[bytes, None], *, status: int = 200) -> None:
        self.body = body
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(self._watch(receive))
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            for task in (pump, watch):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task

    async def _pump(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": _SSE_HEADERS})
            async for chunk in self.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            pass
        finally:
            await self.body.aclose()

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
