"""What can go wrong with the shared pool, as values with a kind (never strings matched later)."""

from __future__ import annotations

from enum import StrEnum


class UnavailableKind(StrEnum):
    """Why the shared pool cannot answer at all (the gateway answers 503 + Retry-After)."""

    REDIS_DOWN = "redis_down"  # no connection, timeout, Redis loading its data
    RECOVERING = "recovering"  # Redis lost its data: live holders re-create their leases first
    SCRIPT = "script_error"  # Redis refused a script (a bug or an incompatible server)
    CLOSED = "closed"  # this replica is shutting down


class ClusterUnavailable(Exception):
    """Fail closed: the pool is shared or nothing — never a silent per-process fallback."""

    def __init__(self, kind: UnavailableKind, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


class ExhaustedReason(StrEnum):
    """Why no account can take a request now (values match the in-process pool's reasons)."""

    ALL_BUSY = "all_busy"
    ALL_COOLING = "all_cooling"
    NONE_USABLE = "none_usable"
    QUEUE_FULL = "queue_full"


class ClusterExhausted(Exception):
    """No slot within the wait (429 + Retry-After); `retry_after` in seconds, at least 1."""

    def __init__(self, reason: ExhaustedReason, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class LostReason(StrEnum):
    """How a holder learned its lease is no longer its own."""

    REVOKED = "revoked"  # Redis no longer has it (expired and reaped, or lost with Redis's data)
    RENEW_DEADLINE = "renew_deadline"  # no successful renewal in time: the holder fenced itself


class LeaseLost(Exception):
    """This lease may already belong to someone else: stop using the account now."""

    def __init__(self, account_id: str, fence: int, reason: LostReason) -> None:
        super().__init__(f"lease on account {account_id} (fence {fence}) lost: {reason.value}")
        self.account_id = account_id
        self.fence = fence
        self.reason = reason


__all__ = [
    "ClusterExhausted",
    "ClusterUnavailable",
    "ExhaustedReason",
    "LeaseLost",
    "LostReason",
    "UnavailableKind",
]
