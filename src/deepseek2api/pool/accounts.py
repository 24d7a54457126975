"""Account pool: who serves a request, and what we learned about each account.

A request owns a lease (docs/architecture.md, "Invariants"): `async with pool.lease() as lease:`
waits in a bounded FIFO queue for a free slot on a usable account and gives it back exactly once,
whatever happens — success, error, cancellation. The pool keeps each account's health (ready,
cooling, muted, banned, bad_credentials, disabled) and its token, persists both via the state store
so a restart neither logs every account in again nor forgets a ban, and logs each account in at
most once at a time.

`AccountPool` is the facade that implements pool/interface.py's `Pool`; each job is its own module:
the queue and dispatch (pool/waitqueue.py), logins and tokens (pool/tokens.py), health transitions
(pool/transitions.py), write-behind persistence (pool/persistence.py), the console's operations
(pool/console.py) and the status views (pool/views.py). They share one `PoolCore` (pool/core.py).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from ..deepseek.errors import UpstreamFailure
from ..deepseek.events import UpstreamError
from ..settings import AccountSettings, PoolSettings
from ..store.base import StateStore
from .console import CONSOLE_DISABLED, PoolConsole, new_record
from .core import PoolCore
from .errors import PoolExhausted, PoolReason
from .health import STATES, AccountStatus
from .lease import AccountLease, LeaseContext
from .observe import PoolObserver
from .persistence import StateWriter
from .proxies import ProxyPool
from .record import AccountRecord
from .tokens import LoginFn, TokenKeeper
from .transitions import HealthKeeper
from .views import fair_use_rows, idle_accounts, status_rows
from .waitqueue import LeaseQueue

logger = logging.getLogger(__name__)


class AccountPool:
    """The operator's accounts, their health, and fair, bounded access to them."""

    mode = "single"  # pool/interface.py `Pool`: this process's own pool

    def __init__(
        self,
        accounts: Sequence[AccountSettings],
        *,
        settings: PoolSettings,
        store: StateStore,
        proxies: ProxyPool | None = None,
        login: LoginFn,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        observer: PoolObserver | None = None,
    ) -> None:
        self._core = core = PoolCore(settings, proxies or ProxyPool([], enabled=False), clock, observer)
        for account in accounts:
            if account.id in core.accounts:
                raise ValueError(f"duplicate account id {account.id!r}")
            core.accounts[account.id] = new_record(account)
        self._writer = StateWriter(core, store)
        self._health = HealthKeeper(core, self._writer, self._dispatch)
        self._queue = LeaseQueue(core, self._health, rng or random.Random())
        self._tokens = TokenKeeper(core, self._health, self._writer, login)
        self._console = PoolConsole(core, self._queue, self._health, self._tokens, self._writer, self._lease_on)

    @property
    def observer(self) -> PoolObserver | None:
        return self._core.observer

    @observer.setter
    def observer(self, observer: PoolObserver | None) -> None:
        self._core.observer = observer

    @property
    def _proxies(self) -> ProxyPool:
        return self._core.proxies

    @property
    def _closed(self) -> bool:
        return self._queue.closed

    def now(self) -> float:
        """The pool's clock (unix seconds): what `until`, `last_success` … are measured in."""
        return self._core.clock()

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load persisted tokens and health states (the store's token wins over the config's)."""
        await self._writer.restore()
        self._dispatch()

    async def close(self) -> None:
        """Turn waiters away and flush pending state writes. The store stays open (the caller owns it)."""
        self._queue.close()
        await self._writer.close()

    async def flush(self) -> None:
        """Wait until every state change so far is in the store."""
        await self._writer.flush()

    async def prewarm(self) -> int:
        """Log in, one after another, every usable account that has no token yet; returns how many."""
        done = 0
        for acc in list(self._core.accounts.values()):
            if acc.token is not None or not acc.usable(self.now()) or not acc.settings.can_login:
                continue
            try:
                await self._lease_on(acc).token()
                done += 1
            except UpstreamFailure as exc:
                logger.warning("account %s: prewarm login failed (%s)", acc.id, exc.error.kind.value)
        return done

    # ---- leasing ---------------------------------------------------------------------

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None, owner: str = "") -> LeaseContext:
        """`async with pool.lease(exclude=tried) as lease:` — raises `PoolExhausted` when none is free.

        `prefer`: an account to take when it has a free slot right now (one client session kept on one
        account); only a hint — when it is busy, any other free account is taken, never waited for.
        `only`: this account and no other (the console's "test now" and pinned tester); it waits in
        the same FIFO queue as everybody, so the one-stream-per-account rule holds.
        `owner`: whose request it is (an API key's name); waiting owners take turns (pool/fairness.py)."""
        return LeaseContext(self, frozenset(exclude), prefer, only, owner)

    def _lease_on(self, acc: AccountRecord) -> AccountLease:
        return AccountLease(self, acc, self._core.proxies.exit_for(acc.settings))

    def _open_lease(self, acc: AccountRecord) -> AccountLease:
        lease = self._lease_on(acc)
        self._queue.opened(lease)
        return lease

    def _dispatch(self) -> None:
        """Hand free slots to waiters (also what the wake-up timer does)."""
        self._queue.dispatch()

    @property
    def leases_out(self) -> int:
        return self._queue.leases_out

    @property
    def waiting(self) -> int:
        return self._queue.waiting

    def waiting_by_owner(self) -> dict[str, int]:
        """Requests waiting per owner (API key name): the console's queue per key."""
        return self._queue.waiting_by_owner()

    @property
    def usable_count(self) -> int:
        now = self.now()
        return sum(1 for acc in self._core.accounts.values() if acc.usable(now))

    @property
    def capacity(self) -> int:
        """Concurrent requests the usable accounts can take (to size HTTP client pools)."""
        return self.usable_count * self._core.settings.per_account_concurrency

    def assert_idle(self) -> None:
        """Raise AssertionError unless every lease is back and nobody waits (test invariant)."""
        busy = {acc.id: acc.in_use for acc in self._core.accounts.values() if acc.in_use}
        if self.leases_out or busy or self.waiting:
            raise AssertionError(
                f"pool not idle: leases_out={self.leases_out}, in_use={busy}, waiting={self.waiting}"
            )

    def exit_in_use(self, proxy: str | None) -> int:
        """Leases out right now through this exit (None or "": direct)."""
        return self._queue.exit_in_use(proxy)

    def fair_use_until(self, account_id: str) -> float | None:
        """When an account held back by its fair-use limits may start a turn again (None: now)."""
        return self._queue.fair_use.usable_at(self._core.get(account_id).settings, self.now())

    # ---- console operations (pool/console.py) ----------------------------------------

    def record(self, account_id: str) -> AccountRecord:
        """The live record of one account, to read (the console's views); raises NOT_FOUND."""
        return self._core.get(account_id)

    def records(self) -> list[AccountRecord]:
        """Every account's live record, in config order then runtime additions (to read only)."""
        return list(self._core.accounts.values())

    def clear_cooldown(self, account_id: str) -> bool:
        """End a cooling or mute now; False when the account was not cooling or muted."""
        return self._console.clear_cooldown(account_id)

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        """Disable (no new leases; running ones finish) or enable again, persisted in the state store.

        An account disabled in config.json stays disabled after a restart: the file wins."""
        self._console.set_enabled(account_id, enabled)

    async def add_account(self, account: AccountSettings) -> None:
        """A new account, usable at once (the console's add and bulk import). Raises EXISTS."""
        await self._console.add_account(account)

    def remove_account(self, account_id: str) -> None:
        """Take an account out of the pool; refused (IN_USE) while it holds a lease."""
        self._console.remove_account(account_id)

    async def relogin(self, account_id: str) -> UpstreamError | None:
        """Drop the token and log in again now (one login per account at a time). Returns what a
        failed login said (its state change already applied), None when it worked."""
        return await self._console.relogin(account_id)

    def set_token(self, account_id: str, token: str) -> None:
        """Use a token the operator pasted (already checked upstream by the caller), from now on and
        after a restart (persisted like a learned token). A needs_token / bad_credentials account is ready
        again; a ban, mute or console disable stays."""
        self._console.set_token(account_id, token)

    # ---- reporting (pool/views.py) ---------------------------------------------------

    def status(self) -> list[dict[str, object]]:
        """Per-account view for /ready and `check` — never a token or password."""
        return status_rows(self._core.accounts.values(), self._core.proxies, self.now())

    def fair_use(self) -> list[dict[str, object]]:
        """Every account's fair-use limits, use in the last hour and time until usable (the console)."""
        return fair_use_rows(self._core.accounts.values(), self._queue.fair_use, self.now())

    def account_ids(self) -> Iterable[str]:
        return list(self._core.accounts)

    def proxy_status(self) -> list[dict[str, object]]:
        """The egress proxies' use and quarantine, URLs redacted."""
        return self._core.proxies.stats()

    async def snapshot(self) -> dict[str, Any]:
        """The pool for the console (the shared pool adds its replicas)."""
        return {"mode": self.mode, "leases": self.leases_out, "waiting": self.waiting, "accounts": self.status(),
                "proxies": self.proxy_status()}

    def idle_accounts(self) -> list[tuple[AccountSettings, str]]:
        """(account, its current token) for every usable account with a token and no lease out.

        For the turn prewarmer (chat/prewarm.py, `pool.prewarm`); the tokens must never be logged.
        """
        return idle_accounts(self._core.accounts.values(), self.now())


__all__ = [
    "CONSOLE_DISABLED",
    "STATES",
    "AccountLease",
    "AccountPool",
    "AccountStatus",
    "PoolExhausted",
    "PoolReason",
]
