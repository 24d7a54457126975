"""In-memory state store: for tests, demos and `state.backend = "memory"` (nothing survives a restart)."""

from __future__ import annotations

from .base import AccountState


class MemoryStateStore:
    """A dict behind the `StateStore` interface (states are immutable, so no copies are needed)."""

    def __init__(self) -> None:
        self._states: dict[str, AccountState] = {}
        self.saves = 0  # how many save() calls happened (tests use it to see persistence work)

    async def load(self) -> dict[str, AccountState]:
        return dict(self._states)

    async def save(self, account_id: str, state: AccountState) -> None:
        self._states[account_id] = state
        self.saves += 1

    async def close(self) -> None:
        return None
