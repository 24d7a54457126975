"""What the gateway remembers about an account across restarts, and the store interface.

The pool decides; the store only keeps (docs/architecture.md: `store/` imports no policy). Tokens are kept
as the gateway learned them so a restart does not log every account in again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account's persisted state.

    `status` is a pool health state ("ready", "cooling", "muted", "banned", "bad_credentials");
    `until` (unix seconds) ends cooling/mutes; `credentials` is a fingerprint of the configured
    login so a config change can invalidate what was learned with the old one.
    """

    token: str | None = None
    status: str = "ready"
    reason: str = ""
    until: float | None = None
    updated_at: float = 0.0
    credentials: str = ""
    requests: int = 0
    failures: int = 0

    def __repr__(self) -> str:  # never show the token
        return (
            f"AccountState(status={self.status!r}, reason={self.reason!r}, until={self.until!r}, "
            f"has_token={self.token is not None}, updated_at={self.updated_at!r})"
        )


@runtime_checkable
class StateStore(Protocol):
    """Async key-value store of `AccountState` by account id; never blocks the event loop."""

    async def load(self) -> dict[str, AccountState]:
        """Every stored account state."""
        ...

    async def save(self, account_id: str, state: AccountState) -> None:
        """Replace one account's state atomically (durable when the call returns)."""
        ...

    async def close(self) -> None:
        """Release resources; safe to call twice."""
        ...
