"""HTTP binding of the Responses surface, with and without the `/v1` prefix (as every route here).

`responses_router(...)` is called by the composition root with the parts the routes need.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..auth import Authenticator
from ..errors import bad_request
from .serving import Responses

MAX_LIST_LIMIT = 100


def _list_params(request: Request) -> tuple[int, str, str | None]:
    """`limit` (1-100, default 20), `order` (asc|desc, default desc), `after` of GET …/input_items."""
    query = request.query_params
    raw_limit = query.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise bad_request(f"Invalid 'limit': {raw_limit!r}. Expected an integer.", "limit") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise bad_request(f"Invalid 'limit': {limit}. Expected a value between 1 and {MAX_LIST_LIMIT}.", "limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': {order!r}. Supported values are: 'asc' and 'desc'.", "order")
    return limit, order, query.get("after")


def responses_router(responses: Responses, authenticator: Authenticator) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/responses", summary="Create a model response (OpenAI Responses API)")
    @router.post("/responses", include_in_schema=False)
    async def create(request: Request) -> Response:
        caller = authenticator.authenticate_request(request)
        return await responses.create(request, caller, request.scope["state"]["request_id"])

    @router.get("/v1/responses/{response_id}", summary="Retrieve a stored response")
    @router.get("/responses/{response_id}", include_in_schema=False)
    async def retrieve(response_id: str, request: Request) -> JSONResponse:
        caller = authenticator.authenticate_request(request)
        return JSONResponse(await responses.retrieve(response_id, caller))

    @router.delete("/v1/responses/{response_id}", summary="Delete a stored response")
    @router.delete("/responses/{response_id}", include_in_schema=False)
    async def delete(response_id: str, request: Request) -> JSONResponse:
        caller = authenticator.authenticate_request(request)
        return JSONResponse(await responses.delete(response_id, caller))

    @router.get("/v1/responses/{response_id}/input_items", summary="List a stored response's input items")
    @router.get("/responses/{response_id}/input_items", include_in_schema=False)
    async def input_items(response_id: str, request: Request) -> JSONResponse:
        caller = authenticator.authenticate_request(request)
        limit, order, after = _list_params(request)
        return JSONResponse(await responses.input_items(response_id, caller, limit=limit, order=order,
                                                        after=after))

    return router
