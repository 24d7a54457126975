"""Which chat modes each account may use today, learned from its web settings (deepseek/modes.py).

Since 2026-09 many accounts have expert and vision disabled; a completion sent in a disabled mode comes
back empty. The runner asks here before it sends a non-default `model_type`: the account's settings
are read once and kept for `TTL` seconds; a failed or unreadable read counts as "unknown" (the mode is
tried as before) and is not retried for `RETRY_AFTER` seconds. The operator chooses what happens to a
mode the settings say is off (`upstream.disabled_mode`): fall back to the default mode, or refuse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..deepseek.errors import UpstreamFailure
from ..deepseek.modes import ModelModes

log = logging.getLogger(__name__)

TTL = 3600.0  # seconds a learned answer is trusted (DeepSeek changes modes rarely, and per account)
RETRY_AFTER = 600.0  # seconds before a failed read is tried again
READ_TIMEOUT = 10.0  # a settings read never holds a turn longer than this


class SettingsClient(Protocol):
    async def model_settings(self, token: str, *, proxy: str | None = None) -> ModelModes: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    modes: ModelModes | None  # None: the read failed
    at: float


class ModeBook:
    """Per account: the modes its settings enable or disable, read lazily and cached."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def learn(self, account_id: str, modes: ModelModes) -> None:
        """Record an answer read elsewhere (the live probe)."""
        self._entries[account_id] = _Entry(modes, self._clock())

    async def allows(self, client: SettingsClient, account_id: str, token: str, proxy: str | None,
                     mode: str) -> bool | None:
        """What the account's settings say about `mode` (None: they do not say, or could not be read)."""
        modes = await self._modes(client, account_id, token, proxy)
        return None if modes is None else modes.allows(mode)

    async def _modes(self, client: SettingsClient, account_id: str, token: str,
                     proxy: str | None) -> ModelModes | None:
        entry = self._fresh(account_id)
        if entry is not None:
            return entry.modes
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:  # one read per account at a time
            entry = self._fresh(account_id)
            if entry is not None:
                return entry.modes
            modes: ModelModes | None
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    modes = await client.model_settings(token, proxy=proxy)
            except (UpstreamFailure, TimeoutError) as exc:
                log.info("account %s: could not read its model settings (%s); modes treated as available",
                         account_id, exc)
                modes = None
            self._entries[account_id] = _Entry(modes, self._clock())
            if modes is not None and modes.disabled:
                log.info("account %s: DeepSeek's settings disable mode(s) %s", account_id, ", ".join(modes.disabled))
            return modes

    def _fresh(self, account_id: str) -> _Entry | None:
        entry = self._entries.get(account_id)
        if entry is None:
            return None
        age = self._clock() - entry.at
        return entry if age < (TTL if entry.modes is not None else RETRY_AFTER) else None

    def learned(self) -> Mapping[str, ModelModes]:
        """Accounts whose settings were read (and are still fresh), with what they said."""
        return {account: entry.modes for account, entry in self._entries.items()
                if entry.modes is not None and self._fresh(account) is not None}
