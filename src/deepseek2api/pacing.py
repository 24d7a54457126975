"""Give the event loop back now and then while a turn works through upstream data that is already there.

When the upstream's bytes are buffered faster than they are decoded (a ~1 MB answer from a fast
upstream), every `await` in the decode loop completes at once and the coroutine never yields: a
non-stream 975 KB answer held the loop for 0.7–3 s. `LoopPacer.tick()` yields once
`budget` seconds of work have passed since the last yield (one clock read per event otherwise).
"""

from __future__ import annotations

import asyncio
import time

BUDGET = 0.005  # seconds of uninterrupted work before a yield: well under the ~50 ms a probe may wait


class LoopPacer:
    __slots__ = ("_budget", "_since")

    def __init__(self, budget: float = BUDGET) -> None:
        self._budget = budget
        self._since = time.perf_counter()

    async def tick(self) -> None:
        """Yield to the loop if this task has run for more than the budget since it last did."""
        now = time.perf_counter()
        if now - self._since >= self._budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
