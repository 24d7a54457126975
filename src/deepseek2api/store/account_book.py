"""Accounts the operator added at runtime (from the console), kept beside the learned state.

`config.json` is the operator's file and is never rewritten, so accounts added from the console live
here and are merged with the config's at start. Each entry is the account exactly as a `config.json`
account object (password included: like the tokens in `state.db`, it has to survive a restart), in a
table of the same SQLite file, created 0600. One worker thread per book, as in `sqlite.py`: the event
loop never waits on the disk.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from .worker import SqliteWorker

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AccountBookError(Exception):
    """The book could not be read or written (the action that needed it must fail, visibly)."""


@runtime_checkable
class AccountBook(Protocol):
    """Runtime-added accounts by id, in the order they were added."""

    async def load(self) -> dict[str, dict[str, Any]]:
        """id → the account's fields (a config.json account object), oldest first."""
        ...

    async def add(self, account_id: str, fields: Mapping[str, Any]) -> bool:
        """Keep one account; False (and nothing changes) when the id is already in the book."""
        ...

    async def remove(self, account_id: str) -> bool:
        """Forget one account; False when it was not in the book."""
        ...

    async def close(self) -> None:
        ...


class MemoryAccountBook:
    """A dict: for tests, demos and `state.backend = "memory"`."""

    def __init__(self) -> None:
        self._accounts: dict[str, dict[str, Any]] = {}

    async def load(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._accounts.items()}

    async def add(self, account_id: str, fields: Mapping[str, Any]) -> bool:
        if account_id in self._accounts:
            return False
        self._accounts[account_id] = dict(fields)
        return True

    async def remove(self, account_id: str) -> bool:
        return self._accounts.pop(account_id, None) is not None

    async def close(self) -> None:
        return None


class SqliteAccountBook(SqliteWorker):
    """`AccountBook` in a table `runtime_accounts` of the state file (default `state.db`)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        super().__init__("ds2api-accounts")
        self.path = os.fspath(path)
        self._clock = clock

    async def load(self) -> dict[str, dict[str, Any]]:
        rows = await self._run(self._load_sync)
        out: dict[str, dict[str, Any]] = {}
        for account_id, text in rows:
            try:
                fields = json.loads(text)
            except ValueError:
                logger.warning("runtime account %s: unreadable entry in %s, skipped", account_id, self.path)
                continue
            if isinstance(fields, dict):
                out[account_id] = fields
        return out

    async def add(self, account_id: str, fields: Mapping[str, Any]) -> bool:
        text = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"))
        return await self._run(self._add_sync, account_id, text, self._clock())

    async def remove(self, account_id: str) -> bool:
        return await self._run(self._remove_sync, account_id)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise AccountBookError("the account book is closed")
        try:
            return await super()._run(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise AccountBookError(f"the account book {self.path} failed ({exc})") from None

    # ---- worker thread ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            _create_private(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS runtime_accounts "
                         "(id TEXT PRIMARY KEY, fields TEXT NOT NULL, added_at REAL NOT NULL)")
            self._conn = conn
        return self._conn

    def _load_sync(self) -> list[tuple[str, str]]:
        rows = self._connection().execute("SELECT id, fields FROM runtime_accounts ORDER BY added_at, id").fetchall()
        return [(str(row[0]), str(row[1])) for row in rows]

    def _add_sync(self, account_id: str, text: str, added_at: float) -> bool:
        cursor = self._connection().execute(
            "INSERT OR IGNORE INTO runtime_accounts (id, fields, added_at) VALUES (?, ?, ?)",
            (account_id, text, added_at))
        return cursor.rowcount == 1

    def _remove_sync(self, account_id: str) -> bool:
        cursor = self._connection().execute("DELETE FROM runtime_accounts WHERE id = ?", (account_id,))
        return cursor.rowcount == 1


def _create_private(path: str) -> None:
    """Create the file 0600 (it holds passwords); tighten an existing one readable by others."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            try:
                os.chmod(path, 0o600)
            except OSError:
                logger.warning("state file %s is readable by other users and holds passwords", path)
        return
    os.close(fd)


def open_account_book(backend: str, path: str | os.PathLike[str]) -> AccountBook:
    """The book beside the state store: the same file for sqlite, a dict for `state.backend = "memory"`."""
    return MemoryAccountBook() if backend == "memory" else SqliteAccountBook(path)


__all__ = ["AccountBook", "AccountBookError", "MemoryAccountBook", "SqliteAccountBook", "open_account_book"]
