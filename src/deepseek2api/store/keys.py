"""API keys made in the console: name, the key's SHA-256 digest and its rules — never the key.

config.json is the operator's file and is never rewritten, so keys made at runtime live in a table of
the state file, like the accounts added from the console (store/account_book.py). Only a digest is
kept: the key is shown once, when it is made, and cannot be shown again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .account_book import _create_private
from .worker import SqliteWorker


@dataclass(frozen=True, slots=True)
class StoredKey:
    name: str
    digest: str  # hex SHA-256 of the key
    rules: dict[str, Any]
    created_at: float


class KeyBook(Protocol):
    async def load(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        ...

    async def put(self, key: StoredKey) -> None:
        """Add or replace the key of that name."""
        ...

    async def remove(self, name: str) -> bool:
        ...

    async def close(self) -> None:
        ...


class MemoryKeyBook:
    def __init__(self) -> None:
        self._keys: dict[str, StoredKey] = {}

    async def load(self) -> list[StoredKey]:
        return sorted(self._keys.values(), key=lambda k: (k.created_at, k.name))

    async def put(self, key: StoredKey) -> None:
        self._keys[key.name] = key

    async def remove(self, name: str) -> bool:
        return self._keys.pop(name, None) is not None

    async def close(self) -> None:
        return None


class SqliteKeyBook(SqliteWorker):
    """`KeyBook` in a table `api_keys` of the state file."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        super().__init__("ds2api-keys")
        self.path = os.fspath(path)
        self._clock = clock

    async def load(self) -> list[StoredKey]:
        rows = await self._run(self._load_sync)
        out: list[StoredKey] = []
        for name, digest, text, created in rows:
            try:
                rules = json.loads(text)
            except ValueError:
                rules = {}
            out.append(StoredKey(str(name), str(digest), rules if isinstance(rules, dict) else {}, float(created)))
        return out

    async def put(self, key: StoredKey) -> None:
        await self._run(self._put_sync, key.name, key.digest, json.dumps(dict(key.rules)), key.created_at)

    async def remove(self, name: str) -> bool:
        return await self._run(self._remove_sync, name)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            _create_private(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                         "rules TEXT NOT NULL, created_at REAL NOT NULL)")
            self._conn = conn
        return self._conn

    def _load_sync(self) -> list[tuple[Any, ...]]:
        return self._connection().execute(
            "SELECT name, digest, rules, created_at FROM api_keys ORDER BY created_at, name").fetchall()

    def _put_sync(self, name: str, digest: str, rules: str, created_at: float) -> None:
        self._connection().execute("INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?)",
                                   (name, digest, rules, created_at))

    def _remove_sync(self, name: str) -> bool:
        return self._connection().execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount == 1


def open_key_book(backend: str, path: str | os.PathLike[str]) -> KeyBook:
    return MemoryKeyBook() if backend == "memory" else SqliteKeyBook(path)


__all__ = ["KeyBook", "MemoryKeyBook", "SqliteKeyBook", "StoredKey", "open_key_book"]
