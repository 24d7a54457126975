"""Turns in flight: how many, and their tasks, so shutdown can wait for them and then stop them.

A turn can outlive the request handler that started it (a non-stream reply goes out at `OutFinish`
while the turn still deletes its web session), so the task needs a strong reference somewhere and
shutdown needs to find it: this is that place, shared by every API surface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


class TurnTracker:
    """Counts turns in progress and keeps their tasks until they end."""

    def __init__(self) -> None:
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()  # strong refs: the loop only keeps weak ones

    @property
    def inflight_count(self) -> int:
        return self._inflight

    @contextlib.asynccontextmanager
    async def inflight(self) -> AsyncIterator[None]:
        """Count one turn while the block runs."""
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    def track(self, task: asyncio.Task[Any] | None) -> None:
        """Keep a turn's task alive until it ends, and let shutdown stop it."""
        if task is not None and not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.track(task)
        return task

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every counted turn to end; False if some still run."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def cancel_all(self, timeout: float = 10.0) -> None:
        """Cancel the tasks still running (each returns its lease on the way out) and wait for them."""
        running = [task for task in self._tasks if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=timeout)
