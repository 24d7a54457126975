"""`GET /admin/status`: accounts, proxies and in-flight requests, for the operator.

Opened by the same keys as the console (api/admin/auth.py): `admin_keys`, or any of `keys` when no
admin key is configured. With admin keys set, an ordinary API key gets 403 (client keys see only
`/health` and `/ready`), and a DeepSeek token (`token_passthrough`) never opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .access import note_key

KeyCheck = Callable[[Mapping[str, str]], str]  # the key's name, or raises a 401/403 ApiError


def status_router(check: KeyCheck, snapshot: Callable[[], dict[str, Any]]) -> APIRouter:
    """`snapshot` is built by the composition root from the pool, the proxies and the tracker."""
    router = APIRouter()

    @router.get("/admin/status", summary="Accounts, proxies and in-flight requests (needs an admin key)")
    async def admin_status(request: Request) -> JSONResponse:
        note_key(request, check(request.headers))
        return JSONResponse(snapshot())

    return router
