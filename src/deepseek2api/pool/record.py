"""The pool's live record of one account: settings, health, token and counters (event loop only)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from ..settings import AccountSettings
from ..store.base import AccountState
from .health import AccountStatus, Health

READY = AccountStatus.READY


FINGERPRINT_COST = 2**14
"""scrypt's N for the credentials fingerprint (r=8, p=1: 16 MiB and tens of ms per account, once at start).
Memory-hard, so a wordlist attack on a stolen state file costs 16 MiB per guess: PBKDF2 at 20,000 rounds
gave a weak password away in 35 s."""
_FINGERPRINT_SCHEME = "scrypt"
_R, _P = 8, 1


def credentials_fingerprint(account: AccountSettings, salt: bytes | None = None) -> str:
    """A salted, memory-hard digest of the configured login, so a config change invalidates learned state.

    It is stored beside the account's state, so it must not reveal the password: a 64-bit unsalted
    SHA-256 gave a weak password away in 0.05 s, PBKDF2 in 35 s. Blocking (tens of
    ms): the pool computes it in a worker thread. A fingerprint in an older format never matches, which
    only costs one fresh login per account after the upgrade.
    """
    material = "\0".join(
        [account.id, account.email or "", account.mobile or "", account.password or "", account.token or ""]
    )
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(b"deepseek2api-credentials\0" + material.encode(), salt=salt, n=FINGERPRINT_COST,
                            r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"{_FINGERPRINT_SCHEME}${FINGERPRINT_COST}${salt.hex()}${digest.hex()}"


def credentials_match(fingerprint: str, account: AccountSettings) -> bool:
    """True when `fingerprint` (as stored) was made from this account's configured login."""
    parts = fingerprint.split("$")
    if len(parts) != 4 or parts[0] != _FINGERPRINT_SCHEME or parts[1] != str(FINGERPRINT_COST):
        return False
    try:
        salt = bytes.fromhex(parts[2])
    except ValueError:
        return False
    return hmac.compare_digest(credentials_fingerprint(account, salt), fingerprint)


def settle_fingerprint(account: AccountSettings, stored: str) -> tuple[str, bool]:
    """(fingerprint to keep, whether the stored one still matches): one slow hash either way."""
    if stored and credentials_match(stored, account):
        return stored, True
    return credentials_fingerprint(account), False


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
    empty_answers: int = 0  # replies that finished with nothing in them (since start; console)
    counters_dirty: bool = False
    token_rejected: bool = False  # the last token was refused: the next login is a re-login
    suspect_token: str | None = None  # token from a re-login not yet confirmed by a success
    last_success: float | None = None  # pool clock of the last turn that worked (console)
    last_error: str | None = None  # "<kind>: <message>" of the last failure reported (no secret)
    last_error_at: float | None = None
    token_at: float | None = None  # when the current token was obtained (restored: when it was stored)
    config_disabled: bool = False  # `enabled: false` in config.json (never persisted, config wins)
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
