"""Token lifecycle of the in-process pool: the login, a refused token, and the second refusal.

A lease logs its account in at most once at a time (the account's login lock, held by the caller:
pool/lease.py); a token refused right after a fresh login cools the account down instead of looping
logins, which could attract a mute.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from ..settings import AccountSettings
from .core import PoolCore
from .health import DEAD_KINDS, TOKEN_EXPIRED, AccountStatus
from .persistence import StateWriter
from .record import AccountRecord
from .transitions import HealthKeeper

if TYPE_CHECKING:
    from .lease import AccountLease

logger = logging.getLogger(__name__)

LoginFn = Callable[[AccountSettings, "str | None"], Awaitable[str]]


class TokenKeeper:
    """Logs accounts in and forgets the tokens DeepSeek refused."""

    def __init__(self, core: PoolCore, health: HealthKeeper, writer: StateWriter, login: LoginFn) -> None:
        self._core = core
        self._health = health
        self._writer = writer
        self._login_fn = login

    async def login(self, acc: AccountRecord, lease: AccountLease) -> None:
        """Log `acc` in (caller holds its login lock); apply the failure's state change, re-raise."""
        if acc.status in DEAD_KINDS:
            raise UpstreamFailure(UpstreamError(DEAD_KINDS[acc.status], f"account {acc.status}: {acc.reason}"))
        if not acc.settings.can_login:  # a token-only account whose token died: no re-login loop
            self._health.set_state(acc, AccountStatus.NEEDS_TOKEN, TOKEN_EXPIRED)
            raise UpstreamFailure(UpstreamError(ErrorKind.NEEDS_TOKEN, TOKEN_EXPIRED))
        try:
            token = await self._login_fn(acc.settings, lease.proxy)
        except UpstreamFailure as exc:
            self._observe_login(exc.error.kind.value)
            self._health.note_error(acc, exc.error)
            self._health.apply_error(acc, exc.error, lease.proxy)
            raise
        if not token:
            self._observe_login(ErrorKind.PROTOCOL.value)
            raise UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, "login answered without a token"))
        self._observe_login("ok")
        clock = self._core.clock
        acc.token = token
        acc.token_at = clock()
        acc.suspect_token = token if acc.token_rejected else None
        acc.token_rejected = False
        acc.updated_at = clock()
        logger.info("account %s: logged in%s", acc.id, " again" if acc.suspect_token else "")
        self._core.proxies.report_success(lease.proxy)
        self._writer.persist(acc)

    def _observe_login(self, result: str) -> None:
        if self._core.observer is not None:
            self._core.observer.login(result)

    def forget(self, acc: AccountRecord) -> None:
        """Drop a token DeepSeek refused (persisted: a restart must not try it again)."""
        if acc.token is not None:
            acc.token = None
            acc.updated_at = self._core.clock()
            self._writer.persist(acc)

    def rejected_twice(self, acc: AccountRecord, *, raise_error: bool = True) -> None:
        """A fresh token was refused too. The login itself worked, so the password is fine: the account
        cools down (`cooldown_rate_limited`; no login loop, which could attract a mute) instead of being
        marked bad_credentials for good — a passing glitch must not cost an account until the operator
        steps in. The first token after the cool-down is on probation again."""
        message = "token rejected right after a fresh login"
        acc.token = None
        acc.suspect_token = None
        acc.token_rejected = True
        self._health.set_state(acc, AccountStatus.COOLING, message,
                               self._core.clock() + self._core.settings.cooldown_rate_limited)
        self._writer.persist(acc)
        if raise_error:
            raise UpstreamFailure(UpstreamError(ErrorKind.TOKEN_INVALID, message))


__all__ = ["LoginFn", "TokenKeeper"]
