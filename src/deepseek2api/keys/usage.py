"""What each key used, per model, per minute and per UTC day: counted on the loop, written in batches.

`record` is called once per finished turn (api/keys/gate.py) and only adds to dicts (≈ 2 µs); a background
task hands the deltas to the usage store every `flush_every` seconds (one transaction off the loop), so a
request never waits on the disk. Today's tokens per key are kept in memory for `tokens_per_day` (loaded
from the store at start, so the limit survives a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store.usage import MINUTE_RETENTION, UsageRow, UsageStore
from .limiter import DAY

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0  # seconds between writes of the pending deltas


@dataclass(frozen=True, slots=True)
class TurnCounts:
    """One finished turn, as the ledger counts it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0  # answer + reasoning, as the clients' usage reports it
    reasoning_tokens: int = 0
    error: bool = False
    seconds: float = 0.0  # from admission to the end of the turn


class UsageLedger:
    """Per-key usage of this process, flushed to the store; today's tokens for the daily limit."""

    def __init__(self, store: UsageStore, *, clock: Callable[[], float] = time.time,
                 flush_every: float = FLUSH_EVERY, shared: bool = False) -> None:
        self._store = store
        self._shared = shared  # other processes add to the store too: re-read today's totals after each write
        self._clock = clock
        self._flush_every = flush_every
        self._pending: dict[tuple[str, int, str, str], UsageRow] = {}
        self._today = int(clock() // DAY)
        self._tokens_today: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # since this process started, per (key, model): the opt-in /metrics series (api/keys/metrics.py)
        self.totals: dict[tuple[str, str], UsageRow] = {}

    async def start(self) -> None:
        """Today's tokens from the store (the daily limit holds across restarts), then the writer."""
        try:
            await self._refresh_today()
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the gateway
            log.warning("could not read today's key usage (%s): daily limits start from zero", exc)
        self._task = asyncio.get_running_loop().create_task(self._write_loop())

    async def _refresh_today(self) -> None:
        """Today's tokens per key as the store has them, plus what this process has not written yet."""
        day = int(self._clock() // DAY)
        rows = await self._store.query("day", day, day + 1)
        totals: dict[str, int] = {}
        for row in [*rows, *(r for r in self._pending.values() if r.span == "day" and r.bucket == day)]:
            totals[row.key] = totals.get(row.key, 0) + row.prompt_tokens + row.completion_tokens
        self._today, self._tokens_today = day, totals

    def record(self, key: str, model: str, counts: TurnCounts) -> None:
        now = self._clock()
        day, minute = int(now // DAY), int(now // 60)
        if day != self._today:
            self._today, self._tokens_today = day, {}
        tokens = counts.prompt_tokens + counts.completion_tokens
        if tokens:
            self._tokens_today[key] = self._tokens_today.get(key, 0) + tokens
        total = self.totals.get((key, model))
        if total is None:
            total = self.totals[(key, model)] = UsageRow("total", 0, key, model)
        for span, bucket in (("minute", minute), ("day", day)):
            slot = (span, bucket, key, model)
            row = self._pending.get(slot)
            if row is None:
                row = self._pending[slot] = UsageRow(span, bucket, key, model)
            row.requests += 1
            row.prompt_tokens += counts.prompt_tokens
            row.completion_tokens += counts.completion_tokens
            row.reasoning_tokens += counts.reasoning_tokens
            row.errors += int(counts.error)
            row.stream_seconds += counts.seconds
        total.requests += 1
        total.prompt_tokens += counts.prompt_tokens
        total.completion_tokens += counts.completion_tokens
        total.reasoning_tokens += counts.reasoning_tokens
        total.errors += int(counts.error)
        total.stream_seconds += counts.seconds

    def tokens_today(self, key: str) -> int:
        if int(self._clock() // DAY) != self._today:
            return 0
        return self._tokens_today.get(key, 0)

    async def flush(self) -> None:
        """Write every delta so far (the usage API calls this before it reads)."""
        async with self._lock:
            if not self._pending:
                return
            rows, self._pending = list(self._pending.values()), {}
            prune = int((self._clock() - MINUTE_RETENTION) // 60)
            try:
                await self._store.add(rows, prune)
                if self._shared:
                    await self._refresh_today()
            except Exception as exc:  # noqa: BLE001 - kept for the next write
                log.warning("could not write key usage (%s); retrying with the next write", exc)
                for row in rows:
                    slot = (row.span, row.bucket, row.key, row.model)
                    kept = self._pending.get(slot)
                    if kept is None:
                        self._pending[slot] = row
                    else:
                        kept.add(row)

    async def query(self, span: str, since: int, until: int, key: str | None = None,
                    model: str | None = None) -> list[UsageRow]:
        await self.flush()
        return await self._store.query(span, since, until, key, model)

    async def _write_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


__all__ = ["FLUSH_EVERY", "TurnCounts", "UsageLedger"]
