"""Whose waiter gets the next free slot: round-robin between owners (API keys), FIFO within one.

Without it the pool's queue is one FIFO, and a key with 20 queued streams holds every slot that frees
up until all 20 ran, while another key's single request waits behind them. Each owner's waiters keep
their order; owners take turns, the one served longest ago (or never) first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar


class Owned(Protocol):
    owner: str


W = TypeVar("W", bound=Owned)


def fair_order(waiters: Iterable[W], served: Mapping[str, int]) -> list[W]:
    """`waiters` (FIFO) reordered: the first of each owner, then the second of each, …; owners by the
    sequence number of their last grant (`served`; never served first), ties by arrival."""
    queues: dict[str, list[W]] = {}
    for waiter in waiters:
        queues.setdefault(waiter.owner, []).append(waiter)
    if len(queues) <= 1:
        return [w for queue in queues.values() for w in queue]
    owners = sorted(queues, key=lambda owner: served.get(owner, 0))  # stable: arrival breaks ties
    out: list[W] = []
    depth = 0
    while len(out) < sum(len(q) for q in queues.values()):
        for owner in owners:
            queue = queues[owner]
            if depth < len(queue):
                out.append(queue[depth])
        depth += 1
    return out


__all__ = ["fair_order"]
