"""Whether this replica was part of a cluster before: tells a fresh cluster from one whose Redis lost its data.

An empty Redis looks the same in both cases. The recovery window (`lease_ttl + grace`, docs/cluster.md)
exists so that replicas which survived a data loss can re-register the leases they still stream on
before anyone else is granted those accounts; a cluster that never existed has no such holders, so its
first start needs no window. Redis cannot remember that it existed (that is what it lost), so each
replica remembers it: a marker `cluster.joined.<name>` in its own state file (the `runtime_settings`
table, store/runtime_settings.py) holding the epoch it last seeded or joined.

No marker (and no lease held) → a fresh start, seeded without a window. A marker → this replica was
part of the cluster, so the data was lost → the window as before. A replica with `state.backend =
"memory"` cannot remember, and gets no membership at all: it always assumes lost data (the safe side).

Known limit: a replica with no marker (a new state file) that seeds at the very moment Redis lost its
data, before any surviving replica's next renewal (≤ `lease_ttl / 3`), seeds without a window; the
survivors then find their leases gone at that renewal and stop those streams (`pool_lease_lost`), so an
account can be streamed on twice for at most that long. Replicas that existed before never skip it.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from ...store.runtime_settings import RuntimeSettings, RuntimeSettingsError

logger = logging.getLogger(__name__)

MARKER_PREFIX = "cluster.joined."


class Membership(Protocol):
    """What the coordinator needs to know before seeding an empty Redis (see the module docstring)."""

    async def joined(self) -> bool:
        """True when this replica was part of the cluster before (or cannot tell for sure)."""
        ...

    async def record(self, epoch: str) -> None:
        """This replica is part of the cluster at `epoch` now (kept across restarts)."""
        ...


class StoredMembership:
    """The marker in the replica's state file."""

    def __init__(self, store: RuntimeSettings, name: str) -> None:
        self._store = store
        self.key = MARKER_PREFIX + name
        self._recorded = ""

    async def joined(self) -> bool:
        try:
            value = await self._store.get(self.key)
        except RuntimeSettingsError as exc:  # cannot tell: assume lost data (the recovery window)
            logger.warning("cluster membership marker %s unreadable (%s); assuming this replica was a member",
                           self.key, exc)
            return True
        return value is not None

    async def record(self, epoch: str) -> None:
        if epoch == self._recorded:
            return
        try:
            await self._store.put(self.key, {"epoch": epoch, "at": round(time.time(), 3)})
        except RuntimeSettingsError as exc:
            logger.warning("cluster membership marker %s not written (%s); a later empty Redis may look new",
                           self.key, exc)
            return
        self._recorded = epoch


__all__ = ["MARKER_PREFIX", "Membership", "StoredMembership"]
