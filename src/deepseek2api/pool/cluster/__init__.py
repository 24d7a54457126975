"""The shared pool: several replicas, one set of leases, health states, queue, proxies and tokens (Redis).

Unused unless `cluster.redis_url` is set; the in-process pool stays the default. See docs/cluster.md.
"""

from .config import (
    ClusterAccount,
    ClusterConfig,
    proxy_entries,
    proxy_id,
    seed_accounts,
)
from .coordinator import ClusterCoordinator
from .errors import (
    ClusterExhausted,
    ClusterUnavailable,
    ExhaustedReason,
    LeaseLost,
    LostReason,
    UnavailableKind,
)
from .records import (
    ClusterLease,
    ClusterSnapshot,
    HealthReport,
    ReplicaInfo,
    TokenInfo,
)

__all__ = [
    "ClusterAccount",
    "ClusterConfig",
    "ClusterCoordinator",
    "ClusterExhausted",
    "ClusterLease",
    "ClusterSnapshot",
    "ClusterUnavailable",
    "ExhaustedReason",
    "HealthReport",
    "LeaseLost",
    "LostReason",
    "ReplicaInfo",
    "TokenInfo",
    "UnavailableKind",
    "proxy_entries",
    "proxy_id",
    "seed_accounts",
]
