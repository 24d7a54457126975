"""What every part of the in-process pool shares: its accounts, settings, clock, exits and observer.

`AccountPool` (pool/accounts.py) builds one and hands it to its parts (queue, tokens, health,
persistence, console, views), so they read the same records without reaching into each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..settings import PoolSettings
from .errors import EditRefusal, PoolEditRefused
from .observe import PoolObserver
from .proxies import ProxyPool
from .record import AccountRecord


@dataclass(eq=False)
class PoolCore:
    """The pool's shared state; `accounts` keeps config order, then runtime additions."""

    settings: PoolSettings
    proxies: ProxyPool
    clock: Callable[[], float] = time.time
    observer: PoolObserver | None = None
    accounts: dict[str, AccountRecord] = field(default_factory=dict)

    def get(self, account_id: str) -> AccountRecord:
        """One account's record; raises NOT_FOUND (the console's and `only=` leases' answer)."""
        acc = self.accounts.get(account_id)
        if acc is None:
            raise PoolEditRefused(EditRefusal.NOT_FOUND, f"no account {account_id!r}")
        return acc


__all__ = ["PoolCore"]
