"""OpenAI Responses: parse the request into a Turn, hand it to the turn endpoint; the stored responses.

The turn is the endpoint's (api/endpoint.py: failover before the first byte, the status rule, usage on
`OutFinish`); this module only adds what Responses needs: `previous_response_id` (the stored chain is
prepended), storing the finished response (unless `store: false`, through the codec's `save`), and the
event stream of render.py's `ResponsesCodec`. After the first byte, a failure is a `response.failed`
event, never text.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...store.responses import ResponseStore, StoredResponse
from ..auth import Caller
from ..dialect import OPENAI
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..errors import ApiError, not_found
from ..request_body import read_json
from .protocol import ResponsesRequest, attachments_of, to_turn, validate_request
from .render import ResponseMeta, ResponsesCodec, new_response_id

SURFACE = "responses"  # the `surface` label of this surface's requests
log = logging.getLogger(__name__)


def missing_response(response_id: str, param: str | None = None) -> ApiError:
    """The 404 for an unknown, expired, deleted or never-stored response id."""
    what = "Previous response" if param else "Response"
    return not_found(f"{what} with id '{response_id}' not found (unknown, expired, deleted, or sent with "
                     "store=false).", "previous_response_not_found" if param else "not_found", param)


def store_unavailable() -> ApiError:
    """The state store could not be read (a disk or database failure): a retryable 503."""
    return ApiError(503, "The gateway's response store is unavailable; see its log.", "server_error", None,
                    "response_store_unavailable", retry_after=5)


class Responses:
    """`POST /v1/responses` and the stored responses behind `GET`/`DELETE /v1/responses/{id}`."""

    def __init__(self, deps: SurfaceDeps, store: ResponseStore) -> None:
        self.deps = deps
        self.store = store
        self.endpoint = TurnEndpoint(deps, SURFACE, OPENAI, adapt=on_this_surface)

    # ---- POST /v1/responses -------------------------------------------------------------

    async def create(self, request: Request, caller: Caller, request_id: str) -> Response:
        req = validate_request(await read_json(request))
        context: list[dict[str, Any]] = []
        if req.previous_response_id is not None:
            stored = await self._stored(req.previous_response_id)
            if stored is None:
                raise missing_response(req.previous_response_id, "previous_response_id")
            context = [*stored.context, *stored.input_items, *stored.body.get("output", ())]
        # input_image / input_file parts of the chain and of this input (400/413 naming the part)
        files = self.deps.files
        attachments = (await attachments_of(context, files, "previous_response_id")
                       + await attachments_of(req.items, files))
        turn = to_turn(req, context, self.deps.registry, request_id, attachments)
        meta = ResponseMeta(id=new_response_id(), created_at=int(time.time()), model=req.model, echo=req.echo,
                            parallel_tool_calls=req.parallel_tool_calls,
                            previous_response_id=req.previous_response_id, store=req.store, effort=req.effort,
                            summary=req.summary, max_output_tokens=req.max_output_tokens)

        async def save(body: dict[str, Any]) -> None:
            await self._save(req, context, body)

        codec = ResponsesCodec(request_id, meta, turn.tools, save, streaming=req.stream)
        return await self.endpoint.serve(request, turn, caller, self.deps.leases_for(caller), codec)

    # ---- stored responses -----------------------------------------------------------------

    async def retrieve(self, response_id: str) -> dict[str, Any]:
        stored = await self._stored(response_id)
        if stored is None:
            raise missing_response(response_id)
        return stored.body

    async def delete(self, response_id: str) -> dict[str, Any]:
        try:
            deleted = await self.store.delete(response_id)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        if not deleted:
            raise missing_response(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, response_id: str, *, limit: int, order: str, after: str | None) -> dict[str, Any]:
        stored = await self._stored(response_id)
        if stored is None:
            raise missing_response(response_id)
        items = list(stored.input_items)
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [item.get("id") for item in items]
            if after in ids:
                items = items[ids.index(after) + 1:]
        page = items[:limit]
        return {"object": "list", "data": page, "first_id": page[0].get("id") if page else None,
                "last_id": page[-1].get("id") if page else None, "has_more": len(items) > limit}

    async def _stored(self, response_id: str) -> StoredResponse | None:
        try:
            return await self.store.get(response_id)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None

    async def _save(self, req: ResponsesRequest, context: list[dict[str, Any]], body: dict[str, Any]) -> None:
        """Keep the response for `previous_response_id` (never fails the response itself)."""
        if not req.store:
            return
        record = StoredResponse(body["id"], body, list(req.items), context, time.time() + self.store.ttl)
        try:
            await self.store.put(record)
        except Exception:
            log.warning("could not store response %s", body["id"], exc_info=True)


_PARAMS = {"response_format": "text.format", "messages": "input"}  # the chat names of shared errors


def on_this_surface(error: ApiError) -> ApiError:
    """Shared turn errors name chat-completions params; say the Responses name instead."""
    if error.param in _PARAMS:
        return ApiError(error.status, error.message, error.type, _PARAMS[error.param], error.code,
                        error.retry_after, dict(error.headers))
    return error

