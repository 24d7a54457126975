"""Anthropic Messages: parse the request into a Turn, pick its leases, hand it to the turn endpoint.

The same runner, prompt, tool parser and sieve as the OpenAI surface; only the wire shapes differ
(render.py's `MessagesCodec`, dialect.py). A failure before the first byte is an HTTP error in
Anthropic's envelope; after it, an `event: error`. Keep-alives are `ping` events. A client session
(Claude Code's session header, or the conversation's first message) prefers the account that served
it last, so DeepSeek's side of the conversation stays warm on one account.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response

from ...chat.prompt import build_prompt
from ...chat.runner import AccountSource, Lease, LeaseSource
from ...chat.usage import count_tokens
from ...chat.web_search import query_of, with_search
from ..auth import Caller
from ..endpoint import SurfaceDeps, TurnEndpoint
from ..request_body import read_json
from .dialect import ANTHROPIC
from .protocol import ClaudeModels, attachments_of, session_key, to_turn, web_search_of
from .render import MessagesCodec, count_body
from .signature import ThinkingSigner

SESSION_HEADER = "x-claude-code-session-id"
SURFACE = "anthropic"  # the `surface` label of this surface's requests


class SessionAccounts:
    """Which account served a client session last (bounded, least recently used forgotten first)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._last: collections.OrderedDict[str, str] = collections.OrderedDict()

    def get(self, session: str) -> str | None:
        return self._last.get(_bounded(session))

    def remember(self, session: str, account_id: str) -> None:
        session = _bounded(session)
        self._last[session] = account_id
        self._last.move_to_end(session)
        while len(self._last) > self._size:
            self._last.popitem(last=False)


def _bounded(session: str) -> str:
    """The map's key for a client's session id: itself up to 128 characters, else its SHA-256 (a client's
    9 MB `metadata.user_id` must not be kept 4096 times)."""
    if len(session) <= _SESSION_CHARS:
        return session
    return "sha256:" + hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()


_SESSION_CHARS = 128


class SessionLeases:
    """A lease source that asks for the session's last account first — only if it is free now."""

    def __init__(self, source: AccountSource, sessions: SessionAccounts, session: str) -> None:
        self.source, self.sessions, self.session = source, sessions, session

    @asynccontextmanager
    async def lease(self, *, exclude: Collection[str] = ()) -> AsyncIterator[Lease]:
        prefer = self.sessions.get(self.session)
        async with self.source.lease(exclude=exclude, prefer=prefer) as lease:
            self.sessions.remember(self.session, lease.account_id)
            yield lease


class Messages:
    """`POST /v1/messages` and `POST /v1/messages/count_tokens`."""

    def __init__(self, deps: SurfaceDeps, models: ClaudeModels, signer: ThinkingSigner) -> None:
        self.deps = deps
        self.models = models
        self.signer = signer
        self.sessions = SessionAccounts()
        self.endpoint = TurnEndpoint(deps, SURFACE, ANTHROPIC)

    async def handle(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await read_json(request)
        turn = to_turn(body, self.models, self.signer, request_id)
        attachments = await attachments_of(body, self.deps.files)  # image / document blocks (400/413 naming them)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        search = web_search_of(body)
        if search is not None and not search.enabled:
            search = None
        if search is not None:
            turn = with_search(turn)  # the hosted search tool runs as DeepSeek's search (chat/web_search.py)
        session = request.headers.get(SESSION_HEADER) or session_key(body)
        source = self.deps.leases_for(caller)
        leases: LeaseSource = SessionLeases(source, self.sessions, session) if session else source
        codec = MessagesCodec(request_id, turn.model_name, self.signer, forces_call=turn.tool_choice.forces_call,
                              search=search, query=query_of(turn) if search is not None else "")
        return await self.endpoint.serve(request, turn, caller, leases, codec)

    async def count_tokens(self, request: Request, request_id: str) -> Response:
        """What the prompt of this request would count in DeepSeek's tokenizer (tools included)."""
        turn = to_turn(await read_json(request), self.models, self.signer, request_id, count_only=True)
        tokens = await asyncio.to_thread(lambda: count_tokens(build_prompt(turn)))
        return Response(json.dumps(count_body(tokens), ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json", headers={"request-id": request_id})
