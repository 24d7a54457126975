"""Account health as a pure state machine: which state an upstream error puts an account in, and
whether a new state may replace the current one. No clock, no I/O: the pool passes `now` in.

States: ready; cooling and muted come back by themselves once `until` has passed; banned,
bad_credentials, needs_token and disabled only come back when the operator acts. needs_token: DeepSeek's
risk control refuses the password login, or a token-only account's token expired; a token pasted
from a browser (console "Set token") brings it back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..deepseek.errors import TOKEN_REMEDY, ErrorKind
from ..deepseek.events import UpstreamError

DEFAULT_MUTE_SECONDS = 3600.0  # a mute without mute_until


class AccountStatus(enum.StrEnum):
    READY = "ready"
    COOLING = "cooling"
    MUTED = "muted"
    BANNED = "banned"
    BAD_CREDENTIALS = "bad_credentials"
    NEEDS_TOKEN = "needs_token"
    DISABLED = "disabled"

    @property
    def timed(self) -> bool:
        """Comes back by itself once `until` has passed."""
        return self in (AccountStatus.COOLING, AccountStatus.MUTED)

    @property
    def dead(self) -> bool:
        """Only the operator brings it back."""
        return self in (AccountStatus.BANNED, AccountStatus.BAD_CREDENTIALS, AccountStatus.NEEDS_TOKEN,
                        AccountStatus.DISABLED)


STATES = tuple(AccountStatus)


def parse_status(value: str) -> AccountStatus | None:
    """A stored status string as the enum; None for one this version does not know."""
    try:
        return AccountStatus(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Health:
    status: AccountStatus
    reason: str = ""
    until: float | None = None

    def usable(self, now: float) -> bool:
        if self.status is AccountStatus.READY:
            return True
        return self.status.timed and (self.until is None or self.until <= now)

    def effective_status(self, now: float) -> AccountStatus:
        """READY for a cool-down or mute that is over."""
        return AccountStatus.READY if self.status.timed and self.usable(now) else self.status


@dataclass(frozen=True, slots=True)
class Cooldowns:
    rate_limited: float
    busy: float


def after_error(error: UpstreamError, now: float, cooldowns: Cooldowns) -> Health | None:
    """The state an error puts the account in; None when the error says nothing about the account."""
    kind = error.kind
    if kind is ErrorKind.RATE_LIMITED:
        seconds = error.retry_after if error.retry_after is not None else cooldowns.rate_limited
        return Health(AccountStatus.COOLING, f"rate limited: {error.message}", now + seconds)
    if kind is ErrorKind.BUSY:
        return Health(AccountStatus.COOLING, f"busy: {error.message}", now + cooldowns.busy)
    if kind is ErrorKind.ACCOUNT_MUTED:
        until = error.until if error.until is not None and error.until > now else now + DEFAULT_MUTE_SECONDS
        return Health(AccountStatus.MUTED, error.message, until)
    if kind is ErrorKind.ACCOUNT_BANNED:
        return Health(AccountStatus.BANNED, error.message)
    if kind is ErrorKind.BAD_CREDENTIALS:
        return Health(AccountStatus.BAD_CREDENTIALS, error.message)
    if kind is ErrorKind.NEEDS_TOKEN:
        return Health(AccountStatus.NEEDS_TOKEN, error.message)
    return None


def transition(current: Health, new: Health, now: float) -> Health | None:
    """The state to record when `new` is reported on an account in `current`; None: nothing changes.

    A cool-down never overrides a ban or bad credentials, never shortens a longer mute, and two
    cool-downs of the same kind keep the later end.
    """
    effective = current.effective_status(now)
    until = new.until
    if new.status.timed:
        if effective.dead:
            return None
        if effective is AccountStatus.MUTED and new.status is AccountStatus.COOLING \
                and current.until is not None and until is not None and current.until >= until:
            return None
        if effective == new.status and current.until is not None and until is not None:
            until = max(until, current.until)
    if effective == new.status and current.reason == new.reason and current.until == until:
        return None
    return Health(new.status, new.reason, until)


# The error a lease reports for an account the operator must repair.
DEAD_KINDS = {AccountStatus.BANNED: ErrorKind.ACCOUNT_BANNED, AccountStatus.BAD_CREDENTIALS: ErrorKind.BAD_CREDENTIALS,
              AccountStatus.NEEDS_TOKEN: ErrorKind.NEEDS_TOKEN}

TOKEN_EXPIRED = "DeepSeek refused the pasted token (it expired) and the account has no password: " + TOKEN_REMEDY
