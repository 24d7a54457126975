"""Gemini API: `generateContent` / `streamGenerateContent` / `countTokens` → Turn → runner → Gemini JSON.

This parses the request (protocol.py), picks the turn's leases and the codec (render.py: SSE for
`?alt=sse`, a streamed JSON array otherwise) and hands them to the turn endpoint (api/endpoint.py),
which does the rest on every surface alike; errors are in Google's envelope (the dialect table).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...chat.prompt import build_prompt
from ...chat.usage import count_tokens
from ..auth import Caller
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..request_body import read_json
from .errors import GEMINI
from .protocol import GeminiModels, attachments_of, model_name, to_turn
from .render import GeminiCodec, count_body, new_response_id

SURFACE = "gemini"  # the `surface` label of this surface's requests
_JSON = {"content-type": "application/json; charset=utf-8"}


class GenerateContent:
    """`models/{model}:generateContent`, `:streamGenerateContent` and `:countTokens`."""

    def __init__(self, deps: SurfaceDeps, models: GeminiModels) -> None:
        self.deps = deps
        self.models = models
        self.endpoint = TurnEndpoint(deps, SURFACE, GEMINI)

    async def generate(self, request: Request, caller: Caller, path_model: str, *, stream: bool) -> Response:
        request_id: str = request.scope["state"]["request_id"]
        name = model_name(path_model)
        parsed = to_turn(await read_json(request), name, self.models, request_id, stream=stream)
        turn = parsed.turn
        attachments = await attachments_of(parsed.blocks, self.deps.files)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        codec = GeminiCodec(name, new_response_id(), parsed.options, sse=request.query_params.get("alt") == "sse",
                            forced_call=turn.tool_choice.forces_call)
        return await self.endpoint.serve(request, turn, caller, self.deps.leases_for(caller), codec)

    async def count_tokens(self, request: Request, path_model: str) -> Response:
        """What the contents would count in DeepSeek's tokenizer (system instruction and tools included)."""
        name = model_name(path_model)
        parsed = to_turn(await read_json(request), name, self.models, request.scope["state"]["request_id"],
                         stream=False)
        tokens = await asyncio.to_thread(lambda: count_tokens(build_prompt(parsed.turn)))
        return Response(_dumps(count_body(tokens)), headers=_JSON)


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
