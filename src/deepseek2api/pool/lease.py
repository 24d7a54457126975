"""A request's hold on one account (docs/architecture.md, "Invariants"): its token, its proxy, and how to report what
happened. `async with pool.lease() as lease:` acquires on enter and releases exactly once on exit,
whatever happens; the health and token bookkeeping it triggers belongs to the pool.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ..deepseek.errors import ErrorKind
from ..deepseek.events import UpstreamError
from ..settings import AccountSettings
from .proxies import redact_proxy

if TYPE_CHECKING:
    from .accounts import AccountPool
    from .record import AccountRecord


class AccountLease:
    """One request's hold on one account: its token, its proxy, and how to report what happened."""

    def __init__(self, pool: AccountPool, account: AccountRecord, proxy: str | None) -> None:
        self._pool = pool
        self._account = account
        self.account_id: str = account.id
        self.account: AccountSettings = account.settings
        self.proxy: str | None = proxy
        self._seen: str | None = None  # the token this lease handed out
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    async def token(self) -> str:
        """The account's token; logs in first when there is none (one login at a time per account)."""
        acc = self._account
        if acc.token is None:
            async with acc.login_lock:
                if acc.token is None:
                    await self._pool._tokens.login(acc, self)
        assert acc.token is not None
        self._seen = acc.token
        return acc.token

    async def relogin(self) -> str:
        """A fresh token after TOKEN_INVALID. If the previous re-login's token was refused too
        (no success in between), the account cools down instead (TOKEN_INVALID is raised)."""
        acc = self._account
        async with acc.login_lock:
            if acc.token is not None and acc.token != self._seen:
                self._seen = acc.token  # another lease already refreshed it
                return acc.token
            if self._seen is not None and self._seen == acc.suspect_token:
                self._pool._tokens.rejected_twice(acc)
            acc.token_rejected = True
            self._pool._tokens.forget(acc)
            await self._pool._tokens.login(acc, self)
        assert acc.token is not None
        self._seen = acc.token
        return acc.token

    def report(self, error: UpstreamError) -> None:
        """What went wrong with this account/exit; changes its health state as needed."""
        acc = self._account
        self._pool._health.note_error(acc, error)
        if error.kind is ErrorKind.TOKEN_INVALID:
            self._pool._health.count_failure(acc)
            if acc.token is not None and self._seen is not None and acc.token != self._seen:
                return  # a token already replaced was refused: nothing new
            if self._seen is not None and self._seen == acc.suspect_token:
                self._pool._tokens.rejected_twice(acc, raise_error=False)
                return
            acc.token_rejected = True
            self._pool._tokens.forget(acc)
            return
        self._pool._health.apply_error(acc, error, self.proxy)

    def report_success(self) -> None:
        """The account and exit worked: clear failure streaks and confirm a re-login."""
        acc = self._account
        acc.consecutive_failures = 0
        acc.last_success = self._pool.now()
        if acc.suspect_token is not None and acc.suspect_token == self._seen:
            acc.suspect_token = None
        self._pool._proxies.report_success(self.proxy)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._pool._queue.release(self._account, self)

    def __repr__(self) -> str:
        return f"AccountLease(account_id={self.account_id!r}, proxy={redact_proxy(self.proxy)!r})"


class LeaseContext:
    """`async with pool.lease() as lease:` — acquire on enter, release exactly once on exit."""

    def __init__(self, pool: AccountPool, exclude: frozenset[str], prefer: str | None = None,
                 only: str | None = None, owner: str = "") -> None:
        self._pool = pool
        self._owner = owner
        self._exclude = exclude
        self._prefer = prefer
        self._only = only
        self._lease: AccountLease | None = None

    async def __aenter__(self) -> AccountLease:
        account = await self._pool._queue.acquire(self._exclude, self._prefer, self._only, self._owner)
        try:
            self._lease = self._pool._open_lease(account)
        except BaseException:
            self._pool._queue.release(account, None)
            raise
        return self._lease

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._lease is not None:
            self._lease._release()
