"""Who gets the next free slot, and, when nobody can, why: pure functions over the account records.

The pool's FIFO queue asks `choose` for each waiter in order; when it returns None, `verdict` says
whether waiting (until the waiter's deadline) can still help, or gives the `PoolExhausted` to answer.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import PoolExhausted, PoolReason
from .record import AccountRecord

MAX_COOLING_RETRY_AFTER = 120.0  # cap of retry_after when everything is cooling / muted
BUSY_RETRY_AFTER = 5.0  # rough guess of when a slot frees up


@dataclass(frozen=True, slots=True)
class Limits:
    per_account: int  # concurrent leases per account
    queue_timeout: float  # seconds a request may wait for a slot


def choose(accounts: Iterable[AccountRecord], exclude: frozenset[str], now: float, cap: int,
           rng: random.Random) -> AccountRecord | None:
    """Least recently used usable account with a free slot (fewest in use first), random tie-break."""
    candidates = [acc for acc in accounts if acc.in_use < cap and acc.id not in exclude and acc.usable(now)]
    if not candidates:
        return None
    best = min((acc.in_use, acc.last_used) for acc in candidates)
    return rng.choice([acc for acc in candidates if (acc.in_use, acc.last_used) == best])


def next_wake(accounts: Iterable[AccountRecord], now: float) -> float | None:
    """When the first cooling/muted account comes back (None: none will by itself)."""
    pending = [acc.until for acc in accounts if acc.status.timed and acc.until and acc.until > now]
    return min(pending) if pending else None


def verdict(accounts: Iterable[AccountRecord], exclude: frozenset[str], now: float, deadline: float,
            limits: Limits) -> PoolExhausted | None:
    """None when waiting until `deadline` can help; else why not."""
    records = list(accounts)
    candidates = [acc for acc in records if acc.id not in exclude]
    if any(acc.usable(now) for acc in candidates):
        return None
    pending = [acc.until for acc in candidates if acc.status.timed and acc.until and acc.until > now]
    if pending:
        if min(pending) <= deadline:
            return None
        return exhausted(records, PoolReason.ALL_COOLING, exclude, now, limits)
    return exhausted(records, PoolReason.NONE_USABLE, exclude, now, limits)


def exhausted(accounts: Iterable[AccountRecord], reason: PoolReason, exclude: frozenset[str], now: float,
              limits: Limits) -> PoolExhausted:
    """The answer for `reason`, with a message that says what the accounts are doing and a Retry-After."""
    records = list(accounts)
    if reason == PoolReason.ALL_BUSY:
        usable = sum(1 for acc in records if acc.usable(now) and acc.id not in exclude)
        return PoolExhausted(
            reason,
            f"all {usable} usable accounts are busy (at most {limits.per_account} "
            f"request(s) each); waited {limits.queue_timeout:g}s",
            BUSY_RETRY_AFTER,
        )
    if reason == PoolReason.ALL_COOLING:
        pending = [acc.until for acc in records
                   if acc.id not in exclude and acc.status.timed and acc.until and acc.until > now]
        wait = min(pending) - now if pending else BUSY_RETRY_AFTER
        return PoolExhausted(
            reason,
            f"all usable accounts are cooling down (rate limited, busy or muted); the first is back in {wait:.0f}s",
            float(min(MAX_COOLING_RETRY_AFTER, max(1.0, wait))),
        )
    if not records:
        return PoolExhausted(reason, "no accounts are configured", 60.0)
    tried = sum(1 for acc in records if acc.id in exclude and acc.usable(now))
    if tried:
        return PoolExhausted(reason, f"every usable account ({tried}) was already tried for this request", 1.0)
    counts = collections.Counter(acc.status for acc in records)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return PoolExhausted(reason, f"no usable account ({summary})", 60.0)
