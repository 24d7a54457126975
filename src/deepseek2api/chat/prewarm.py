"""Prewarmed turns (`pool.prewarm`, off by default): every idle account keeps one chat session and one
solved, unexpired PoW for `/api/v0/chat/completion` ready, so a request's path to its first token is
only the completion call.

The trade-off: upstream calls while nothing happens. Each ready account costs one `chat_session/create`
when it is prepared and one `create_pow_challenge` (plus a PoW solve) every few minutes while it stays
idle (a challenge lives 300 s; it is re-solved `REFRESH_MARGIN` seconds before it expires), and a
prepared session that is never used is deleted at shutdown or when its token changes.

Rules that keep it safe:
- a prepared turn is handed out once (`take` removes it) and only for the token it was made with: a
  re-login (new token) invalidates it;
- only idle accounts are prepared (no lease out), through the same network exit their leases use (a
  fixed per-account proxy, the sticky proxy of the account, or direct). With a `least_used` proxy pool
  the exit of the next lease is not known in advance, so such accounts are not prepared;
- a PoW is handed out only while it has at least `USE_MARGIN` seconds left;
- the prewarmer never changes an account's health: failures are logged and retried later; the
  request path (runner) stays the one judge of an account.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..deepseek.client import PATH_COMPLETION, DeepSeekClient
from ..deepseek.errors import UpstreamFailure
from ..deepseek.pow import PowChallenge
from ..pool.proxies import ProxyPool
from ..settings import AccountSettings
from .housekeeping import delete_session

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between passes over the pool
REFRESH_MARGIN = 60.0  # re-solve a ready PoW this many seconds before it expires
USE_MARGIN = 10.0  # never hand out a PoW with less time left than this
RETRY_AFTER_FAILURE = 30.0  # an account whose preparation failed is left alone this long
CONCURRENCY = 2  # preparations at once (a PoW solve keeps a core busy)
STOP_TIMEOUT = 5.0  # seconds granted to delete unused sessions at shutdown


class IdleAccounts(Protocol):
    """What the prewarmer needs from the account pool."""

    def idle_accounts(self) -> list[tuple[AccountSettings, str]]: ...
    async def prewarm(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    """A chat session and a solved completion PoW, for one account, token and exit."""

    token: str
    proxy: str | None
    session_id: str
    pow_header: str
    expires: float  # prewarmer clock (monotonic): when the PoW answer stops being accepted

    def __repr__(self) -> str:  # never show the token or the PoW header
        return f"PreparedTurn(session_id={self.session_id!r}, expires={self.expires:.0f})"


class TurnPrewarmer:
    """Keeps one `PreparedTurn` per idle account; `take()` hands it to the runner, once."""

    def __init__(self, pool: IdleAccounts, client: DeepSeekClient, proxies: ProxyPool, *,
                 delete_session: bool = True, clock: Callable[[], float] = time.monotonic,
                 interval: float = INTERVAL, refresh_margin: float = REFRESH_MARGIN,
                 use_margin: float = USE_MARGIN, concurrency: int = CONCURRENCY) -> None:
        self._pool = pool
        self._client = client
        self._proxies = proxies
        self._delete_session = delete_session
        self._clock = clock
        self.interval = interval
        self.refresh_margin = refresh_margin
        self.use_margin = use_margin
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._ready: dict[str, PreparedTurn] = {}
        self._busy: set[str] = set()  # accounts being prepared right now
        self._failed_until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._warned_exit = False
        # counters (for /admin-style status, tests and benchmarks)
        self.prepared = 0
        self.taken = 0
        self.discarded = 0

    # ---- the runner's side ---------------------------------------------------------------

    def take(self, account_id: str, token: str, proxy: str | None) -> tuple[str, str] | None:
        """(session_id, pow_header) prepared for this account, token and exit, or None. Single use."""
        item = self._ready.pop(account_id, None)
        if item is None:
            return None
        if item.token != token or item.proxy != proxy or self._clock() > item.expires - self.use_margin:
            self._discard(item)
            return None
        self.taken += 1
        return item.session_id, item.pow_header

    @property
    def ready(self) -> int:
        """How many accounts have a prepared turn right now."""
        return len(self._ready)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="turn-prewarmer")

    async def stop(self) -> None:
        """Stop preparing; delete the sessions nobody used (best effort, bounded)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for item in list(self._ready.values()):
            self._discard(item)
        self._ready.clear()
        if self._background:
            await asyncio.wait(self._background, timeout=STOP_TIMEOUT)
            for pending in list(self._background):
                pending.cancel()

    async def _run(self) -> None:
        try:
            logged_in = await self._pool.prewarm()  # accounts without a token: log in once, one by one
            if logged_in:
                log.info("prewarm: logged in %d account(s)", logged_in)
        except Exception:  # the prewarmer must never take the gateway down
            log.warning("prewarm: logging accounts in failed", exc_info=True)
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("prewarm: a pass failed", exc_info=True)
            await asyncio.sleep(self.interval)

    # ---- preparing -----------------------------------------------------------------------

    async def refresh(self) -> int:
        """One pass: prepare idle accounts that have no usable turn, renew PoWs about to expire.
        Returns how many turns were prepared."""
        now = self._clock()
        jobs = []
        for account, token in self._pool.idle_accounts():
            account_id = account.id
            if account_id in self._busy or self._failed_until.get(account_id, 0.0) > now:
                continue
            item = self._ready.get(account_id)
            if item is not None and item.token != token:  # re-login since: that session is not ours to use
                self._discard(self._ready.pop(account_id))
                item = None
            if item is not None and item.expires - now > self.refresh_margin:
                continue
            known, proxy = self._exit_of(account)
            if not known:
                continue
            jobs.append(self._prepare(account_id, token, proxy))
        for account_id, item in list(self._ready.items()):  # expired on an account that stayed busy
            if item.expires <= now and account_id not in self._busy:
                self._discard(self._ready.pop(account_id))
        if not jobs:
            return 0
        results = await asyncio.gather(*jobs)
        return sum(results)

    def _exit_of(self, account: AccountSettings) -> tuple[bool, str | None]:
        """(known, proxy): the exit the account's next lease will use, when that can be known."""
        known, proxy = self._proxies.next_exit(account)
        if known:
            return known, proxy
        if not self._warned_exit:
            self._warned_exit = True
            log.info("prewarm: the proxy pool picks an exit per request (least_used), so only accounts with "
                     "their own proxy are prepared")
        return False, None

    async def _prepare(self, account_id: str, token: str, proxy: str | None) -> int:
        self._busy.add(account_id)
        session_id: str | None = None
        try:
            async with self._limit:
                # A refresh replaces the PoW and keeps the session: take the old item out first, so no
                # request can use that session while it moves to the new item.
                old = self._ready.pop(account_id, None)
                if old is not None and old.token == token and old.proxy == proxy:
                    session_id = old.session_id
                elif old is not None:
                    self._discard(old)
                started = self._clock()
                if session_id is None:
                    session_id = await self._client.create_session(token, proxy=proxy)
                header, challenge = await self._client.solved_pow(token, PATH_COMPLETION, proxy=proxy)
        except UpstreamFailure as exc:
            kind = exc.kind.value
            log.info("prewarm: account %s: preparing a turn failed (%s); retrying in %.0f s", account_id, kind,
                     RETRY_AFTER_FAILURE)
            self._failed_until[account_id] = self._clock() + RETRY_AFTER_FAILURE
            if session_id is not None:
                self._delete(token, session_id, proxy)
            return 0
        finally:
            self._busy.discard(account_id)
        self._failed_until.pop(account_id, None)
        self._ready[account_id] = PreparedTurn(token, proxy, session_id, header, started + _lifetime(challenge))
        self.prepared += 1
        return 1

    # ---- discarding ----------------------------------------------------------------------

    def _discard(self, item: PreparedTurn) -> None:
        self.discarded += 1
        self._delete(item.token, item.session_id, item.proxy)

    def _delete(self, token: str, session_id: str, proxy: str | None) -> None:
        """Delete an unused session in the background (best effort; a replaced token may fail)."""
        if not self._delete_session:
            return

        task = asyncio.get_running_loop().create_task(delete_session(self._client, token, session_id, proxy))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _lifetime(challenge: PowChallenge) -> float:
    """Seconds the PoW stays valid, by upstream's relative `expire_after` (immune to clock skew),
    else by its absolute `expire_at` against our wall clock."""
    if challenge.expire_after:
        return challenge.expire_after / 1000.0
    return max(0.0, (challenge.expire_at or 0) / 1000.0 - time.time())
