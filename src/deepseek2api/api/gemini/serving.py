"""Gemini API: `generateContent` / `streamGenerateContent` / `countTokens` → Turn → runner → Gemini JSON.

The turn itself runs through the shared codec loop (api/codec_turn.py); this only parses the request
(protocol.py) and picks the codec (render.py): SSE for `?alt=sse`, a streamed JSON array otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...chat.assemble import OutFinish
from ...chat.attachments import AttachmentPolicy
from ...chat.prompt import build_prompt
from ...chat.runner import LeaseSource
from ...chat.usage import count_tokens
from ..access import AccessRecord
from ..auth import Caller
from ..codec_turn import TurnService
from ..request_body import read_json
from .protocol import GeminiModels, attachments_of, model_name, to_turn
from .render import StreamCodec, count_body, new_response_id, response_body

SURFACE = "gemini"  # the `surface` label of this surface's requests
LeasesFor = Callable[[Caller], LeaseSource]
_JSON = {"content-type": "application/json; charset=utf-8"}


class GenerateContent:
    """`models/{model}:generateContent`, `:streamGenerateContent` and `:countTokens`."""

    def __init__(self, service: TurnService, models: GeminiModels, leases_for: LeasesFor,
                 files: AttachmentPolicy | None = None) -> None:
        self.service = service
        self.models = models
        self.leases_for = leases_for
        self.files = files or AttachmentPolicy()

    async def generate(self, request: Request, caller: Caller, path_model: str, *, stream: bool) -> Response:
        request_id: str = request.scope["state"]["request_id"]
        name = model_name(path_model)
        parsed = to_turn(await read_json(request), name, self.models, request_id, stream=stream)
        turn, options = parsed.turn, parsed.options
        attachments = await attachments_of(parsed.blocks, self.files)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        record = AccessRecord.claim(request, request_id, caller.key_name, name, stream)
        leases = self.leases_for(caller)
        response_id = new_response_id()
        if stream:
            codec = StreamCodec(name, response_id, options, sse=request.query_params.get("alt") == "sse")
            return await self.service.stream(turn, caller, leases, request.receive, record, codec)
        forced = turn.tool_choice.forces_call

        def body_of(finish: OutFinish) -> bytes:
            return _dumps(response_body(finish, name, response_id, options, forced))

        return await self.service.complete(turn, caller, leases, request.receive, record, body_of, _JSON)

    async def count_tokens(self, request: Request, path_model: str) -> Response:
        """What the contents would count in DeepSeek's tokenizer (system instruction and tools included)."""
        name = model_name(path_model)
        parsed = to_turn(await read_json(request), name, self.models, request.scope["state"]["request_id"],
                         stream=False)
        tokens = await asyncio.to_thread(lambda: count_tokens(build_prompt(parsed.turn)))
        return Response(_dumps(count_body(tokens)), headers=_JSON)


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
