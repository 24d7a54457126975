"""Anthropic Messages: request → Turn → runner → Anthropic JSON or SSE events.

The same runner, prompt, tool parser and sieve as the OpenAI surface; only the wire shapes differ.
A failure before the first byte is an HTTP error in Anthropic's envelope (api/errors.py renders it
for these paths); after it, an `event: error`. Keep-alives are `ping` events.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import aclosing, asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from ...chat.assemble import OutContent, OutFinish, OutReasoning
from ...chat.attachments import AttachmentPolicy
from ...chat.prompt import build_prompt
from ...chat.runner import AccountSource, Lease, LeaseSource, TurnRunner, TurnTrace, fallback_header
from ...chat.tools.events import OutToolCall
from ...chat.tracker import TurnTracker
from ...chat.turn import Turn
from ...chat.usage import count_tokens
from ...chat.web_search import WebSearchTool, query_of, with_search
from ..access import AccessRecord, cancelled_outcome
from ..auth import Caller
from ..complete import run_to_finish
from ..errors import (
    AnthropicStreamError,
    ApiError,
    anthropic_status,
    client_closed,
    from_failure,
)
from ..observe import RequestObserver, in_flight, report
from ..request_body import read_json
from ..sse import WRITE_TIMEOUT, EventChannel, EventStreamResponse
from .protocol import ClaudeModels, attachments_of, session_key, to_turn, web_search_of
from .render import (
    PING,
    StreamWriter,
    cited_text_blocks,
    content_blocks,
    count_body,
    message_body,
    new_message_id,
    search_blocks,
    server_tool_id,
    stop_reason,
    usage_body,
)
from .signature import ThinkingSigner

LeasesFor = Callable[[Caller], AccountSource]
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

    def __init__(self, runner: TurnRunner, models: ClaudeModels, leases_for: LeasesFor, *, keepalive: float,
                 tracker: TurnTracker, signer: ThinkingSigner, write_timeout: float = WRITE_TIMEOUT,
                 observer: RequestObserver | None = None,
                 files: AttachmentPolicy | None = None) -> None:
        self.observer = observer  # metrics and the console's tail (api/observe.py)
        self.runner = runner
        self.write_timeout = write_timeout
        self.models = models
        self.leases_for = leases_for
        self.keepalive = keepalive
        self.tracker = tracker
        self.signer = signer
        self.files = files or AttachmentPolicy()
        self.sessions = SessionAccounts()

    async def handle(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await read_json(request)
        turn = to_turn(body, self.models, self.signer, request_id)
        attachments = await attachments_of(body, self.files)  # image / document blocks (400/413 naming them)
        if attachments:
            turn = dataclasses.replace(turn, attachments=attachments)
        search = web_search_of(body)
        if search is not None and not search.enabled:
            search = None
        if search is not None:
            turn = with_search(turn)  # the hosted search tool runs as DeepSeek's search (chat/web_search.py)
        record = AccessRecord.claim(request, request_id, caller.key_name, turn.model_name, turn.stream)
        session = request.headers.get(SESSION_HEADER) or session_key(body)
        source = self.leases_for(caller)
        leases: LeaseSource = SessionLeases(source, self.sessions, session) if session else source
        if turn.stream:
            return await self._stream(turn, caller, leases, request.receive, record, search)
        return await self._complete(turn, caller, leases, request.receive, record, search)

    async def count_tokens(self, request: Request, request_id: str) -> Response:
        """What the prompt of this request would count in DeepSeek's tokenizer (tools included)."""
        turn = to_turn(await read_json(request), self.models, self.signer, request_id, count_only=True)
        tokens = await asyncio.to_thread(lambda: count_tokens(build_prompt(turn)))
        return _json(count_body(tokens), request_id)

    # ---- non-streaming -------------------------------------------------------------------

    async def _complete(self, turn: Turn, caller: Caller, leases: LeaseSource, receive: Receive,
                        record: AccessRecord, search: WebSearchTool | None = None) -> Response:
        """The whole answer as one body; a client that hangs up first cancels the turn (api/complete.py)."""
        trace = TurnTrace()
        try:
            finish = await run_to_finish(self.runner.run(turn, leases, trace, buffered=True), receive, self.tracker,
                                         self.observer, SURFACE)
        except Exception as failure:  # noqa: BLE001 - every turn failure is answered (from_failure)
            error = self._api_error(failure, caller, trace)
            assert error is not None
            _log(self.observer, turn, record, trace, anthropic_status(error), error.code)
            raise error from None
        if finish is None:
            _log(self.observer, turn, record, trace, 499, "client_closed")
            raise client_closed()
        calls = finish.tool_calls
        text = finish.content_text
        if calls and turn.tool_choice.forces_call:
            text = ""  # a forced call has no text before it (the stream holds it back the same way)
        searches: int | None = None
        if search is None:
            content = content_blocks(self.signer, finish.reasoning_text, text, calls)
        else:
            searched, searches = _searched(turn, finish, search, text)
            content = content_blocks(self.signer, finish.reasoning_text, "", ())
            content += searched + content_blocks(self.signer, "", "", calls)
        body = message_body(new_message_id(), turn.model_name, content,
                            stop_reason(finish.finish_reason, finish.stop_sequence, bool(calls)),
                            finish.stop_sequence, usage_body(finish.usage, searches))
        _log(self.observer, turn, record, trace, 200, None)
        response = _json(body, turn.request_id)
        response.headers.update(fallback_header(trace))  # the mode the turn really ran in (issue 20)
        return response

    # ---- streaming -----------------------------------------------------------------------

    async def _stream(self, turn: Turn, caller: Caller, leases: LeaseSource, receive: Receive,
                      record: AccessRecord, search: WebSearchTool | None = None) -> Response:
        tracker = self.tracker
        trace = TurnTrace()
        writer = StreamWriter(new_message_id(), turn.model_name, self.signer)
        # no text before a forced call: held until we know; a searched answer's text follows its search
        # blocks, whose results are known at the end (and is split at its citations)
        hold_text = turn.tool_choice.forces_call or search is not None

        async def produce(channel: EventChannel) -> None:
            started = False
            held: list[str] = []
            called = False
            status, code = 200, None
            try:
                outs = self.runner.run(turn, leases, trace)
                async with tracker.inflight(), in_flight(self.observer, SURFACE), aclosing(outs) as events:
                    async for out in events:
                        if not started:
                            channel.put(writer.start())
                            started = True
                        if isinstance(out, OutContent):
                            if hold_text and not called:
                                held.append(out.text)
                            else:
                                await channel.write(writer.text(out.text))  # the hot path
                        elif isinstance(out, OutReasoning):
                            await channel.write(writer.reasoning(out.text))
                        elif isinstance(out, OutToolCall):
                            called = True
                            if search is None:
                                held.clear()
                            channel.put(writer.tool_call(out))
                        elif isinstance(out, OutFinish):
                            calls = bool(out.tool_calls) or called
                            searches: int | None = None
                            if search is not None:
                                text = "" if calls and turn.tool_choice.forces_call else "".join(held)
                                searched, searches = _searched(turn, out, search, text)
                                for block in searched:
                                    channel.put(writer.whole_block(block))
                            elif held and not calls:
                                channel.put(writer.text("".join(held)))
                            reason = stop_reason(out.finish_reason, out.stop_sequence, calls)
                            channel.put(writer.finish(reason, out.stop_sequence, out.usage, searches))
                            channel.settle()
            except BaseException as exc:
                error = self._api_error(exc, caller, trace)
                if error is None:
                    status, code = cancelled_outcome(channel.stalled)
                    raise
                code = error.code
                # Before the first byte the handler answers it as an HTTP error; after it (output or only
                # pings), `event: error`.
                as_http = channel.fail(AnthropicStreamError(error, turn.request_id))
                status = anthropic_status(error) if as_http else 200  # what the client got (api/sse.py)
            finally:
                _log(self.observer, turn, record, trace, status, code)

        channel = EventChannel()
        channel.start(produce)
        tracker.track(channel.producer)
        first = await channel.first(self.keepalive, receive)  # a client gone while queued cancels the turn
        if isinstance(first, AnthropicStreamError):
            raise first.error
        headers = [(b"request-id", turn.request_id.encode())]
        headers += [(k.encode(), v.encode()) for k, v in fallback_header(trace).items()]
        return EventStreamResponse(channel, keepalive=self.keepalive, headers=headers,
                                   first=PING if first is None else first, keepalive_bytes=PING,
                                   write_timeout=self.write_timeout)

    @staticmethod
    def _api_error(exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError | None:
        return from_failure(exc, attempts=trace.attempts, passthrough=caller.passthrough_token is not None)


def _searched(turn: Turn, finish: OutFinish, search: WebSearchTool, text: str) -> tuple[list[dict[str, Any]], int]:
    """A searched turn's blocks after its thinking — the search (when DeepSeek searched) and the answer
    with its citations — and the number of searches for `usage.server_tool_use`."""
    if not finish.citations:  # DeepSeek answered without searching: no search to show
        return ([{"type": "text", "text": text}] if text else []), 0
    results = search.results(finish.citations)
    blocks = search_blocks(server_tool_id(), query_of(turn), results)
    return blocks + cited_text_blocks(text, results), 1


def _json(body: dict[str, Any], request_id: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                    media_type="application/json", headers={"request-id": request_id})


def _log(observer: RequestObserver | None, turn: Turn, record: AccessRecord, trace: TurnTrace, status: int,
         code: str | None) -> None:
    """The request's access line (api/access.py), and the same facts to the observer (metrics, console tail)."""
    record.status, record.error_code, record.usage = status, code, trace.usage
    record.write(trace)
    report(observer, SURFACE, turn, trace, record.started, status)
