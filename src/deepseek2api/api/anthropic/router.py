"""HTTP binding of the Anthropic surface: `/v1/messages` (also under `/anthropic`), and count_tokens.

Routes match on the path only, so Claude Code's `/v1/messages?beta=true` is the same route. Any
`anthropic-version` and `anthropic-beta` is accepted; errors on these paths are rendered in
Anthropic's envelope (dialect.py, registered for these routes in server.py).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..auth import Authenticator
from .serving import Messages


def anthropic_router(messages: Messages, authenticator: Authenticator) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/messages", summary="Create a message (Anthropic Messages API)")
    @router.post("/anthropic/v1/messages", include_in_schema=False)
    async def create_message(request: Request) -> Response:
        caller = authenticator.authenticate_request(request)
        return await messages.handle(request, caller, request.scope["state"]["request_id"])

    @router.post("/v1/messages/count_tokens", summary="Count a message's input tokens (Anthropic)")
    @router.post("/anthropic/v1/messages/count_tokens", include_in_schema=False)
    async def count_message_tokens(request: Request) -> Response:
        authenticator.authenticate_request(request)
        return await messages.count_tokens(request, request.scope["state"]["request_id"])

    return router
