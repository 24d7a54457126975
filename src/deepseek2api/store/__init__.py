"""State store: account tokens and health that survive restarts (sqlite by default, or memory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import AccountState, StateStore
from .memory import MemoryStateStore
from .sqlite import SqliteStateStore

if TYPE_CHECKING:
    from ..settings import StateSettings


def open_store(settings: StateSettings) -> StateStore:
    """The store the `state` config section asks for (sqlite opens lazily, off the loop)."""
    if settings.backend == "memory":
        return MemoryStateStore()
    return SqliteStateStore(settings.path)


__all__ = ["AccountState", "MemoryStateStore", "SqliteStateStore", "StateStore", "open_store"]
