"""Usage per key, model and time bucket, kept in the state file beside the learned state.

Two spans: `minute` buckets (unix minute; kept `MINUTE_RETENTION` seconds, for the console's last hour
and last day) and `day` buckets (UTC day number; kept for good, for the 30-day view, the usage API and
`tokens_per_day`). Writes are deltas added in one transaction (`INSERT … ON CONFLICT DO UPDATE`), so
several processes on one file add up instead of overwriting each other. One worker thread owns the
connection (store/worker.py): the event loop never waits on the disk.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any, Protocol

from .account_book import _create_private
from .worker import SqliteWorker

MINUTE_RETENTION = 2 * 86400.0  # seconds of minute buckets kept (the console shows a day at most)
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "errors", "stream_seconds")


@dataclass(slots=True)
class UsageRow:
    """One bucket's counts for one key and model (`completion_tokens` includes `reasoning_tokens`)."""

    span: str  # "minute" | "day"
    bucket: int  # unix minute (span minute) or UTC day number (span day)
    key: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    errors: int = 0
    stream_seconds: float = 0.0

    def add(self, other: UsageRow) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.errors += other.errors
        self.stream_seconds += other.stream_seconds


class UsageStore(Protocol):
    async def add(self, rows: Sequence[UsageRow], prune_before_minute: int) -> None:
        """Add these deltas; drop minute buckets older than `prune_before_minute`."""
        ...

    async def query(self, span: str, since: int, until: int, key: str | None = None,
                    model: str | None = None) -> list[UsageRow]:
        """Rows of `span` with since <= bucket < until, optionally of one key / model, oldest first."""
        ...

    async def close(self) -> None:
        ...


def _matches(row: UsageRow, span: str, since: int, until: int, key: str | None, model: str | None) -> bool:
    return (row.span == span and since <= row.bucket < until and (key is None or row.key == key)
            and (model is None or row.model == model))


class MemoryUsageStore:
    """A dict: tests, demos and `state.backend = "memory"`."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int, str, str], UsageRow] = {}

    async def add(self, rows: Sequence[UsageRow], prune_before_minute: int) -> None:
        for row in rows:
            slot = (row.span, row.bucket, row.key, row.model)
            kept = self._rows.get(slot)
            if kept is None:
                self._rows[slot] = UsageRow(*astuple(row))
            else:
                kept.add(row)
        for slot in [s for s in self._rows if s[0] == "minute" and s[1] < prune_before_minute]:
            del self._rows[slot]

    async def query(self, span: str, since: int, until: int, key: str | None = None,
                    model: str | None = None) -> list[UsageRow]:
        rows = [UsageRow(*astuple(r)) for r in self._rows.values() if _matches(r, span, since, until, key, model)]
        return sorted(rows, key=lambda r: (r.bucket, r.key, r.model))

    async def close(self) -> None:
        return None


class SqliteUsageStore(SqliteWorker):
    """`UsageStore` in a table `key_usage` of the state file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__("ds2api-usage")
        self.path = os.fspath(path)

    async def add(self, rows: Sequence[UsageRow], prune_before_minute: int) -> None:
        await self._run(self._add_sync, [astuple(r) for r in rows], prune_before_minute)

    async def query(self, span: str, since: int, until: int, key: str | None = None,
                    model: str | None = None) -> list[UsageRow]:
        found = await self._run(self._query_sync, span, since, until, key, model)
        return [UsageRow(*row) for row in found]

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            _create_private(self.path)  # the state file holds tokens: 0600 whoever opens it first
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS key_usage (span TEXT NOT NULL, bucket INTEGER NOT NULL, "
                "key TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0, "
                "prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, "
                "reasoning_tokens INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, "
                "stream_seconds REAL NOT NULL DEFAULT 0, PRIMARY KEY (span, bucket, key, model))")
            self._conn = conn
        return self._conn

    def _add_sync(self, rows: Iterable[tuple[object, ...]], prune_before_minute: int) -> None:
        conn = self._connection()
        with conn:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO key_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (span, bucket, key, model) "
                "DO UPDATE SET requests = requests + excluded.requests, "
                "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = completion_tokens + excluded.completion_tokens, "
                "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, "
                "errors = errors + excluded.errors, stream_seconds = stream_seconds + excluded.stream_seconds",
                list(rows))
            conn.execute("DELETE FROM key_usage WHERE span = 'minute' AND bucket < ?", (prune_before_minute,))

    def _query_sync(self, span: str, since: int, until: int, key: str | None,
                    model: str | None) -> list[tuple[Any, ...]]:
        sql = "SELECT * FROM key_usage WHERE span = ? AND bucket >= ? AND bucket < ?"
        args: list[object] = [span, since, until]
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        if model is not None:
            sql += " AND model = ?"
            args.append(model)
        return self._connection().execute(sql + " ORDER BY bucket, key, model", args).fetchall()


def open_usage_store(backend: str, path: str | os.PathLike[str]) -> UsageStore:
    return MemoryUsageStore() if backend == "memory" else SqliteUsageStore(path)


__all__ = ["COUNTS", "MINUTE_RETENTION", "MemoryUsageStore", "SqliteUsageStore", "UsageRow", "UsageStore",
           "open_usage_store"]
