"""The last few hundred requests, in memory: the console's live tail and its traffic figures.

A ring buffer (old entries fall off; memory stays flat for weeks) plus one bounded queue per open
tail. `record()` never waits: a tail that cannot keep up loses entries (and is told how many) rather
than slowing requests down. Everything runs on the event loop; call `record()` from it.
`RequestRecorder` is the observer every surface reports to: it feeds this log and the metrics.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass

from ..metrics import GatewayMetrics, Outcome
from ..observe import FinishedRequest

DEFAULT_SIZE = 500
MODEL_CHARS = 100  # of a model name the log keeps (the longest documented name is ~30)
TAIL_QUEUE = 256  # entries one slow tail may fall behind before it drops some
STATS_WINDOW = 60.0  # seconds the header strip's rates and percentiles cover


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """One finished request. Names and numbers only: never a key, a prompt or a token."""

    time: float  # unix seconds when it finished
    surface: str  # openai | anthropic | responses | tester
    model: str
    status: int  # HTTP status (499: the client hung up)
    stream: bool = False
    duration: float = 0.0
    ttft: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    account_id: str | None = None
    request_id: str = ""

    @property
    def failed(self) -> bool:
        """Counts toward the error rate: the gateway or DeepSeek failed (5xx) or the pool refused (429).
        A caller's own mistakes (other 4xx) and hang-ups (499) do not."""
        return self.status >= 500 or self.status == 429

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """The header strip's traffic half, over the last `window` seconds."""

    window: float
    requests: int
    requests_per_second: float
    error_rate: float  # 0..1
    ttft_p50: float | None
    ttft_p95: float | None


class RequestLog:
    """Ring buffer of `RequestEntry` with live subscribers."""

    def __init__(self, size: int = DEFAULT_SIZE, *, clock: Callable[[], float] = time.time) -> None:
        self._entries: collections.deque[RequestEntry] = collections.deque(maxlen=size)
        self._tails: set[asyncio.Queue[RequestEntry]] = set()
        self._clock = clock
        self.dropped = 0  # entries some tail could not take (it was too slow)

    def record(self, entry: RequestEntry) -> None:
        if len(entry.model) > MODEL_CHARS:  # a client's 5 MB model name, kept 500 times, sent on every refresh
            entry = dataclasses.replace(entry, model=entry.model[:MODEL_CHARS] + "…")
        self._entries.append(entry)
        for queue in self._tails:
            try:
                queue.put_nowait(entry)
            except asyncio.QueueFull:
                self.dropped += 1

    def recent(self, limit: int | None = None) -> list[RequestEntry]:
        """Oldest first; the last `limit` entries."""
        entries = list(self._entries)
        return entries if limit is None else entries[-limit:] if limit > 0 else []

    @contextlib.asynccontextmanager
    async def tail(self) -> AsyncIterator[asyncio.Queue[RequestEntry]]:
        """`async with log.tail() as queue:` — every entry recorded from now on, until the block ends."""
        queue: asyncio.Queue[RequestEntry] = asyncio.Queue(TAIL_QUEUE)
        self._tails.add(queue)
        try:
            yield queue
        finally:
            self._tails.discard(queue)

    @property
    def tails(self) -> int:
        return len(self._tails)

    def stats(self, window: float = STATS_WINDOW) -> TrafficStats:
        """Requests/s, error rate and p50/p95 time to first token over the last `window` seconds."""
        since = self._clock() - window
        recent = [e for e in self._entries if e.time >= since]
        errors = sum(1 for e in recent if e.failed)
        ttfts = sorted(e.ttft for e in recent if e.ttft is not None)
        return TrafficStats(
            window=window,
            requests=len(recent),
            requests_per_second=len(recent) / window if window > 0 else 0.0,
            error_rate=errors / len(recent) if recent else 0.0,
            ttft_p50=_percentile(ttfts, 0.50),
            ttft_p95=_percentile(ttfts, 0.95),
        )


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile (an observed value, never an interpolation between two)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class RequestRecorder:
    """The gateway's `RequestObserver` (api/observe.py): Prometheus counters and histograms plus the
    console's tail."""

    def __init__(self, metrics: GatewayMetrics, requests: RequestLog) -> None:
        self.metrics = metrics
        self.requests = requests

    def request_finished(self, done: FinishedRequest) -> None:
        # Metrics label the resolved model, so `claude-sonnet-4-5` and `DeepSeek-R1` are not "other".
        self.metrics.request_finished(surface=done.surface, model=done.resolved_model or done.model,
                                      stream=done.stream,
                                      outcome=Outcome.from_status(done.status), duration=done.duration,
                                      ttft=done.ttft, tokens_in=done.tokens_in, tokens_out=done.tokens_out)
        self.requests.record(RequestEntry(time=time.time(), surface=done.surface, model=done.model,
                                          status=done.status, stream=done.stream, duration=done.duration,
                                          ttft=done.ttft, tokens_in=done.tokens_in, tokens_out=done.tokens_out,
                                          account_id=done.account_id, request_id=done.request_id))

    def in_flight(self, surface: str) -> AbstractContextManager[None]:
        return self.metrics.in_flight(surface)


__all__ = ["RequestEntry", "RequestLog", "RequestRecorder", "TrafficStats"]
