"""Ollama API: `/api/chat` and `/api/generate` → Turn → runner → NDJSON (or one JSON object).

The turn runs through the shared codec loop (api/codec_turn.py); this parses the request
(protocol.py) and hands it the NDJSON codec (render.py). A request without messages or prompt is
Ollama's "load the model": answered at once with `done_reason: "load"`, no account used.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from ...chat.assemble import OutFinish
from ...chat.attachments import AttachmentPolicy
from ...chat.runner import LeaseSource
from ...chat.turn import ModelRegistry
from ..access import AccessRecord
from ..auth import Caller
from ..codec_turn import TurnService
from ..request_body import read_json
from .protocol import Parsed, attachments_of, chat_turn, generate_turn
from .render import Kind, StreamCodec, Timing, final_body

SURFACE = "ollama"  # the `surface` label of this surface's requests
LeasesFor = Callable[[Caller], LeaseSource]
_JSON = {"content-type": "application/json; charset=utf-8"}


class OllamaTurns:
    """`POST /api/chat` and `POST /api/generate`."""

    def __init__(self, service: TurnService, registry: ModelRegistry, leases_for: LeasesFor,
                 files: AttachmentPolicy | None = None) -> None:
        self.service = service
        self.registry = registry
        self.leases_for = leases_for
        self.files = files or AttachmentPolicy()

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
        attachments = await attachments_of(parsed.images, self.files)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        record = AccessRecord.claim(request, turn.request_id, caller.key_name, turn.model_name, turn.stream)
        leases = self.leases_for(caller)
        if turn.stream:
            codec = StreamCodec(kind, turn.model_name, timing)
            return await self.service.stream(turn, caller, leases, request.receive, record, codec)
        forced = turn.tool_choice.forces_call

        def body_of(finish: OutFinish) -> bytes:
            return _dumps(final_body(kind, turn.model_name, finish, timing, forced_call=forced))

        return await self.service.complete(turn, caller, leases, request.receive, record, body_of, _JSON)


def _dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
