"""Upstream housekeeping that must never fail a turn: stopping an abandoned reply, deleting a web session.

Both the runner (after a turn, while its lease is still held) and the prewarmer (an unused prepared
session) delete sessions; they do it through here, with the same deadline and the same quiet failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Protocol

log = logging.getLogger(__name__)

HOUSEKEEPING_TIMEOUT = 5.0  # seconds granted to stop_stream/delete_session (a lease may still be held)


class SessionClient(Protocol):
    async def delete_session(self, token: str, *, session_id: str, proxy: str | None = None) -> None: ...


async def best_effort(call: Awaitable[object], what: str = "upstream housekeeping") -> None:
    """Await an upstream housekeeping call with a deadline; failures are only logged."""
    try:
        async with asyncio.timeout(HOUSEKEEPING_TIMEOUT):
            await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - housekeeping must never fail a turn
        log.debug("%s failed: %s", what, exc)


async def delete_session(client: SessionClient, token: str, session_id: str, proxy: str | None) -> None:
    """Delete one web session, best effort (a replaced token or a gone session may refuse it)."""
    await best_effort(client.delete_session(token, session_id=session_id, proxy=proxy), "deleting a web session")
