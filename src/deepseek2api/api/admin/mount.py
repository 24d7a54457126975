"""Everything the console adds to the gateway's app, given its parts: `/metrics`, `/admin`, `/admin/api/…`.

The composition root builds the parts (the backend over the pool, the request log, the metrics) and
calls `mount_console` once; this module decides which keys open what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.applications import Starlette

from ...settings import Settings
from ..auth import Authenticator
from ..metrics import GatewayMetrics, metrics_route
from .auth import AdminAuth
from .backend import AdminBackend
from .requestlog import RequestLog
from .router import console_routes
from .upstream import UpstreamPanel


def mount_console(app: Starlette, settings: Settings, *, backend: AdminBackend | None, requests: RequestLog,
                  metrics: GatewayMetrics, upstream: UpstreamPanel | None = None) -> None:
    """`/metrics` (open unless `metrics.require_key`: then any API or admin key), the console page at
    `/admin` and its API under `/admin/api/` (`admin_keys`, or any of `keys` when none are set);
    the backend is the in-process pool's or the shared pool's (cluster mode); without one only `/metrics`."""
    keys = [(k.name, k.key) for k in settings.keys]
    admin_keys = [(k.name, k.key) for k in settings.admin_keys]
    check = Authenticator(keys + admin_keys).authenticate if settings.metrics.require_key else None
    app.router.routes.append(metrics_route(metrics, check=check))
    if backend is not None:
        app.router.routes.extend(console_routes(backend, AdminAuth(admin_keys, keys), requests, upstream=upstream))


def admin_check(settings: Settings) -> Callable[[Mapping[str, str]], str]:
    """Who opens the operator's pages (`/admin/status`, the console): `admin_keys`, or any of `keys`."""
    return AdminAuth([(k.name, k.key) for k in settings.admin_keys], [(k.name, k.key) for k in settings.keys]).check


__all__ = ["admin_check", "mount_console"]
