"""The pool's live record of one account: settings, health, token and counters (event loop only)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from ..settings import AccountSettings
from ..store.base import AccountState
from .health import AccountStatus, Health

READY = AccountStatus.READY


def credentials_fingerprint(account: AccountSettings) -> str:
    """A short digest of the configured login, so a config change invalidates learned state."""
    material = "\0".join(
        [account.id, account.email or "", account.mobile or "", account.password or "", account.token or ""]
    )
    return hashlib.sha256(b"deepseek2api-credentials\0" + material.encode()).hexdigest()[:16]


@dataclass(eq=False)
class AccountRecord:
    """The pool's live record of one account (mutated only on the event loop)."""

    settings: AccountSettings
    credentials: str
    status: AccountStatus = READY
    reason: str = ""
    until: float | None = None
    token: str | None = None
    updated_at: float = 0.0
    in_use: int = 0
    last_used: int = 0  # sequence number of the last grant (LRU rotation)
    requests: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    counters_dirty: bool = False
    token_rejected: bool = False  # the last token was refused: the next login is a re-login
    suspect_token: str | None = None  # token from a re-login not yet confirmed by a success
    login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def health(self) -> Health:
        return Health(self.status, self.reason, self.until)

    def usable(self, now: float) -> bool:
        status = self.status
        return status is READY or (status.timed and (self.until is None or self.until <= now))

    def effective_status(self, now: float) -> AccountStatus:
        return READY if self.status.timed and self.usable(now) else self.status

    def snapshot(self) -> AccountState:
        return AccountState(
            token=self.token,
            status=self.status,
            reason=self.reason,
            until=self.until,
            updated_at=self.updated_at,
            credentials=self.credentials,
            requests=self.requests,
            failures=self.failures,
        )
