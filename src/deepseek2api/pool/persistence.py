"""Write-behind persistence of what the pool learned (tokens, health states, counters).

A state change queues the account's snapshot; one writer task saves them in order, off the request's
path, coalescing repeated changes of one account. A failed write is kept for the next one (or the
last try at close), so a crash loses at most the writes still queued, never a ban the store took.
"""

from __future__ import annotations

import asyncio
import logging

from ..logs import redactor
from ..store.base import AccountState, StateStore
from .core import PoolCore
from .health import AccountStatus, parse_status
from .record import AccountRecord, settle_fingerprint

logger = logging.getLogger(__name__)


class StateWriter:
    """Loads the store once at start; then queues and writes each account's state."""

    def __init__(self, core: PoolCore, store: StateStore) -> None:
        self._core = core
        self._store = store
        self._dirty: dict[str, AccountState] = {}
        self._writer: asyncio.Task[None] | None = None

    async def restore(self) -> None:
        """Load persisted tokens and health states (the store's token wins over the config's)."""
        try:
            stored = await self._store.load()
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the gateway
            logger.warning("could not load account state (%s): starting from the config alone", exc)
            stored = {}
        accounts = list(self._core.accounts.values())
        settled = await asyncio.gather(*(
            asyncio.to_thread(settle_fingerprint, acc.settings, getattr(stored.get(acc.id), "credentials", ""))
            for acc in accounts))
        for acc, (fingerprint, _) in zip(accounts, settled, strict=True):
            acc.credentials = fingerprint
        for acc, (_, unchanged) in zip(accounts, settled, strict=True):
            state = stored.get(acc.id)
            if state is None:
                continue
            acc.requests, acc.failures = state.requests, state.failures
            if state.credentials and not unchanged:
                logger.info("account %s: login changed in config; forgetting its learned token", acc.id)
                if state.status in (AccountStatus.COOLING, AccountStatus.MUTED, AccountStatus.BANNED):
                    _restore(acc, state)
                self.persist(acc)
                continue
            if state.token:
                acc.token = state.token
                redactor.add(state.token)  # learned before the restart: masked like a fresh login's
            _restore(acc, state)

    def persist(self, acc: AccountRecord) -> None:
        """Queue the account's state for the store (written in order, off the loop, coalesced)."""
        if acc.config_disabled:
            return
        acc.counters_dirty = False
        self._dirty[acc.id] = acc.snapshot()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    def forget(self, account_id: str) -> None:
        """A removed account: drop its queued write."""
        self._dirty.pop(account_id, None)

    async def flush(self) -> None:
        """Wait until every state change so far is in the store."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        """Queue the counters not yet written, flush, and give failed writes one last try."""
        for acc in self._core.accounts.values():
            if acc.counters_dirty and not acc.config_disabled:
                self.persist(acc)
        await self.flush()
        if self._dirty:  # writes that failed meanwhile: one last try before the process goes
            await self._write_pending()

    async def _write_pending(self) -> None:
        failed: dict[str, AccountState] = {}
        while self._dirty:
            account_id = next(iter(self._dirty))
            state = self._dirty.pop(account_id)
            try:
                await self._store.save(account_id, state)
            except Exception as exc:  # noqa: BLE001 - a failed write is retried with the next change
                logger.warning("account %s: could not save its state (%s)", account_id, exc)
                failed[account_id] = state
            else:
                failed.pop(account_id, None)  # a newer state of it is in
        for account_id, state in failed.items():  # kept for the next write (or close), unless newer queued
            if account_id in self._core.accounts:
                self._dirty.setdefault(account_id, state)


def _restore(acc: AccountRecord, state: AccountState) -> None:
    if state.token and acc.token == state.token:
        acc.token_at = state.updated_at or None
    status = parse_status(state.status)
    if acc.config_disabled or status is None:
        return
    acc.status, acc.reason, acc.until, acc.updated_at = status, state.reason, state.until, state.updated_at
    if acc.status != AccountStatus.READY:
        logger.info("account %s: %s (%s), restored from the state store", acc.id, acc.status, acc.reason)


__all__ = ["StateWriter"]
