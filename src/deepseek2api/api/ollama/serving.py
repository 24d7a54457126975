"""Ollama API: `/api/chat` and `/api/generate` → Turn → runner → NDJSON (or one JSON object).

This parses the request (protocol.py), picks the turn's leases and the NDJSON codec (render.py) and
hands them to the turn endpoint (api/endpoint.py). A request without messages or prompt is Ollama's
"load the model": answered at once with `done_reason: "load"`, no account used.
"""

from __future__ import annotations

import dataclasses
import json

from starlette.requests import Request
from starlette.responses import Response

from ..auth import Caller
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..request_body import read_json
from .errors import OLLAMA
from .protocol import Parsed, attachments_of, chat_turn, generate_turn
from .render import Kind, OllamaCodec, Timing, final_body

SURFACE = "ollama"  # the `surface` label of this surface's requests
_JSON = {"content-type": "application/json; charset=utf-8"}


class OllamaTurns:
    """`POST /api/chat` and `POST /api/generate`."""

    def __init__(self, deps: SurfaceDeps) -> None:
        self.deps = deps
        self.registry = deps.registry
        self.endpoint = TurnEndpoint(deps, SURFACE, OLLAMA)

    async def chat(self, request: Request, caller: Caller) -> Response:
        timing = Timing()
        parsed = chat_turn(await read_json(request), self.registry, request.scope["state"]["request_id"])
        return await self._serve("chat", parsed, request, caller, timing)

    async def generate(self, request: Request, caller: Caller) -> Response:
        timing = Timing()
        parsed = generate_turn(await read_json(request), self.registry, request.scope["state"]["request_id"])
        return await self._serve("generate", parsed, request, caller, timing)

    async def _serve(self, kind: Kind, parsed: Parsed, request: Request, caller: Caller, timing: Timing) -> Response:
        turn = parsed.turn
        if parsed.empty:
            body = final_body(kind, turn.model_name, None, timing, load=True)
            return Response(_dumps(body) + (b"\n" if turn.stream else b""),
                            headers={"content-type": "application/x-ndjson"} if turn.stream else _JSON)
        attachments = await attachments_of(parsed.images, self.deps.files)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        codec = OllamaCodec(kind, turn.model_name, timing, forced_call=turn.tool_choice.forces_call)
        return await self.endpoint.serve(request, turn, caller, self.deps.leases_for(caller), codec)


def _dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
