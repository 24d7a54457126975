"""`Pool`: what the rest of the gateway may ask of a pool, whichever kind it is.

Two pools implement it: the in-process `AccountPool` (pool/accounts.py, one replica) and the Redis
`SharedPool` (pool/shared.py, `cluster.redis_url`: every replica shares the accounts). The
composition root picks one from the config once; from then on the runner leases through it, the
status route and `/ready` read it, and shutdown closes it, without asking which one it is. The
console's account operations are each pool's own backend (api/admin/pool_backend.py for the
in-process pool, api/admin/cluster_backend.py for the shared one), built beside the pool.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Pool(Protocol):
    """A source of account leases with a lifecycle and status views (never a token or password)."""

    @property
    def mode(self) -> str:
        """"single" (this process's own pool) or "cluster" (shared through Redis)."""
        ...

    def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
              only: str | None = None) -> AbstractAsyncContextManager[Any]:
        """An account for one turn (chat/runner.py `AccountSource`, whose `Lease` it yields); waits in the
        pool's queue."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Return what is held and flush what was learned (tokens, states)."""
        ...

    @property
    def leases_out(self) -> int: ...

    @property
    def waiting(self) -> int:
        """Requests waiting in this process's queue for an account."""
        ...

    @property
    def usable_count(self) -> int:
        """Accounts that could serve a turn now (`/ready` fails at 0)."""
        ...

    def status(self) -> list[dict[str, object]]:
        """One row per account for `/admin/status`, `/ready` and `check`."""
        ...

    def proxy_status(self) -> list[dict[str, object]]:
        """The egress proxies' use and quarantine, URLs redacted."""
        ...

    def account_ids(self) -> Iterable[str]: ...

    async def snapshot(self) -> dict[str, Any]:
        """The pool as the console shows it (mode, accounts, proxies, queue; replicas in a cluster)."""
        ...


__all__ = ["Pool"]
