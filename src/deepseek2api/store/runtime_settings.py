"""Settings the operator changed at runtime (from the console), kept beside the learned state.

`config.json` is never rewritten, so a choice made in the console (today: the client identity the
gateway presents to DeepSeek) lives here, in a table `runtime_settings` of the state file, one JSON
value per key, and is applied again at start. One worker thread, as in `sqlite.py`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from .account_book import _create_private
from .worker import SqliteWorker

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RuntimeSettingsError(Exception):
    """The store could not be read or written (the console action that needed it fails, visibly)."""


@runtime_checkable
class RuntimeSettings(Protocol):
    async def get(self, key: str) -> Any | None:
        """The stored JSON value, None when absent or unreadable."""
        ...

    async def put(self, key: str, value: Any) -> None:
        ...

    async def delete(self, key: str) -> None:
        ...

    async def close(self) -> None:
        ...


class MemoryRuntimeSettings:
    """A dict: for tests, demos and `state.backend = "memory"`."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    async def get(self, key: str) -> Any | None:
        text = self._values.get(key)
        return None if text is None else json.loads(text)

    async def put(self, key: str, value: Any) -> None:
        self._values[key] = json.dumps(value)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def close(self) -> None:
        return None


class SqliteRuntimeSettings(SqliteWorker):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__("ds2api-settings")
        self.path = os.fspath(path)

    async def get(self, key: str) -> Any | None:
        text = await self._run(self._get_sync, key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            logger.warning("runtime setting %s: unreadable entry in %s, ignored", key, self.path)
            return None

    async def put(self, key: str, value: Any) -> None:
        await self._run(self._put_sync, key, json.dumps(value, separators=(",", ":")))

    async def delete(self, key: str) -> None:
        await self._run(self._delete_sync, key)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeSettingsError("the runtime settings store is closed")
        try:
            return await super()._run(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise RuntimeSettingsError(f"the state file {self.path} failed ({exc})") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            _create_private(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS runtime_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._conn = conn
        return self._conn

    def _get_sync(self, key: str) -> str | None:
        row = self._connection().execute("SELECT value FROM runtime_settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _put_sync(self, key: str, text: str) -> None:
        self._connection().execute("INSERT INTO runtime_settings (key, value) VALUES (?, ?) "
                                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    def _delete_sync(self, key: str) -> None:
        self._connection().execute("DELETE FROM runtime_settings WHERE key = ?", (key,))


def open_runtime_settings(backend: str, path: str | os.PathLike[str]) -> RuntimeSettings:
    """Beside the state store: the same file for sqlite, a dict for `state.backend = "memory"`."""
    return MemoryRuntimeSettings() if backend == "memory" else SqliteRuntimeSettings(path)


__all__ = ["MemoryRuntimeSettings", "RuntimeSettings", "RuntimeSettingsError", "SqliteRuntimeSettings",
           "open_runtime_settings"]
