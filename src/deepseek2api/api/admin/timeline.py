"""The console's pictures over time that no counter store holds: time to first token, account states and
queue depth — per minute for the last day and per hour for the last 30 days, in memory (since start).

Requests and tokens per key and model come from the usage ledger (keys/usage.py, persisted); this adds
what is sampled: each finished turn's TTFT (api/keys/gate.py) and, every `SAMPLE_EVERY` seconds, the
pool's account states and waiting requests. Bounded: at most 1440 minute and 720 hour points, each
with at most `MAX_SAMPLES` TTFT samples.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SAMPLE_EVERY = 10.0  # seconds between samples of the pool
MAX_SAMPLES = 600  # TTFT samples kept per point (the percentiles of a busier minute come from the first ones)
SPANS = {"hour": (60, 60), "day": (60, 1440), "month": (3600, 720)}  # range → (bucket seconds, buckets)


@dataclass(slots=True)
class _Point:
    ttft: list[float] = field(default_factory=list)
    queue_max: int = 0
    states: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


PoolSample = Callable[[], tuple[Mapping[str, int], int]]  # (accounts per state, requests waiting)


class Timeline:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._minutes: collections.OrderedDict[int, _Point] = collections.OrderedDict()
        self._hours: collections.OrderedDict[int, _Point] = collections.OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def _points(self, now: float) -> tuple[_Point, _Point]:
        out = []
        for points, width, keep in ((self._minutes, 60, 1440), (self._hours, 3600, 720)):
            bucket = int(now // width)
            point = points.get(bucket)
            if point is None:
                point = points[bucket] = _Point()
                while len(points) > keep:
                    points.popitem(last=False)
            out.append(point)
        return out[0], out[1]

    def ttft(self, seconds: float) -> None:
        for point in self._points(self._clock()):
            if len(point.ttft) < MAX_SAMPLES:
                point.ttft.append(seconds)

    def sample(self, states: Mapping[str, int], waiting: int) -> None:
        for point in self._points(self._clock()):
            point.queue_max = max(point.queue_max, waiting)
            point.states = dict(states)

    def series(self, span: str) -> dict[str, Any]:
        """`{"step": seconds, "points": [{"t", "ttft_p50", "ttft_p90", "ttft_p99", "queue", "states"}]}`."""
        width, count = SPANS.get(span, SPANS["hour"])
        points = self._minutes if width == 60 else self._hours
        end = int(self._clock() // width) + 1
        out = []
        for bucket in range(end - count, end):
            point = points.get(bucket)
            if point is None:
                continue
            out.append({"t": bucket * width, "ttft_p50": percentile(point.ttft, 0.5),
                        "ttft_p90": percentile(point.ttft, 0.9), "ttft_p99": percentile(point.ttft, 0.99),
                        "queue": point.queue_max, "states": point.states})
        return {"step": width, "start": (end - count) * width, "end": end * width, "points": out}

    def start(self, sample: PoolSample) -> None:
        async def loop() -> None:
            while True:
                try:
                    states, waiting = sample()
                    self.sample(states, waiting)
                except Exception as exc:  # noqa: BLE001 - a sampling hiccup must not end the sampler
                    log.debug("timeline sample failed: %s", exc)
                await asyncio.sleep(SAMPLE_EVERY)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = ["SAMPLE_EVERY", "SPANS", "PoolSample", "Timeline", "percentile"]
