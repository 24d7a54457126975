"""What the console needs from the pool, as one explicit interface (`AdminBackend`).

The admin API never reaches into the gateway's objects: the composition root hands it something that
implements this Protocol (the real pool, or a fake in tests). Every view here is safe to send to a
browser: no password, no token — only whether a token exists and how old it is, and proxies with
their credentials redacted.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ...settings import AccountSettings


class AdminErrorKind(str, enum.Enum):
    """Why an admin action was refused; each maps to one HTTP status."""

    NOT_FOUND = "not_found"  # 404: no such account / proxy
    CONFLICT = "conflict"  # 409: e.g. the account already exists, or is in use and cannot be removed
    INVALID = "invalid"  # 400: the request makes no sense
    UNAVAILABLE = "unavailable"  # 503: the backend cannot do this now (shutting down, store down)


class AdminError(Exception):
    """An action the backend refuses, with a kind (never a secret in `message`)."""

    def __init__(self, kind: AdminErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as the console shows it. Times are unix seconds (server clock)."""

    id: str
    state: str  # ready | cooling | muted | banned | bad_credentials | needs_token | disabled
    reason: str = ""
    until: float | None = None  # when cooling/muted ends
    in_use: int = 0
    last_success: float | None = None
    last_error: str | None = None  # "<error kind>: <message>" of the last failure (no secret)
    last_error_at: float | None = None
    token_obtained_at: float | None = None  # when the current token was obtained (its age); None: unknown
    has_token: bool = False  # a token is held (cluster mode knows that, not its age)
    proxy: str = "direct"  # redacted URL, "direct", or "pool (least_used)"
    requests: int = 0
    failures: int = 0
    login: str = "email"  # email | mobile | token (token-only accounts cannot log in again)
    source: str = "config"  # config | runtime (added from the console; removable)
    empty_answers: int = 0  # replies that came back with nothing in them (since start)


@dataclass(frozen=True, slots=True)
class ProxyView:
    """One exit of the proxy pool (URL redacted)."""

    index: int
    proxy: str
    state: str  # ok | quarantined
    in_use: int = 0
    picks: int = 0
    failures: int = 0  # consecutive
    quarantine_until: float | None = None  # unix seconds


@dataclass(frozen=True, slots=True)
class PoolSummary:
    """The header strip's pool half (the traffic half comes from the RequestLog)."""

    mode: str  # "single" (in-process pool) or "cluster" (shared pool on Redis)
    in_flight: int
    capacity: int
    queue_depth: int
    queue_limit: int


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One replica of a cluster, from its heartbeat in Redis."""

    id: str
    heartbeat_age: float  # seconds since its last heartbeat
    alive: bool  # heartbeat younger than `cluster.replica_gone_after`
    this: bool = False  # the replica answering this request


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The shared pool as the console's "Cluster" panel shows it (None in single-process mode)."""

    name: str
    replica: str  # this replica's id
    available: bool  # Redis answered the last read
    recovering: float = 0.0  # seconds left of the recovery window after Redis lost its data
    replicas: tuple[ReplicaView, ...] = ()
    waiting: int = 0  # requests in the shared wait queue (all replicas)
    leases: int = 0  # leases held (all replicas)
    leases_here: int = 0  # leases this replica holds
    reaped: int = 0  # leases Redis took back after their holder went silent


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a test / re-login / proxy test found."""

    ok: bool
    message: str
    kind: str | None = None  # the ErrorKind value when it failed
    duration: float = 0.0  # seconds


@dataclass(frozen=True, slots=True)
class TesterReply:
    """The API tester's answer: the reply text and where it came from."""

    ok: bool
    text: str
    account_id: str | None = None
    model: str = ""
    duration: float = 0.0
    ttft: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    error: str | None = None  # "<kind>: <message>" when it failed


@runtime_checkable
class AdminBackend(Protocol):
    """The pool operations the console performs. Unknown ids raise `AdminError(NOT_FOUND)`."""

    async def refresh(self) -> None:
        """Bring the views up to date before they are read (cluster mode: one snapshot read from Redis;
        single process: nothing). Never raises: when the source is unreachable the last views stay."""
        ...

    def summary(self) -> PoolSummary:
        """Mode, streams in flight vs capacity, queue depth — cheap, called every refresh."""
        ...

    def cluster(self) -> ClusterView | None:
        """Replicas, shared queue and leases when the pool is shared through Redis; None otherwise."""
        ...

    def accounts(self) -> Sequence[AccountView]:
        """Every account, in a stable order."""
        ...

    def proxies(self) -> Sequence[ProxyView]:
        """Every exit of the proxy pool (empty when the pool is off)."""
        ...

    def models(self) -> Sequence[str]:
        """Model ids the tester may use."""
        ...

    async def test_account(self, account_id: str) -> ProbeResult:
        """Log in if needed and run a tiny turn on this account now (it waits for a free slot)."""
        ...

    async def relogin(self, account_id: str) -> ProbeResult:
        """Drop the account's token and log in again."""
        ...

    async def clear_cooldown(self, account_id: str) -> AccountView:
        """End a cooling / mute now (the account is ready for the next request)."""
        ...

    async def set_enabled(self, account_id: str, enabled: bool) -> AccountView:
        """Disable (no new leases; running ones finish) or enable again. Persisted in the state store."""
        ...

    async def add_accounts(self, accounts: Sequence[AccountSettings]) -> Sequence[AccountView]:
        """Add accounts at runtime, persisted in the state store (config.json is never rewritten).
        Raises CONFLICT when an id exists already (the caller checks first; this is the race guard)."""
        ...

    async def remove_account(self, account_id: str) -> None:
        """Remove an account added at runtime (config accounts can only be disabled: CONFLICT)."""
        ...

    async def test_proxy(self, index: int) -> ProbeResult:
        """Connect through this exit to the upstream and report."""
        ...

    async def try_prompt(self, model: str, prompt: str, account_id: str | None) -> TesterReply:
        """Send one prompt (optionally on one account) as a normal request would."""
        ...

    async def set_token(self, account_id: str, token: str) -> AccountView:
        """Use a token pasted from a browser: checked upstream first (INVALID when DeepSeek refuses it),
        then kept like a learned token (never shown again); a needs_token account is ready again."""
        ...

    async def probe_account(self, account_id: str) -> dict[str, object]:
        """The live probe (deepseek/probe.py) on this account: token, settings, session, PoW, a tiny
        completion with the drift report, session delete."""
        ...


__all__ = [
    "AccountView",
    "AdminBackend",
    "AdminError",
    "AdminErrorKind",
    "ClusterView",
    "PoolSummary",
    "ProbeResult",
    "ProxyView",
    "ReplicaView",
    "TesterReply",
]
