"""The error vocabulary every API surface maps to its own envelope (api/errors.py).

Surfaces never import `deepseek/`: the kinds of upstream failure reach them through here, and a
turn that could not be completed is one value, `TurnFailed(error, emitted, attempts)`.
"""

from __future__ import annotations

from ..deepseek.errors import ErrorKind
from ..deepseek.events import UpstreamError


class TurnFailed(Exception):
    """The turn could not be completed; `error` says why, `emitted` whether output already went out."""

    def __init__(self, error: UpstreamError, *, emitted: bool, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.emitted = emitted
        self.attempts = attempts


__all__ = ["ErrorKind", "TurnFailed", "UpstreamError"]
