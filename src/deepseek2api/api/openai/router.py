"""HTTP binding of the OpenAI surface. Every route works with and without the `/v1` prefix,
because users paste either form of the base URL (CONFORMANCE.md §4.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..auth import Caller
from ..errors import not_found, unauthorized
from .protocol import ModelNotFound, model_body, model_list_body

if TYPE_CHECKING:
    from ...server import Gateway

router = APIRouter()


def _gateway(request: Request) -> "Gateway":
    return request.app.state.gateway  # type: ignore[no-any-return]


def _authenticate(request: Request) -> Caller:
    return _gateway(request).authenticator.authenticate(request.headers)


@router.post("/v1/chat/completions", summary="Create a chat completion (OpenAI-compatible)")
@router.post("/chat/completions", include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    caller = _authenticate(request)
    return await _gateway(request).chat.handle(request, caller, request.scope["state"]["request_id"])


@router.get("/v1/models", summary="List models")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request) -> JSONResponse:
    _authenticate(request)
    return JSONResponse(model_list_body(_gateway(request).registry))


@router.get("/v1/models/{model_id:path}", summary="Retrieve a model")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def retrieve_model(model_id: str, request: Request) -> JSONResponse:
    _authenticate(request)
    spec = _gateway(request).registry.resolve(model_id)
    if spec is None:
        unknown = ModelNotFound(model_id)  # the same message as an unknown model in a chat request
        raise not_found(unknown.message, "model_not_found", "model")
    return JSONResponse(model_body(spec, model_id))


@router.get("/admin/status", summary="Accounts, proxies and in-flight requests (needs an API key)")
async def admin_status(request: Request) -> JSONResponse:
    if _authenticate(request).passthrough_token is not None:
        raise unauthorized("The status page needs one of the gateway's configured keys.")
    gateway = _gateway(request)
    return JSONResponse({
        "inflight": gateway.inflight_count,
        "leases_out": gateway.pool.leases_out,
        "usable_accounts": gateway.pool.usable_count,
        "accounts": gateway.pool.status(),
        "proxies": gateway.proxies.stats(),
    })
