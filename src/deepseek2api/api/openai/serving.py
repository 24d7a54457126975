"""OpenAI chat completions: parse the request into a Turn, pick its leases, hand it to the turn endpoint.

The hot path (one chunk per upstream token) is kept cheap: the chunk envelope is encoded once per
request (render.py `ChunkEncoder`) and each chunk only JSON-encodes its text; chunks already queued
go out in one write. Usage comes counted on `OutFinish` (the runner counts it once per turn, off the
event loop). Everything else — streaming, the status rule, the access line — is api/endpoint.py's.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from ..auth import Caller
from ..dialect import OPENAI
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..request_body import read_json
from .protocol import attachments_of, to_turn, uses_legacy_functions, validate_request
from .render import ChatCodec

UsagePlacement = Literal["both", "openai", "deepseek"]
SURFACE = "openai"  # the `surface` label of this surface's requests


class ChatCompletions:
    """`POST /v1/chat/completions`."""

    def __init__(self, deps: SurfaceDeps, *, usage_chunk: UsagePlacement = "both") -> None:
        self.deps = deps
        self.usage_chunk = usage_chunk
        self.endpoint = TurnEndpoint(deps, SURFACE, OPENAI)

    async def handle(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await read_json(request)
        req = validate_request(body)  # raises RequestInvalid (an ApiError)
        attachments = await attachments_of(req, self.deps.files)  # image_url / file parts; 400/413 naming the part
        turn = to_turn(req, self.deps.registry, request_id, attachments)
        codec = ChatCodec(request_id, turn.model_name, thinking=turn.model.thinking,
                          legacy=uses_legacy_functions(req), include_usage=turn.include_usage,
                          usage_chunk=self.usage_chunk)
        return await self.endpoint.serve(request, turn, caller, self.deps.leases_for(caller), codec)
