"""Stored Responses-API responses (`previous_response_id`, `item_reference`, `GET /v1/responses/{id}`).

Three rules bound what is kept (README "Stored responses"):
- Every response belongs to the key that made it (`owner`, a fingerprint of the key from api/auth.py,
  never the key): another owner's reads, deletes and links see the same nothing as an unknown id.
- Chains are stored by reference: a response keeps its own input items, its output and a link to the
  previous response (`previous_id`), so a 40-step chain stores 40 steps, not 40·41/2 (a follow-up walks
  the links, `chain_of`). Extending a chain (or referencing items of a response) renews the expiry of
  what it uses (`extend`), so a live response never loses its earlier links to their own TTL.
- Size: one response at most `max_response_bytes`, one owner's live responses together at most
  `max_owner_bytes` (config `responses.*`); `put` refuses beyond, atomically with its own accounting.

Entries expire `ttl` seconds after they were written (config `responses.ttl`); expired ones are invisible
at once and purged from time to time. Backends: memory (here), SQLite (here, the state file, work on one
worker thread as in `sqlite.py`) and Redis (`responses_redis.py`, every replica shares it).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .worker import SqliteWorker

log = logging.getLogger(__name__)

PURGE_EVERY = 256  # writes between two purges of expired entries
MAX_CHAIN = 10_000  # links followed at most (a chain is acyclic; this only bounds a corrupted store)
_SQL_CHUNK = 500  # ids per `IN (…)` (SQLite allows 999 parameters by default)


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """`responses.max_response_bytes` and `responses.max_key_bytes` (bytes of stored JSON)."""

    max_response_bytes: int = 16 * 1024 * 1024
    max_owner_bytes: int = 64 * 1024 * 1024


class PutResult(enum.Enum):
    STORED = "stored"
    TOO_LARGE = "too_large"  # over max_response_bytes
    OWNER_FULL = "owner_full"  # the owner's live responses would exceed max_owner_bytes


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response: `body` (the Response object, with its `output` items), `input_items` (its own input,
    item references kept as references) and `previous_id` (the link to the response it continued)."""

    id: str
    owner: str
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_id: str | None
    expires_at: float

    def data(self) -> str:
        """The JSON kept for it (its size is what the limits count)."""
        return json.dumps({"body": self.body, "input": self.input_items}, ensure_ascii=False, separators=(",", ":"))

    def items(self) -> Iterable[dict[str, Any]]:
        """Every item it holds that an `item_reference` may name: its input items, then its output."""
        for item in (*self.input_items, *(self.body.get("output") or ())):
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item.get("type") != "item_reference":
                yield item

    def item_ids(self) -> list[str]:
        return [str(item["id"]) for item in self.items()]


def decode_record(response_id: str, owner: str, previous_id: str | None, data: str, expires_at: float,
            ) -> StoredResponse | None:
    try:
        value = json.loads(data)
        return StoredResponse(response_id, owner, value["body"], value["input"], previous_id, expires_at)
    except (ValueError, KeyError, TypeError):
        log.warning("stored response %s is unreadable; treated as missing", response_id)
        return None


