"""Settings and seed data of the shared pool (plain values; the config layer maps onto them)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...settings import AccountSettings, Settings

STRATEGIES = ("least_used", "sticky")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """How the replicas share one pool. Times in seconds.

    `lease_ttl`: a lease not renewed for this long is freed by Redis. Holders renew every
    `renew_interval` (default ttl/3) and fence themselves `fence_margin` (default ttl/5) before
    their lease could expire. `grace`: an expired (not released) lease cools its account this long,
    so a cut-off holder has stopped before anyone else streams on it. `recovery_window` (default
    ttl + grace): after Redis lost its data, how long live holders have to re-create their leases
    before new grants start.
    """

    name: str = "default"
    per_account_concurrency: int = 1
    queue_size: int = 64
    queue_timeout: float = 30.0
    lease_ttl: float = 15.0
    grace: float = 5.0
    renew_interval: float | None = None
    fence_margin: float | None = None
    recovery_window: float | None = None
    backstop: float = 1.0  # waiting replicas look at the queue at least this often (jittered)
    replica_timeout: float | None = None  # heartbeat age after which a replica counts as gone
    login_lock: float = 60.0
    expected_hold: float = 5.0  # first guess of a stream's duration, for Retry-After
    proxy_strategy: str = "least_used"
    proxy_quarantine_failures: int = 3
    proxy_quarantine_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "{}:"):
            raise ValueError(f"cluster.name must be non-empty without '{{', '}}' or ':' (got {self.name!r})")
        if self.per_account_concurrency < 1:
            raise ValueError("per_account_concurrency must be at least 1")
        if self.lease_ttl <= 0.2:
            raise ValueError("lease_ttl must be longer than 0.2 s")
        if self.proxy_strategy not in STRATEGIES:
            raise ValueError(f"unknown proxy strategy {self.proxy_strategy!r}")
        if not 0 < self.margin < self.lease_ttl - self.renew_every:
            raise ValueError("fence_margin must leave room for at least one renewal within lease_ttl")

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterConfig:
        """The shared pool the config describes (`cluster`, `pool` and proxy sections)."""
        return cls(
            name=settings.cluster.name,
            per_account_concurrency=settings.pool.per_account_concurrency,
            queue_size=settings.pool.queue_size,
            queue_timeout=settings.pool.queue_timeout,
            lease_ttl=settings.cluster.lease_ttl,
            grace=settings.cluster.grace,
            proxy_strategy=settings.proxy_strategy,
            proxy_quarantine_failures=settings.proxy_quarantine.failures,
            proxy_quarantine_seconds=settings.proxy_quarantine.seconds,
        )

    @property
    def renew_every(self) -> float:
        return self.renew_interval if self.renew_interval is not None else self.lease_ttl / 3

    @property
    def margin(self) -> float:
        return self.fence_margin if self.fence_margin is not None else self.lease_ttl / 5

    @property
    def recovery(self) -> float:
        return self.recovery_window if self.recovery_window is not None else self.lease_ttl + self.grace

    @property
    def replica_gone_after(self) -> float:
        return self.replica_timeout if self.replica_timeout is not None else 3 * self.renew_every

    @property
    def prefix(self) -> str:
        """Every key starts with this; the braces are a Redis Cluster hash tag (one slot for all)."""
        return f"ds2:{{{self.name}}}:"


@dataclass(frozen=True, slots=True)
class ClusterAccount:
    """What a replica tells Redis about one configured account.

    `credentials`: a fingerprint of the configured login (a change voids the learned token);
    `own_proxy`: the account has its own proxy, so the shared proxy pool is not used for it;
    `token`: a token from the config, used when Redis has none yet.
    """

    id: str
    credentials: str
    enabled: bool = True
    own_proxy: bool = False
    token: str | None = None

    def __repr__(self) -> str:  # never show the token
        return f"ClusterAccount(id={self.id!r}, enabled={self.enabled}, own_proxy={self.own_proxy})"


def seed_accounts(
    settings: Settings, fingerprint: Callable[[AccountSettings], str]
) -> list[ClusterAccount]:
    """What this replica tells Redis about its configured accounts (`fingerprint`: the pool's
    credentials digest, so a changed login voids the shared token as it voids the local one)."""
    return [
        ClusterAccount(
            id=account.id,
            credentials=fingerprint(account),
            enabled=account.enabled,
            own_proxy=account.proxy is not None,
            token=account.token,
        )
        for account in settings.accounts
    ]


def proxy_entries(settings: Settings) -> list[str]:
    """The shared proxy pool's entries ("" = direct), empty when the pool is off."""
    return [str(entry) for entry in settings.proxy_pool] if settings.proxy_pool_enabled else []


def proxy_id(entry: str) -> str:
    """The name of a proxy entry in Redis: a digest, so proxy credentials never leave the replica."""
    return hashlib.sha256(b"deepseek2api-proxy\0" + entry.strip().encode()).hexdigest()[:16]


__all__ = ["STRATEGIES", "ClusterAccount", "ClusterConfig", "proxy_entries", "proxy_id", "seed_accounts"]
