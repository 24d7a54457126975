"""SQLite state store: one file, one worker thread, crash-safe writes.

All sqlite3 work runs on ONE dedicated thread (a single-worker executor), so the event loop never
blocks and the connection is only ever touched by the thread that made it. WAL journal with
`synchronous=FULL` and one transaction per upsert: a `kill -9` mid-write leaves the last committed
states. A file that is not a database or is damaged is moved aside (`<path>.corrupt-<ts>`) and a
fresh one started; if no file can be opened at all the store keeps state in memory — losing learned
tokens is better than refusing to serve.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from typing import Any, TypeVar

from .base import AccountState
from .worker import SqliteWorker

logger = logging.getLogger("deepseek2api.store")

T = TypeVar("T")

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("token", "TEXT"),
    ("status", "TEXT NOT NULL DEFAULT 'ready'"),
    ("reason", "TEXT NOT NULL DEFAULT ''"),
    ("until", "REAL"),
    ("updated_at", "REAL NOT NULL DEFAULT 0"),
    ("credentials", "TEXT NOT NULL DEFAULT ''"),
    ("requests", "INTEGER NOT NULL DEFAULT 0"),
    ("failures", "INTEGER NOT NULL DEFAULT 0"),
)
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_UPSERT = (
    f"INSERT INTO accounts (id, {_NAMES}) VALUES (?, {', '.join('?' for _ in _COLUMNS)}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n, _ in _COLUMNS)}"
)
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class _Corrupt(Exception):
    """The file exists but is not a healthy SQLite database."""


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return True
    return not isinstance(exc, sqlite3.OperationalError)


class SqliteStateStore(SqliteWorker):
    """`StateStore` on a SQLite file (default `state.db`), opened lazily on its worker thread."""

    closed_message = "the state store is closed"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__("ds2api-state")
        self.path = os.fspath(path)
        self.persistent = True  # False once we had to fall back to an in-memory database
        self.moved_aside: list[str] = []  # corrupt files we renamed (for tests and status pages)

    # ---- public, async ---------------------------------------------------------------

    async def load(self) -> dict[str, AccountState]:
        return await self._run(self._load_sync)

    async def save(self, account_id: str, state: AccountState) -> None:
        await self._run(self._save_sync, account_id, state)

    # ---- worker thread ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_file()
        except _Corrupt as exc:
            logger.warning("state store %s is unusable (%s): moving it aside and starting fresh", self.path, exc)
            try:
                self._move_aside()
                return self._open_file()
            except (OSError, sqlite3.Error, _Corrupt) as again:
                return self._open_memory(f"cannot start a fresh file ({again})")
        except (OSError, sqlite3.Error) as exc:
            return self._open_memory(str(exc))

    def _open_file(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self._create_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                logger.warning("state store %s: WAL journal unavailable (got %s)", self.path, mode)
            conn.execute("PRAGMA synchronous=FULL")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise _Corrupt(f"integrity check failed: {check[0] if check else 'no answer'}")
            self._ensure_schema(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_corruption(exc):
                raise _Corrupt(str(exc)) from None
            raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_memory(self, why: str) -> sqlite3.Connection:
        logger.warning(
            "state store %s cannot be opened (%s): keeping account state in memory only (lost on restart)",
            self.path,
            why,
        )
        self.persistent = False
        conn = sqlite3.connect(":memory:", isolation_level=None)
        self._ensure_schema(conn)
        return conn

    @staticmethod
    def _create_private(path: str) -> None:
        """Create the file 0600 (it holds tokens); tighten an existing file readable by others."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                try:
                    os.chmod(path, 0o600)
                except OSError:
                    logger.warning("state store %s is readable by other users and holds tokens", path)
            return
        os.close(fd)

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)
        conn.execute(f"CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, {columns})")
        present = {row[1] for row in conn.execute("PRAGMA table_info(accounts)")}
        for name, kind in _COLUMNS:  # a file from an older version: add what is missing
            if name not in present:
                conn.execute(f"ALTER TABLE accounts ADD COLUMN {name} {kind}")

    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = f"{self.path}.corrupt-{stamp}"
        counter = 1
        while os.path.exists(target):
            counter += 1
            target = f"{self.path}.corrupt-{stamp}-{counter}"
        for suffix in _SIDE_FILES:
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, target + suffix)
        self.moved_aside.append(target)
        logger.warning("state store: moved the damaged file to %s", target)

    def _recover(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """The database went bad while running: move it aside and continue on a fresh one."""
        logger.warning("state store %s failed (%s): moving it aside and starting fresh", self.path, exc)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.persistent:
            try:
                self._move_aside()
            except OSError as err:
                self._conn = self._open_memory(str(err))
                return self._conn
        return self._connection()

    def _load_sync(self) -> dict[str, AccountState]:
        query = f"SELECT id, {_NAMES} FROM accounts"
        try:
            rows = self._connection().execute(query).fetchall()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            rows = self._recover(exc).execute(query).fetchall()
        return {str(row[0]): _state_from_row(row[1:]) for row in rows}

    def _save_sync(self, account_id: str, state: AccountState) -> None:
        try:
            self._upsert(self._connection(), account_id, state)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._upsert(self._recover(exc), account_id, state)

    @staticmethod
    def _upsert(conn: sqlite3.Connection, account_id: str, state: AccountState) -> None:
        values = (
            account_id,
            state.token,
            state.status,
            state.reason,
            state.until,
            state.updated_at,
            state.credentials,
            state.requests,
            state.failures,
        )
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_UPSERT, values)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _close_sync(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self._conn.close()
        self._conn = None


def _state_from_row(row: tuple[Any, ...]) -> AccountState:
    token, status, reason, until, updated_at, credentials, requests, failures = row
    return AccountState(
        token=str(token) if token else None,
        status=str(status or "ready"),
        reason=str(reason or ""),
        until=float(until) if isinstance(until, (int, float)) else None,
        updated_at=float(updated_at) if isinstance(updated_at, (int, float)) else 0.0,
        credentials=str(credentials or ""),
        requests=int(requests) if isinstance(requests, int) else 0,
        failures=int(failures) if isinstance(failures, int) else 0,
    )
