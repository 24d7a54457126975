"""OpenAI Responses: parse the request into a Turn, hand it to the turn endpoint; the stored responses.

The turn is the endpoint's (api/endpoint.py: failover before the first byte, the status rule, usage on
`OutFinish`); this module only adds what Responses needs: `previous_response_id` and `item_reference`
(resolved from the caller's stored responses, stored.py), storing the finished response (unless
`store: false`, through the codec's `save`), and the event stream of render.py's `ResponsesCodec`.
After the first byte, a failure is a `response.failed` event, never text.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...chat.web_search import query_of, responses_web_search, with_search
from ...store.responses import ResponseStore
from ..auth import Caller
from ..dialect import OPENAI
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..errors import ApiError
from ..request_body import read_json
from .protocol import attachments_of, to_turn, validate_request
from .render import ResponseMeta, ResponsesCodec, new_response_id
from .stored import StoredResponses

SURFACE = "responses"  # the `surface` label of this surface's requests


class Responses:
    """`POST /v1/responses` and the stored responses behind `GET`/`DELETE /v1/responses/{id}`."""

    def __init__(self, deps: SurfaceDeps, store: ResponseStore) -> None:
        self.deps = deps
        self.store = store
        self.stored = StoredResponses(store)
        self.endpoint = TurnEndpoint(deps, SURFACE, OPENAI, adapt=on_this_surface)

    # ---- POST /v1/responses -------------------------------------------------------------

    async def create(self, request: Request, caller: Caller, request_id: str) -> Response:
        req = validate_request(await read_json(request))
        context = await self.stored.continuation(req, caller)  # the caller's chain and item references
        # input_image / input_file parts of the chain and of this input (400/413 naming the part)
        files = self.deps.files
        attachments = (await attachments_of(context.context, files, "previous_response_id")
                       + await attachments_of(context.items, files))
        turn = to_turn(context.request(req), context.context, self.deps.registry, request_id, attachments)
        search = responses_web_search(req.echo.get("tools"))
        if search is not None:
            turn = with_search(turn)  # the hosted tool runs as DeepSeek's search (chat/web_search.py)
        meta = ResponseMeta(id=new_response_id(), created_at=int(time.time()), model=req.model, echo=req.echo,
                            parallel_tool_calls=req.parallel_tool_calls,
                            previous_response_id=req.previous_response_id, store=req.store, effort=req.effort,
                            summary=req.summary, max_output_tokens=req.max_output_tokens)

        async def save(body: dict[str, Any]) -> None:  # before the stream's end: a follow-up may come at once
            await self.stored.save(req, context, caller, body)

        codec = ResponsesCodec(request_id, meta, turn.tools, save, streaming=req.stream, search=search,
                               query=query_of(turn) if search is not None else "")
        return await self.endpoint.serve(request, turn, caller, self.deps.leases_for(caller), codec)

    # ---- stored responses (stored.py: each key sees only its own) --------------------------

    async def retrieve(self, response_id: str, caller: Caller) -> dict[str, Any]:
        return await self.stored.retrieve(response_id, caller)

    async def delete(self, response_id: str, caller: Caller) -> dict[str, Any]:
        return await self.stored.delete(response_id, caller)

    async def input_items(self, response_id: str, caller: Caller, *, limit: int, order: str,
                          after: str | None) -> dict[str, Any]:
        return await self.stored.input_items(response_id, caller, limit=limit, order=order, after=after)


_PARAMS = {"response_format": "text.format", "messages": "input"}  # the chat names of shared errors


def on_this_surface(error: ApiError) -> ApiError:
    """Shared turn errors name chat-completions params; say the Responses name instead."""
    if error.param in _PARAMS:
        return ApiError(error.status, error.message, error.type, _PARAMS[error.param], error.code,
                        error.retry_after, dict(error.headers))
    return error
