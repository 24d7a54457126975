"""Values the coordinator hands out: leases, health reports, tokens, the console's snapshot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...settings import redact_proxy
from .errors import LeaseLost, LostReason

if TYPE_CHECKING:
    from .coordinator import ClusterCoordinator

TIMED_STATES = ("cooling", "muted")
HEALTH_STATES = ("ready", "cooling", "muted", "banned", "bad_credentials", "needs_token", "disabled")

OnLost = Callable[[LeaseLost], None]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A health state for the shared record. `until` (unix seconds) is required for cooling / muted."""

    status: str
    reason: str = ""
    until: float | None = None

    def __post_init__(self) -> None:
        if self.status not in HEALTH_STATES:
            raise ValueError(f"unknown health state {self.status!r}")
        if self.status in TIMED_STATES and self.until is None:
            raise ValueError(f"{self.status} needs an `until`")

    def encode(self) -> str:
        until = None if self.until is None else int(self.until * 1000)
        return json.dumps({"status": self.status, "reason": self.reason, "until": until})


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token and its version (versions rise on every store or forget; compare-and-delete uses them)."""

    token: str
    version: int

    def __repr__(self) -> str:
        return f"TokenInfo(version={self.version})"


@dataclass(eq=False)
class ClusterLease:
    """One request's hold on one account, shared across replicas.

    `proxy` is the pool exit chosen for it (None: direct, or the account has its own proxy).
    `token` / `token_version`: the account's shared token when the lease was granted (None: log in
    with `ClusterCoordinator.login_once`). `lost` is set when the lease is no longer ours.
    """

    coordinator: ClusterCoordinator
    account_id: str
    fence: int
    proxy: str | None
    proxy_id: str
    token: str | None
    token_version: int
    request_id: str
    on_lost: OnLost | None = None
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_reason: LostReason | None = None
    deadline: float = 0.0  # event-loop time at which we fence ourselves
    released: bool = False
    _timer: asyncio.TimerHandle | None = None

    @property
    def member(self) -> str:
        return f"{self.fence}:{self.account_id}"

    def check(self) -> None:
        """Raise `LeaseLost` if the lease is gone (call before using the account again)."""
        if self.lost_reason is not None:
            raise LeaseLost(self.account_id, self.fence, self.lost_reason)

    async def release(
        self, *, health: HealthReport | None = None, proxy_ok: bool | None = None, failed: bool = False
    ) -> bool:
        """Give the lease back (once; later calls do nothing), with what was learned, in one round trip.

        True when Redis still had it; False when it was already gone (expired, fenced, Redis lost it).
        Shielded: a cancelled request still gives its lease back.
        """
        return await asyncio.shield(self.coordinator._release(self, health, proxy_ok, failed))

    def __repr__(self) -> str:
        return (
            f"ClusterLease(account_id={self.account_id!r}, fence={self.fence}, "
            f"proxy={redact_proxy(self.proxy)!r}, lost={self.lost_reason})"
        )


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    id: str
    heartbeat_age: float  # seconds
    alive: bool


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """The shared state as the console shows it (never a token)."""

    mode: str
    name: str
    epoch: str | None
    recovering: float  # seconds left of the recovery window
    accounts: list[dict[str, object]]
    proxies: list[dict[str, object]]
    replicas: list[ReplicaInfo]
    waiting: int
    leases: int
    reaped: int


__all__ = [
    "HEALTH_STATES",
    "TIMED_STATES",
    "ClusterLease",
    "ClusterSnapshot",
    "HealthReport",
    "OnLost",
    "ReplicaInfo",
    "TokenInfo",
]
