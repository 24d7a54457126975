"""The error vocabulary every API surface maps to its own envelope (api/errors.py).

Surfaces never import `deepseek/`: the kinds of upstream failure reach them through here, and a
turn that could not be completed is one value, `TurnFailed(error, emitted, attempts)`.
"""

from __future__ import annotations

import enum

from ..deepseek.errors import ErrorKind
from ..deepseek.events import UpstreamError


class TurnFailed(Exception):
    """The turn could not be completed; `error` says why, `emitted` whether output already went out."""

    def __init__(self, error: UpstreamError, *, emitted: bool, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.emitted = emitted
        self.attempts = attempts


class RejectKind(enum.StrEnum):
    """Why a complete answer could not be returned in the shape the request demanded (a 4xx)."""

    TOOL_CALL_REQUIRED = "tool_call_required"  # tool_choice required/named, and no (matching) call came
    INVALID_STRUCTURED_OUTPUT = "invalid_structured_output"  # response_format unmet after the repair round


class AnswerRejected(Exception):
    """The model answered, but not as `tool_choice` / `response_format` require, even after one repair
    round. The request was valid; the answer is not returned. `emitted`: output already went out."""

    def __init__(self, kind: RejectKind, message: str, *, emitted: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.emitted = emitted


__all__ = ["AnswerRejected", "ErrorKind", "RejectKind", "TurnFailed", "UpstreamError"]
