"""Why the pool could not hand out an account: an error value with a kind, mapped to HTTP by api/errors.py."""

from __future__ import annotations

import enum


class PoolReason(enum.StrEnum):
    """Why no account was granted (the value is also the tail of the API error code `pool_<reason>`)."""

    ALL_BUSY = "all_busy"  # every usable account at its concurrency cap for the whole wait
    ALL_COOLING = "all_cooling"  # every usable account rate limited / muted for a while
    NONE_USABLE = "none_usable"  # no accounts, all banned / bad credentials / disabled, or all already tried
    QUEUE_FULL = "queue_full"  # too many requests already waiting

    @property
    def retry_can_help(self) -> bool:
        """False when waiting a few seconds cannot change the answer (the operator must act)."""
        return self is not PoolReason.NONE_USABLE


class PoolExhausted(Exception):
    """No account can take this request now; `retry_after` is a hint in seconds."""

    def __init__(self, reason: PoolReason, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class PassthroughExhausted(Exception):
    """The caller's own token (token passthrough) was already tried in this request."""


class PoolUnavailable(Exception):
    """The shared pool (Redis) cannot answer: fail closed with 503 + Retry-After, never fall back.

    `kind` is a short word for the error code (`pool_<kind>`): redis_down, recovering, lease_lost, closed.
    """

    def __init__(self, kind: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


class EditRefusal(enum.StrEnum):
    """Why a console edit of the pool (add, remove, pin) was refused."""

    NOT_FOUND = "not_found"  # no account with that id
    EXISTS = "exists"  # an account with that id is in the pool already
    IN_USE = "in_use"  # the account holds a lease (remove it once its requests finished, or disable it)


class PoolEditRefused(Exception):
    """An edit the pool cannot make; `kind` says why (never a secret in the message)."""

    def __init__(self, kind: EditRefusal, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
