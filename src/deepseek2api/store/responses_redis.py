"""The response store in Redis (`cluster.redis_url`): every replica reads what any replica stored.

Same rules as store/responses.py (owner per response, chains by reference, TTL, size limits); a replica
that dies loses nothing, since nothing is kept in it. Keys, all under the cluster's prefix
(`ds2:{name}:`, one Redis Cluster slot):

- `resp:<id>` — a hash: `o` owner, `p` previous response id ("" for none), `s` size, `d` the JSON; it
  expires with the response (PEXPIREAT).
- `respitem:<owner>:<item id>` — the id of the response that holds the item (latest wins), same expiry.
- `respown:<owner>` — a sorted set of the owner's responses by expiry (ms), and `respsize:<owner>` their
  sizes: `put` prunes the expired ones, sums the rest and refuses beyond `max_owner_bytes`, in one script.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .responses import MAX_CHAIN, PutResult, StoredResponse, StoreLimits, decode_record

_PUT = """
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local size = tonumber(ARGV[3])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[3], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local used = 0
for _, value in ipairs(redis.call('HVALS', KEYS[3])) do used = used + tonumber(value) end
if used + size > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[6], 'p', ARGV[7], 's', size, 'd', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('ZADD', KEYS[2], exp, ARGV[5])
redis.call('HSET', KEYS[3], ARGV[5], size)
for i = 4, #KEYS do redis.call('SET', KEYS[i], ARGV[5], 'PXAT', exp) end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
redis.call('PEXPIREAT', KEYS[3], last[2])
return 1
"""

_DELETE = """
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

_LINKS = """
local found = {}
local id = ARGV[2]
while id ~= '' and #found < tonumber(ARGV[3]) * 2 do
  local row = redis.call('HMGET', ARGV[1] .. 'resp:' .. id, 'o', 'p')
  if row[1] ~= ARGV[4] then break end
  found[#found + 1] = id
  found[#found + 1] = row[2] or ''
  id = row[2] or ''
end
return found
"""

DECODE_OFF_LOOP = 256 * 1024  # bytes of stored JSON above which decoding runs on a thread


class RedisResponseStore:
    """`ResponseStore` in Redis; `prefix` is the cluster's (pool/cluster/config.py `ClusterConfig.prefix`)."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl: float, limits: StoreLimits | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.limits = limits or StoreLimits()
        self._clock = clock
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)
        self._links = client.register_script(_LINKS)

    @classmethod
    def from_url(cls, url: str, prefix: str, ttl: float, limits: StoreLimits | None = None, *,
                 timeout: float = 2.0) -> RedisResponseStore:
        """A store on its own connection pool, with the shared pool's timeouts (a slow Redis is an error)."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=timeout, socket_timeout=timeout, socket_connect_timeout=timeout,
            health_check_interval=15, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1))
        return cls(aioredis.Redis(connection_pool=pool), prefix, ttl, limits)

    def _key(self, response_id: str) -> str:
        return f"{self.prefix}resp:{response_id}"

    def _item_key(self, owner: str, item_id: str) -> str:
        return f"{self.prefix}respitem:{owner}:{item_id}"

    def _owner_keys(self, owner: str) -> list[str]:
        return [f"{self.prefix}respown:{owner}", f"{self.prefix}respsize:{owner}"]

    async def put(self, record: StoredResponse, size: int, data: str) -> PutResult:
        if size > self.limits.max_response_bytes:
            return PutResult.TOO_LARGE
        keys = [self._key(record.id), *self._owner_keys(record.owner),
                *(self._item_key(record.owner, item_id) for item_id in dict.fromkeys(record.item_ids()))]
        args: list[str | int] = [int(self._clock() * 1000), int(record.expires_at * 1000), size,
                                 self.limits.max_owner_bytes, record.id, record.owner, record.previous_id or "", data]
        stored = await self._put(keys=keys, args=args)
        return PutResult.STORED if int(stored) == 1 else PutResult.OWNER_FULL

    async def get_many(self, owner: str, ids: Sequence[str]) -> dict[str, StoredResponse]:
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for response_id in ids:
                pipe.hmget(self._key(response_id), "o", "p", "d")
                pipe.pexpiretime(self._key(response_id))
            replies = await pipe.execute()
        rows: list[tuple[str, str | None, str, float]] = []
        for index, response_id in enumerate(ids):
            (stored_owner, previous, data), expires_ms = replies[2 * index], replies[2 * index + 1]
            if stored_owner is None or _text(stored_owner) != owner or data is None or int(expires_ms) <= 0:
                continue
            rows.append((response_id, _text(previous) or None, _text(data), int(expires_ms) / 1000))
        if sum(len(row[2]) for row in rows) > DECODE_OFF_LOOP:
            return await asyncio.to_thread(_decode_rows, owner, rows)
        return _decode_rows(owner, rows)

    async def links(self, owner: str, response_id: str) -> list[tuple[str, str | None]]:
        """One script walks the `p` links (the keys it reads are named by the links themselves)."""
        flat: list[Any] = await self._links(keys=[self._key(response_id)],
                                            args=[self.prefix, response_id, MAX_CHAIN, owner])
        pairs = [(_text(flat[i]), _text(flat[i + 1]) or None) for i in range(0, len(flat), 2)]
        return pairs

    async def locate(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        if not item_ids:
            return {}
        values = await self.client.mget([self._item_key(owner, item_id) for item_id in item_ids])
        return {item_id: _text(value) for item_id, value in zip(item_ids, values, strict=True) if value is not None}

    async def extend(self, owner: str, records: Sequence[StoredResponse], expires_at: float) -> None:
        if not records:
            return
        when = int(expires_at * 1000)
        owned, sizes = self._owner_keys(owner)
        async with self.client.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.pexpireat(self._key(record.id), when, gt=True)
                pipe.zadd(owned, {record.id: when}, xx=True, gt=True)
                for item_id in record.item_ids():
                    pipe.pexpireat(self._item_key(owner, item_id), when, gt=True)
            pipe.pexpireat(owned, when, gt=True)
            pipe.pexpireat(sizes, when, gt=True)
            await pipe.execute()

    async def delete(self, owner: str, response_id: str) -> bool:
        deleted = await self._delete(keys=[self._key(response_id), *self._owner_keys(owner)],
                                     args=[owner, response_id])
        return int(deleted) == 1

    async def used(self, owner: str) -> int:
        owned, sizes = self._owner_keys(owner)
        live: list[Any] = await self.client.zrangebyscore(owned, int(self._clock() * 1000) + 1, "+inf")
        if not live:
            return 0
        found: list[Any] = await self.client.hmget(sizes, [_text(member) for member in live])
        return sum(int(size) for size in found if size is not None)

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else str(value)


def _decode_rows(owner: str, rows: Sequence[tuple[str, str | None, str, float]]) -> dict[str, StoredResponse]:
    found: dict[str, StoredResponse] = {}
    for response_id, previous, data, expires_at in rows:
        record = decode_record(response_id, owner, previous, data, expires_at)
        if record is not None:
            found[response_id] = record
    return found


__all__ = ["RedisResponseStore"]
