"""The operator's console: the admin API, its live request tail and the dashboard page.

Wiring (composition root): build an `AdminBackend` for the pool, an `AdminAuth` from `admin_keys`
and `keys`, one `RequestLog` every surface records into, then add `console_routes(...)` to the app.
"""

from __future__ import annotations

from .auth import AdminAuth
from .backend import (
    AccountView,
    AdminBackend,
    AdminError,
    AdminErrorKind,
    ClusterView,
    PoolSummary,
    ProbeResult,
    ProxyView,
    ReplicaView,
    TesterReply,
)
from .bulk_import import ImportLine, LineStatus, parse_import
from .requestlog import RequestEntry, RequestLog, TrafficStats
from .router import console_routes

__all__ = [
    "AccountView",
    "AdminAuth",
    "AdminBackend",
    "AdminError",
    "AdminErrorKind",
    "ClusterView",
    "ImportLine",
    "LineStatus",
    "PoolSummary",
    "ProbeResult",
    "ProxyView",
    "ReplicaView",
    "RequestEntry",
    "RequestLog",
    "TesterReply",
    "TrafficStats",
    "console_routes",
    "parse_import",
]
