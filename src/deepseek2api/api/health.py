"""Liveness and readiness: no auth, cheap, for load balancers and container health checks."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.responses import JSONResponse


def health_router(usable_accounts: Callable[[], int]) -> APIRouter:
    """`usable_accounts`: how many accounts could take a request now (the pool's count)."""
    router = APIRouter()

    # HEAD too: load balancers probe with it (the server sends the headers without the body).
    @router.api_route("/health", methods=["GET", "HEAD"], include_in_schema=False)
    @router.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def health() -> JSONResponse:
        """The process is up and serving HTTP."""
        return JSONResponse({"status": "ok"})

    @router.api_route("/ready", methods=["GET", "HEAD"], include_in_schema=False)
    async def ready() -> JSONResponse:
        """200 only when at least one account can take a request now (or could after a short cool-down)."""
        usable = usable_accounts()
        body = {"status": "ready" if usable else "unavailable", "usable_accounts": usable}
        return JSONResponse(body, status_code=200 if usable else 503)

    return router
