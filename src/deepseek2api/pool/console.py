"""The operator's account operations on the in-process pool: cool-downs, enable, add, remove, tokens.

Each applies at once to the live records and is persisted like a learned change; the console's API
reaches them through api/admin/pool_backend.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..deepseek.errors import UpstreamFailure
from ..deepseek.events import UpstreamError
from ..logs import redactor
from ..settings import AccountSettings
from .core import PoolCore
from .errors import EditRefusal, PoolEditRefused
from .health import AccountStatus
from .persistence import StateWriter
from .record import AccountRecord, credentials_fingerprint
from .tokens import TokenKeeper
from .transitions import HealthKeeper
from .waitqueue import LeaseQueue

if TYPE_CHECKING:
    from .lease import AccountLease

logger = logging.getLogger(__name__)

CONSOLE_DISABLED = "disabled from the console"
READY, DISABLED = AccountStatus.READY, AccountStatus.DISABLED


def new_record(account: AccountSettings) -> AccountRecord:
    """A record for a configured or added account (credentials are fingerprinted later, off the loop)."""
    record = AccountRecord(settings=account, credentials="", token=account.token)
    if not account.enabled:
        record.status, record.reason, record.config_disabled = DISABLED, "disabled in config", True
    return record


class PoolConsole:
    """The console's edits; each raises `PoolEditRefused` (NOT_FOUND, EXISTS, IN_USE) when refused."""

    def __init__(self, core: PoolCore, queue: LeaseQueue, health: HealthKeeper, tokens: TokenKeeper,
                 writer: StateWriter, lease_for: Callable[[AccountRecord], AccountLease]) -> None:
        self._core = core
        self._queue = queue
        self._health = health
        self._tokens = tokens
        self._writer = writer
        self._lease_for = lease_for  # an AccountLease on the account's exit, for a console login

    def clear_cooldown(self, account_id: str) -> bool:
        acc = self._core.get(account_id)
        if not acc.status.timed:
            return False
        acc.token_rejected = False
        self._health.set_state(acc, READY, "")
        return True

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        acc = self._core.get(account_id)
        if not enabled:
            self._health.set_state(acc, DISABLED, CONSOLE_DISABLED)
        elif acc.status == DISABLED:
            acc.config_disabled = False
            self._health.set_state(acc, READY, "")

    async def add_account(self, account: AccountSettings) -> None:
        accounts = self._core.accounts
        if account.id in accounts:
            raise PoolEditRefused(EditRefusal.EXISTS, f"account {account.id!r} is in the pool already")
        fingerprint = await asyncio.to_thread(credentials_fingerprint, account)
        if account.id in accounts:  # added meanwhile
            raise PoolEditRefused(EditRefusal.EXISTS, f"account {account.id!r} is in the pool already")
        record = new_record(account)
        record.credentials = fingerprint
        self._queue.fair_use.consider(account)
        accounts[account.id] = record
        logger.info("account %s: added", account.id)
        self._queue.dispatch()

    def remove_account(self, account_id: str) -> None:
        acc = self._core.get(account_id)
        if acc.in_use:
            raise PoolEditRefused(EditRefusal.IN_USE, f"account {account_id!r} is serving {acc.in_use} request(s); "
                                                      "disable it and remove it once they finished")
        del self._core.accounts[account_id]
        self._writer.forget(account_id)
        logger.info("account %s: removed", account_id)
        self._queue.dispatch()

    async def relogin(self, account_id: str) -> UpstreamError | None:
        acc = self._core.get(account_id)
        lease = self._lease_for(acc)
        async with acc.login_lock:
            if acc.status in (AccountStatus.BANNED, AccountStatus.BAD_CREDENTIALS, AccountStatus.NEEDS_TOKEN) \
                    and acc.settings.can_login:
                self._health.set_state(acc, READY, "")  # the operator asks for a fresh try
            self._tokens.forget(acc)
            acc.suspect_token = None
            try:
                await self._tokens.login(acc, lease)
            except UpstreamFailure as failure:
                return failure.error
        return None

    def set_token(self, account_id: str, token: str) -> None:
        acc = self._core.get(account_id)
        redactor.add(token)
        clock = self._core.clock
        acc.token = token
        acc.token_at = clock()
        acc.suspect_token = None
        acc.token_rejected = False
        acc.updated_at = clock()
        logger.info("account %s: token set from the console", acc.id)
        if acc.status in (AccountStatus.NEEDS_TOKEN, AccountStatus.BAD_CREDENTIALS):
            self._health.set_state(acc, READY, "")
        self._writer.persist(acc)
        self._queue.dispatch()


__all__ = ["CONSOLE_DISABLED", "PoolConsole", "new_record"]
