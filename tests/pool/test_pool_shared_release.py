"""The shared pool's lease gives its account back even when part of the release round trips fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.logs import redactor
from deepseek2api.pool.cluster import ClusterLease, ClusterUnavailable, TokenInfo, UnavailableKind
from deepseek2api.pool.errors import PoolExhausted
from deepseek2api.pool.health import Cooldowns
from deepseek2api.pool.shared import SharedLease, SharedLeaseContext, SharedPool
from deepseek2api.settings import AccountSettings


class FlakyCoordinator:
    """Redis answers nothing to `forget_token` (a blip), but is back for the release."""

    def __init__(self) -> None:
        self.forgets = 0

    async def forget_token(self, account_id: str, version: int) -> int:
        self.forgets += 1
        raise ClusterUnavailable(UnavailableKind.REDIS_DOWN, "down for a moment", 5.0)


class HeldLease:
    account_id = "a1"
    proxy = None
    proxy_id = ""
    token = "tok"
    token_version = 3
    lost_reason = None

    def __init__(self) -> None:
        self.releases: list[dict[str, Any]] = []

    async def release(self, **kwargs: Any) -> bool:
        self.releases.append(kwargs)
        return True


class Pool:
    def __init__(self) -> None:
        self.coordinator = FlakyCoordinator()

    def observe_transition(self, from_state: str, to_state: str) -> None:
        pass


def test_a_refused_token_whose_forget_fails_still_releases_the_lease() -> None:
    pool, held = Pool(), HeldLease()
    lease = SharedLease(cast(SharedPool, pool), cast(ClusterLease, held), AccountSettings(email="a1@example.com", password="pw"))
    lease.report(UpstreamError(ErrorKind.TOKEN_INVALID, "token refused"))
    asyncio.run(lease._release())
    assert pool.coordinator.forgets == 1
    assert len(held.releases) == 1
    assert held.releases[0]["failed"] is True


class LoginCoordinator:
    """`login_once` as the real one runs it: this replica holds the lock and calls `login()`."""

    async def login_once(self, account_id: str, login: Callable[[], Awaitable[str]], *,
                         seen_version: int = 0) -> TokenInfo:
        token = await login()
        if not token:
            raise ValueError("login answered without a token")
        return TokenInfo(token, seen_version + 1)


class LoginPool:
    def __init__(self) -> None:
        self.coordinator = LoginCoordinator()
        self.logins: list[str] = []

    async def login(self, account: AccountSettings, proxy: str | None) -> str:
        return ""

    def observe_login(self, result: str) -> None:
        self.logins.append(result)


def test_a_login_that_answers_no_token_is_a_protocol_failure_not_a_crash() -> None:
    held = HeldLease()
    held.token = None  # type: ignore[assignment]
    pool = LoginPool()
    lease = SharedLease(cast(SharedPool, pool), cast(ClusterLease, held), AccountSettings(email="a1@x", password="pw"))
    with pytest.raises(UpstreamFailure) as failure:
        asyncio.run(lease.token())
    assert failure.value.error.kind is ErrorKind.PROTOCOL
    assert pool.logins == ["protocol"]


class StrangerCoordinator:
    """Grants an account this replica does not know, then cannot be reached to take it back."""

    def __init__(self) -> None:
        self.held = HeldLease()
        self.held.account_id = "elsewhere"

    async def acquire(self, exclude: Any = (), *, on_lost: Any = None, wait: bool = True) -> HeldLease:
        return self.held


class StrangerHeld(HeldLease):
    async def release(self, **kwargs: Any) -> bool:
        self.releases.append(kwargs)
        raise ClusterUnavailable(UnavailableKind.REDIS_DOWN, "down for a moment", 5.0)


class StrangerPool:
    def __init__(self) -> None:
        self.coordinator = StrangerCoordinator()
        self.coordinator.held = StrangerHeld()
        self.rejections: list[str] = []

    def coordinator_or_raise(self) -> StrangerCoordinator:
        return self.coordinator

    def account(self, account_id: str) -> None:
        return None

    def observe_wait(self, seconds: float) -> None:
        pass


def test_an_unknown_account_granted_while_redis_drops_is_a_pool_error_not_a_raw_cluster_error() -> None:
    pool = StrangerPool()

    async def enter() -> None:
        async with SharedLeaseContext(cast(SharedPool, pool), frozenset()):
            raise AssertionError("entered a lease on an account this replica does not know")

    with pytest.raises(PoolExhausted):
        asyncio.run(enter())
    assert len(pool.coordinator.held.releases) == 1


def test_a_token_learned_by_another_replica_is_masked_in_this_replicas_logs() -> None:
    held = HeldLease()
    held.token = "shared-token-from-redis-0123456789"
    lease = SharedLease(cast(SharedPool, Pool()), cast(ClusterLease, held), AccountSettings(email="a1@x", password="pw"))
    assert asyncio.run(lease.token()) == held.token
    assert held.token not in redactor.redact(f"calling upstream with {held.token}")


class RecordingCoordinator(LoginCoordinator):
    def __init__(self) -> None:
        self.forgotten: list[tuple[str, int]] = []

    async def forget_token(self, account_id: str, version: int) -> int:
        self.forgotten.append((account_id, version))
        return version + 1


class ReloginPool(LoginPool):
    def __init__(self) -> None:
        super().__init__()
        self.coordinator = RecordingCoordinator()
        self.cooldowns = Cooldowns(rate_limited=60.0, busy=5.0)

    async def login(self, account: AccountSettings, proxy: str | None) -> str:
        return "fresh-token-0123456789"

    def observe_transition(self, from_state: str, to_state: str) -> None:
        pass


def test_a_fresh_token_refused_too_is_forgotten_as_well_as_cooling_the_account() -> None:
    pool, held = ReloginPool(), HeldLease()
    lease = SharedLease(cast(SharedPool, pool), cast(ClusterLease, held), AccountSettings(email="a1@x", password="pw"))

    async def turn() -> None:
        await lease.token()
        lease.report(UpstreamError(ErrorKind.TOKEN_INVALID, "token refused"))
        assert await lease.relogin() == "fresh-token-0123456789"
        lease.report(UpstreamError(ErrorKind.TOKEN_INVALID, "token refused again"))
        await lease._release()

    asyncio.run(turn())
    assert pool.coordinator.forgotten == [("a1", 3), ("a1", 4)]  # the old token, then the fresh one
    assert held.releases[0]["health"].status == "cooling"
