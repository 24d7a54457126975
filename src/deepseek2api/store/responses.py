"""Stored Responses-API responses (`previous_response_id`, `GET /v1/responses/{id}`), with a TTL.

A stored response is three JSON values: the response body as it was sent, the request's own input
items (what `GET …/input_items` lists) and the conversation before them (items of earlier responses
in a `previous_response_id` chain), so a follow-up needs one read, never a walk along the chain.
Entries expire `ttl` seconds after they were written (config `responses.ttl`); expired ones are
invisible at once and purged from time to time. The store only keeps: what goes in is decided by
api/responses/. SQLite work runs on one worker thread, as in `sqlite.py`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from .worker import SqliteWorker

log = logging.getLogger(__name__)

T = TypeVar("T")
PURGE_EVERY = 256  # writes between two purges of expired entries


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response: `body` (the Response object), `input_items` (its own input, with ids) and
    `context` (the items of the chain before it, oldest first)."""

    id: str
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    context: list[dict[str, Any]]
    expires_at: float


@runtime_checkable
class ResponseStore(Protocol):
    ttl: float

    async def put(self, record: StoredResponse) -> None: ...
    async def get(self, response_id: str) -> StoredResponse | None:
        """The response, or None when it is unknown or expired."""
        ...
    async def delete(self, response_id: str) -> bool: ...
    async def close(self) -> None: ...


class MemoryResponseStore:
    """A dict with expiry: for tests, demos and `state.backend = "memory"`."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._items: dict[str, StoredResponse] = {}
        self._writes = 0

    async def put(self, record: StoredResponse) -> None:
        self._items[record.id] = record
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            now = self._clock()
            for key in [k for k, v in self._items.items() if v.expires_at <= now]:
                del self._items[key]

    async def get(self, response_id: str) -> StoredResponse | None:
        record = self._items.get(response_id)
        if record is None or record.expires_at <= self._clock():
            return None
        return record

    async def delete(self, response_id: str) -> bool:
        record = self._items.pop(response_id, None)
        return record is not None and record.expires_at > self._clock()

    async def close(self) -> None:
        return None


class SqliteResponseStore(SqliteWorker):
    """`ResponseStore` in a table `responses` of the state file (default `state.db`)."""

    closed_message = "the response store is closed"

    def __init__(self, path: str | os.PathLike[str], ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__("ds2api-responses")
        self.path = os.fspath(path)
        self.ttl = ttl
        self._clock = clock
        self._writes = 0

    async def put(self, record: StoredResponse) -> None:
        texts = [json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                 for value in (record.body, record.input_items, record.context)]
        self._writes += 1
        purge = self._clock() if self._writes % PURGE_EVERY == 1 else None
        await self._run(self._put_sync, record.id, *texts, record.expires_at, purge)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(self._get_sync, response_id, self._clock())
        if row is None:
            return None
        try:
            body, items, context = (json.loads(text) for text in row[:3])
        except ValueError:
            log.warning("stored response %s is unreadable; treated as missing", response_id)
            return None
        return StoredResponse(response_id, body, items, context, float(row[3]))

    async def delete(self, response_id: str) -> bool:
        return await self._run(self._delete_sync, response_id, self._clock())


    # ---- worker thread ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            if not os.path.exists(self.path):  # conversations are private: 0600, like the account state
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, body TEXT NOT NULL, "
                         "input_items TEXT NOT NULL, context TEXT NOT NULL, expires_at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at)")
            self._conn = conn
        return self._conn

    def _put_sync(self, response_id: str, body: str, items: str, context: str, expires_at: float,
                  purge_before: float | None) -> None:
        conn = self._connection()
        conn.execute("INSERT OR REPLACE INTO responses (id, body, input_items, context, expires_at) "
                     "VALUES (?, ?, ?, ?, ?)", (response_id, body, items, context, expires_at))
        if purge_before is not None:
            conn.execute("DELETE FROM responses WHERE expires_at <= ?", (purge_before,))

    def _get_sync(self, response_id: str, now: float) -> tuple[str, str, str, float] | None:
        row = self._connection().execute(
            "SELECT body, input_items, context, expires_at FROM responses WHERE id = ? AND expires_at > ?",
            (response_id, now)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def _delete_sync(self, response_id: str, now: float) -> bool:
        cursor = self._connection().execute("DELETE FROM responses WHERE id = ? AND expires_at > ?",
                                            (response_id, now))
        return cursor.rowcount == 1


def open_response_store(backend: str, path: str, ttl: float) -> ResponseStore:
    """The store the `state` section asks for; sqlite shares the state file (its own table)."""
    if backend == "memory":
        return MemoryResponseStore(ttl)
    return SqliteResponseStore(path, ttl)


__all__ = ["MemoryResponseStore", "ResponseStore", "SqliteResponseStore", "StoredResponse", "open_response_store"]