@runtime_checkable
class ResponseStore(Protocol):
    ttl: float
    limits: StoreLimits

    async def put(self, record: StoredResponse, size: int, data: str) -> PutResult:
        """Keep `record` (`data` = `record.data()`, `size` its UTF-8 bytes) unless a limit refuses it."""
        ...
    async def get_many(self, owner: str, ids: Sequence[str]) -> dict[str, StoredResponse]:
        """The live responses of `owner` among `ids` (unknown, expired and others' left out)."""
        ...
    async def links(self, owner: str, response_id: str) -> list[tuple[str, str | None]]:
        """(id, previous id) of the owner's live responses from `response_id` back along its links, newest
        first, in one call; it stops before the first link that is missing (at most `MAX_CHAIN`)."""
        ...
    async def locate(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        """item id → the id of the owner's live response that holds it (the latest one)."""
        ...
    async def extend(self, owner: str, records: Sequence[StoredResponse], expires_at: float) -> None:
        """Keep `records` (and their items) at least until `expires_at`."""
        ...
    async def delete(self, owner: str, response_id: str) -> bool: ...
    async def used(self, owner: str) -> int:
        """Bytes of the owner's live responses."""
        ...
    async def close(self) -> None: ...


async def get_one(store: ResponseStore, owner: str, response_id: str) -> StoredResponse | None:
    return (await store.get_many(owner, [response_id])).get(response_id)


class BrokenChain(LookupError):
    """A response of the chain is gone (deleted, or lost with its store): `missing` names it."""

    def __init__(self, missing: str) -> None:
        super().__init__(missing)
        self.missing = missing


async def chain_of(store: ResponseStore, owner: str, response_id: str) -> list[StoredResponse] | None:
    """The response and every one before it, oldest first; None when `response_id` itself is unknown.
    Raises `BrokenChain` when a link is missing (the chain cannot be told whole)."""
    links = await store.links(owner, response_id)
    if not links:
        return None
    missing = links[-1][1]
    if missing is not None:
        raise BrokenChain(missing)
    records = await store.get_many(owner, [link for link, _ in links])
    for link, _ in links:
        if link not in records:  # expired or deleted between the two calls
            raise BrokenChain(link)
    return [records[link] for link, _ in reversed(links)]


async def find_items(store: ResponseStore, owner: str, item_ids: Sequence[str],
                     ) -> tuple[dict[str, dict[str, Any]], list[StoredResponse]]:
    """The owner's stored items by id (unknown ones left out), and the responses that hold them."""
    located = await store.locate(owner, list(dict.fromkeys(item_ids)))
    records = await store.get_many(owner, list(dict.fromkeys(located.values())))
    found: dict[str, dict[str, Any]] = {}
    for item_id, response_id in located.items():
        record = records.get(response_id)
        if record is None:
            continue
        for item in record.items():
            if item["id"] == item_id:
                found[item_id] = item
    return found, list(records.values())


# ---- memory ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    record: StoredResponse
    size: int


class MemoryResponseStore:
    """Dicts with expiry: for tests, demos and `state.backend = "memory"`."""

    def __init__(self, ttl: float, limits: StoreLimits | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.limits = limits or StoreLimits()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._items: dict[tuple[str, str], str] = {}  # (owner, item id) → response id
        self._writes = 0

    def _live(self, owner: str, response_id: str) -> _Entry | None:
        entry = self._entries.get(response_id)
        if entry is None or entry.record.owner != owner or entry.record.expires_at <= self._clock():
            return None
        return entry

    async def put(self, record: StoredResponse, size: int, data: str) -> PutResult:
        if size > self.limits.max_response_bytes:
            return PutResult.TOO_LARGE
        if await self.used(record.owner) + size > self.limits.max_owner_bytes:
            return PutResult.OWNER_FULL
        self._entries[record.id] = _Entry(record, size)
        for item_id in record.item_ids():
            self._items[(record.owner, item_id)] = record.id
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            self._purge()
        return PutResult.STORED

    def _purge(self) -> None:
        now = self._clock()
        for response_id in [k for k, v in self._entries.items() if v.record.expires_at <= now]:
            del self._entries[response_id]
        for item_key in [k for k, v in self._items.items() if v not in self._entries]:
            del self._items[item_key]

    async def get_many(self, owner: str, ids: Sequence[str]) -> dict[str, StoredResponse]:
        return {i: entry.record for i in ids if (entry := self._live(owner, i)) is not None}

    async def links(self, owner: str, response_id: str) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        wanted: str | None = response_id
        while wanted is not None and len(found) < MAX_CHAIN and (entry := self._live(owner, wanted)) is not None:
            found.append((wanted, entry.record.previous_id))
            wanted = entry.record.previous_id
        return found

    async def locate(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        return {i: rid for i in item_ids if (rid := self._items.get((owner, i))) is not None
                and self._live(owner, rid) is not None}

    async def extend(self, owner: str, records: Sequence[StoredResponse], expires_at: float) -> None:
        for record in records:
            entry = self._live(owner, record.id)
            if entry is not None and entry.record.expires_at < expires_at:
                entry.record = _with_expiry(entry.record, expires_at)

    async def delete(self, owner: str, response_id: str) -> bool:
        if self._live(owner, response_id) is None:
            return False
        del self._entries[response_id]
        return True

    async def used(self, owner: str) -> int:
        now = self._clock()
        return sum(e.size for e in self._entries.values() if e.record.owner == owner and e.record.expires_at > now)

    async def close(self) -> None:
        return None


def _with_expiry(record: StoredResponse, expires_at: float) -> StoredResponse:
    return StoredResponse(record.id, record.owner, record.body, record.input_items, record.previous_id, expires_at)


# ---- SQLite ---------------------------------------------------------------------------------


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _SQL_CHUNK):
        yield values[start:start + _SQL_CHUNK]


class SqliteResponseStore(SqliteWorker):
    """`ResponseStore` in two tables of the state file (default `state.db`): `stored_responses` (one row per
    response) and `stored_items` (which response holds an item id, per owner)."""

    closed_message = "the response store is closed"

    def __init__(self, path: str | os.PathLike[str], ttl: float, limits: StoreLimits | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("ds2api-responses")
        self.path = os.fspath(path)
        self.ttl = ttl
        self.limits = limits or StoreLimits()
        self._clock = clock
        self._writes = 0

    async def put(self, record: StoredResponse, size: int, data: str) -> PutResult:
        if size > self.limits.max_response_bytes:
            return PutResult.TOO_LARGE
        self._writes += 1
        purge = self._writes % PURGE_EVERY == 1
        return await self._run(self._put_sync, record, data, size, self._clock(), purge)

    async def get_many(self, owner: str, ids: Sequence[str]) -> dict[str, StoredResponse]:
        if not ids:
            return {}
        return await self._run(self._get_sync, owner, list(ids), self._clock())

    async def links(self, owner: str, response_id: str) -> list[tuple[str, str | None]]:
        return await self._run(self._links_sync, owner, response_id, self._clock())

    async def locate(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        if not item_ids:
            return {}
        return await self._run(self._locate_sync, owner, list(item_ids), self._clock())

    async def extend(self, owner: str, records: Sequence[StoredResponse], expires_at: float) -> None:
        if records:
            await self._run(self._extend_sync, owner, [r.id for r in records], expires_at)

    async def delete(self, owner: str, response_id: str) -> bool:
        return await self._run(self._delete_sync, owner, response_id, self._clock())

    async def used(self, owner: str) -> int:
        return await self._run(self._used_sync, owner, self._clock())

    # ---- worker thread ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            if not os.path.exists(self.path):  # conversations are private: 0600, like the account state
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            # 0.2.0's table kept whole chains and no owner: its rows cannot be tied to a key, so they go
            conn.execute("DROP TABLE IF EXISTS responses")
            # the small columns first and a covering index for the per-owner sum: neither reads `data`
            conn.execute("CREATE TABLE IF NOT EXISTS stored_responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                         "previous_id TEXT, size INTEGER NOT NULL, expires_at REAL NOT NULL, data TEXT NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS stored_responses_owner "
                         "ON stored_responses (owner, expires_at, size)")
            conn.execute("CREATE INDEX IF NOT EXISTS stored_responses_expiry ON stored_responses (expires_at)")
            conn.execute("CREATE TABLE IF NOT EXISTS stored_items (owner TEXT NOT NULL, item_id TEXT NOT NULL, "
                         "response_id TEXT NOT NULL, PRIMARY KEY (owner, item_id))")
            conn.execute("CREATE INDEX IF NOT EXISTS stored_items_response ON stored_items (response_id)")
            self._conn = conn
        return self._conn

    def _used_sync(self, owner: str, now: float) -> int:
        row = self._connection().execute("SELECT COALESCE(SUM(size), 0) FROM stored_responses "
                                         "WHERE owner = ? AND expires_at > ?", (owner, now)).fetchone()
        return int(row[0])

    def _put_sync(self, record: StoredResponse, data: str, size: int, now: float, purge: bool) -> PutResult:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if purge:
                conn.execute("DELETE FROM stored_items WHERE response_id IN "
                             "(SELECT id FROM stored_responses WHERE expires_at <= ?)", (now,))
                conn.execute("DELETE FROM stored_responses WHERE expires_at <= ?", (now,))
            if self._used_sync(record.owner, now) + size > self.limits.max_owner_bytes:
                conn.execute("COMMIT")
                return PutResult.OWNER_FULL
            conn.execute("INSERT OR REPLACE INTO stored_responses (id, owner, previous_id, size, expires_at, data) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (record.id, record.owner, record.previous_id, size, record.expires_at, data))
            conn.executemany("INSERT OR REPLACE INTO stored_items (owner, item_id, response_id) VALUES (?, ?, ?)",
                             [(record.owner, item_id, record.id) for item_id in record.item_ids()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return PutResult.STORED

    def _get_sync(self, owner: str, ids: list[str], now: float) -> dict[str, StoredResponse]:
        found: dict[str, StoredResponse] = {}
        conn = self._connection()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT id, previous_id, data, expires_at FROM stored_responses "
                                f"WHERE owner = ? AND expires_at > ? AND id IN ({marks})", (owner, now, *chunk))
            for response_id, previous_id, data, expires_at in rows:
                record = decode_record(str(response_id), owner, previous_id, str(data), float(expires_at))
                if record is not None:
                    found[record.id] = record
        return found

    def _links_sync(self, owner: str, response_id: str, now: float) -> list[tuple[str, str | None]]:
        rows = self._connection().execute(
            "WITH RECURSIVE walk(id, previous_id, depth) AS ("
            " SELECT id, previous_id, 0 FROM stored_responses WHERE id = ? AND owner = ? AND expires_at > ?"
            " UNION ALL SELECT r.id, r.previous_id, w.depth + 1 FROM stored_responses r JOIN walk w"
            " ON r.id = w.previous_id WHERE r.owner = ? AND r.expires_at > ? AND w.depth + 1 < ?)"
            " SELECT id, previous_id FROM walk ORDER BY depth",
            (response_id, owner, now, owner, now, MAX_CHAIN))
        return [(str(link), None if previous is None else str(previous)) for link, previous in rows]

    def _locate_sync(self, owner: str, item_ids: list[str], now: float) -> dict[str, str]:
        found: dict[str, str] = {}
        conn = self._connection()
        for chunk in _chunks(item_ids):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT i.item_id, i.response_id FROM stored_items i "
                                f"JOIN stored_responses r ON r.id = i.response_id AND r.owner = i.owner "
                                f"WHERE i.owner = ? AND r.expires_at > ? AND i.item_id IN ({marks})",
                                (owner, now, *chunk))
            found.update((str(item_id), str(response_id)) for item_id, response_id in rows)
        return found

    def _extend_sync(self, owner: str, ids: list[str], expires_at: float) -> None:
        conn = self._connection()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            conn.execute(f"UPDATE stored_responses SET expires_at = ? "
                         f"WHERE owner = ? AND expires_at < ? AND id IN ({marks})",
                         (expires_at, owner, expires_at, *chunk))

    def _delete_sync(self, owner: str, response_id: str, now: float) -> bool:
        conn = self._connection()
        cursor = conn.execute("DELETE FROM stored_responses WHERE id = ? AND owner = ? AND expires_at > ?",
                              (response_id, owner, now))
        if cursor.rowcount != 1:
            return False
        conn.execute("DELETE FROM stored_items WHERE response_id = ?", (response_id,))
        return True


def open_response_store(backend: str, path: str, ttl: float, limits: StoreLimits | None = None) -> ResponseStore:
    """The store the `state` section asks for; sqlite shares the state file (its own tables). Cluster mode
    (`cluster.redis_url`) uses `responses_redis.RedisResponseStore` instead (server.py)."""
    if backend == "memory":
        return MemoryResponseStore(ttl, limits)
    return SqliteResponseStore(path, ttl, limits)


def encoded(record: StoredResponse) -> tuple[str, int]:
    """`record.data()` and its size in bytes."""
    data = record.data()
    return data, len(data.encode("utf-8", "surrogatepass"))


__all__ = [
    "BrokenChain",
    "MemoryResponseStore",
    "PutResult",
    "ResponseStore",
    "SqliteResponseStore",
    "StoreLimits",
    "StoredResponse",
    "chain_of",
    "decode_record",
    "encoded",
    "find_items",
    "get_one",
    "open_response_store",
]
