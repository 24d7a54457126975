"""`GET /admin/status`: accounts, proxies and in-flight requests, for the operator (needs a configured key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .auth import Authenticator
from .errors import unauthorized


def status_router(authenticator: Authenticator, snapshot: Callable[[], dict[str, Any]]) -> APIRouter:
    """`snapshot` is built by the composition root from the pool, the proxies and the tracker."""
    router = APIRouter()

    @router.get("/admin/status", summary="Accounts, proxies and in-flight requests (needs an API key)")
    async def admin_status(request: Request) -> JSONResponse:
        if authenticator.authenticate_request(request).passthrough_token is not None:
            raise unauthorized("The status page needs one of the gateway's configured keys.")
        return JSONResponse(snapshot())

    return router
