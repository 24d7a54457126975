"""Usage per key in Redis (cluster mode): every replica adds its deltas to the same counters.

One hash per span and bucket, `ds2:{<cluster>}:usage:<span>:<bucket>`, fields `<key>\\x1f<model>\\x1f<count>`.
The ledger (keys/usage.py) writes its pending deltas once a second in ONE pipeline (HINCRBY / HINCRBYFLOAT
and an EXPIRE on minute buckets) and reads today's totals back in the same beat, so a request makes no
Redis round trip of its own and `tokens_per_day` holds across replicas (up to a second behind).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from .usage import COUNTS, MINUTE_RETENTION, UsageRow

SEP = "\x1f"
MAX_BUCKETS = 2000  # buckets read per query (a day of minutes is 1440)


class RedisUsageStore:
    def __init__(self, url: str, prefix: str, *, timeout: float = 2.0) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._prefix = prefix + "usage:"

    def _hash(self, span: str, bucket: int) -> str:
        return f"{self._prefix}{span}:{bucket}"

    async def add(self, rows: Sequence[UsageRow], prune_before_minute: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        expiring: set[str] = set()
        for row in rows:
            name = self._hash(row.span, row.bucket)
            base = f"{row.key}{SEP}{row.model}{SEP}"
            for count in COUNTS:
                value = getattr(row, count)
                if not value:
                    continue
                if isinstance(value, float):
                    pipe.hincrbyfloat(name, base + count, value)
                else:
                    pipe.hincrby(name, base + count, value)
            if row.span == "minute":
                expiring.add(name)
        for name in expiring:
            pipe.expire(name, int(MINUTE_RETENTION))
        await pipe.execute()

    async def query(self, span: str, since: int, until: int, key: str | None = None,
                    model: str | None = None) -> list[UsageRow]:
        until = min(until, since + MAX_BUCKETS)
        pipe = self._redis.pipeline(transaction=False)
        for bucket in range(since, until):
            pipe.hgetall(self._hash(span, bucket))
        found = await pipe.execute()
        out: list[UsageRow] = []
        for bucket, fields in zip(range(since, until), found, strict=True):
            rows: dict[tuple[str, str], UsageRow] = {}
            for raw_field, raw_value in (fields or {}).items():
                parts = raw_field.decode("utf-8", "replace").split(SEP)
                if len(parts) != 3 or parts[2] not in COUNTS:
                    continue
                name, model_name, count = parts
                if (key is not None and name != key) or (model is not None and model_name != model):
                    continue
                row = rows.setdefault((name, model_name), UsageRow(span, bucket, name, model_name))
                number = float(raw_value)
                setattr(row, count, number if count == "stream_seconds" else int(number))
            out.extend(sorted(rows.values(), key=lambda r: (r.key, r.model)))
        return out

    async def close(self) -> None:
        await self._redis.aclose()


__all__ = ["RedisUsageStore"]
