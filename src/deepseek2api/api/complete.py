"""A non-streaming turn, the same on every surface: it runs in its own task until its answer is complete.

The answer goes out as soon as `OutFinish` arrives, while the turn finishes its upstream cleanup (delete
the web session) still holding the account. A client that hangs up before that cancels the turn (lease
back, upstream stopped): otherwise an upstream that never ends would keep its account busy forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from starlette.types import Receive

from ..chat.assemble import OutEvent, OutFinish
from ..chat.tracker import TurnTracker
from .observe import RequestObserver, in_flight
from .request_body import disconnected


async def run_to_finish(outs: AsyncGenerator[OutEvent, None], receive: Receive, tracker: TurnTracker,
                        observer: RequestObserver | None, surface: str,
                        seen: Callable[[OutEvent], None] | None = None) -> OutFinish | None:
    """The turn's `OutFinish` (it carries the whole text), or None when the client hung up first. A
    failure of the turn is raised here. `seen` gets every event before the finish (tool calls...)."""
    finished: asyncio.Future[OutFinish] = asyncio.get_running_loop().create_future()

    async def run_turn() -> None:
        try:
            async with tracker.inflight(), in_flight(observer, surface), aclosing(outs) as events:
                async for out in events:
                    if isinstance(out, OutFinish):
                        if not finished.done():
                            finished.set_result(out)
                    elif seen is not None:
                        seen(out)
        except asyncio.CancelledError:
            finished.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the request through the future
            if not finished.done():
                finished.set_exception(exc)

    task = tracker.spawn(run_turn())
    watcher = asyncio.ensure_future(disconnected(receive))
    try:
        await asyncio.wait((finished, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when we are cancelled ourselves (server shutdown)
        watcher.cancel()
        if not finished.done():
            task.cancel()
            await asyncio.wait((task,))  # the turn's cleanup runs to the end
    if finished.cancelled():
        return None
    return finished.result()  # raises the turn's failure
