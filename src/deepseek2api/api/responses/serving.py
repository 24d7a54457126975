"""OpenAI Responses: request → Turn → runner → Response object or its event stream; stored responses.

The turn core is the chat surface's (runner, failover before the first byte, usage on `OutFinish`);
this module only adds what Responses needs: `previous_response_id` and `item_reference` (resolved from
the caller's stored responses, stored.py), storing the finished response (unless `store: false`), and
the event stream of render.py. Nothing is sent before the runner's first event, so a turn that fails
before its first byte is still an HTTP error; after it, a failure is a `response.failed` event, never text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from ...chat.assemble import OutContent, OutEvent, OutFinish, OutReasoning
from ...chat.attachments import AttachmentPolicy
from ...chat.runner import LeaseSource, TurnRunner, TurnTrace, fallback_header
from ...chat.tools.events import OutReasoning as ToolReasoning
from ...chat.tools.events import OutText, OutToolCall
from ...chat.tracker import TurnTracker
from ...chat.turn import ModelRegistry, Turn
from ...chat.web_search import WebSearchTool, query_of, responses_web_search, with_search, without_links
from ...store.responses import ResponseStore
from ..access import AccessRecord, cancelled_outcome
from ..auth import Caller
from ..complete import run_to_finish
from ..errors import ApiError, client_closed, from_failure
from ..observe import RequestObserver, in_flight, report
from ..request_body import read_json
from ..sse import KEEPALIVE, WRITE_TIMEOUT, EventChannel, EventStreamResponse
from .protocol import ResponsesRequest, attachments_of, to_turn, validate_request
from .render import OutputBuilder, ResponseMeta, new_response_id
from .stored import Continuation, StoredResponses

SURFACE = "responses"  # the `surface` label of this surface's requests
log = logging.getLogger(__name__)

LeasesFor = Callable[[Caller], LeaseSource]
_TEXT = (OutContent, OutText)
_REASONING = (OutReasoning, ToolReasoning)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A turn that failed after keep-alives went out but before any event: a complete failed stream."""

    error: ApiError
    builder: OutputBuilder

    def sse_bytes(self) -> bytes:
        return b"".join(self.builder.start()) + self.builder.failed(self.error)


class Responses:
    """`POST /v1/responses` and the stored responses behind `GET`/`DELETE /v1/responses/{id}`."""

    def __init__(self, runner: TurnRunner, registry: ModelRegistry, leases_for: LeasesFor, store: ResponseStore, *,
                 keepalive: float, tracker: TurnTracker, write_timeout: float = WRITE_TIMEOUT,
                 observer: RequestObserver | None = None,
                 files: AttachmentPolicy | None = None) -> None:
        self.observer = observer  # metrics and the console's tail (api/observe.py)
        self.write_timeout = write_timeout
        self.runner = runner
        self.registry = registry
        self.leases_for = leases_for
        self.store = store
        self.stored = StoredResponses(store)
        self.keepalive = keepalive
        self.tracker = tracker
        self.files = files or AttachmentPolicy()

    # ---- POST /v1/responses -------------------------------------------------------------

    async def create(self, request: Request, caller: Caller, request_id: str) -> Response:
        req = validate_request(await read_json(request))
        context = await self.stored.continuation(req, caller)  # the caller's chain and item references
        # input_image / input_file parts of the chain and of this input (400/413 naming the part)
        attachments = (await attachments_of(context.context, self.files, "previous_response_id")
                       + await attachments_of(context.items, self.files))
        turn = to_turn(context.request(req), context.context, self.registry, request_id, attachments)
        search = responses_web_search(req.echo.get("tools"))
        if search is not None:
            turn = with_search(turn)  # the hosted tool runs as DeepSeek's search (chat/web_search.py)
        meta = ResponseMeta(id=new_response_id(), created_at=int(time.time()), model=req.model, echo=req.echo,
                            parallel_tool_calls=req.parallel_tool_calls,
                            previous_response_id=req.previous_response_id, store=req.store, effort=req.effort,
                            summary=req.summary, max_output_tokens=req.max_output_tokens)
        record = AccessRecord.claim(request, request_id, caller.key_name, turn.model_name, turn.stream)
        if req.stream:
            return await self._stream(turn, req, context, meta, caller, request.receive, record, search)
        return await self._complete(turn, req, context, meta, caller, request.receive, record, search)

    async def _complete(self, turn: Turn, req: ResponsesRequest, context: Continuation, meta: ResponseMeta,
                        caller: Caller, receive: Receive, record: AccessRecord,
                        search: WebSearchTool | None = None) -> Response:
        """The whole Response as one body; a client that hangs up first cancels the turn (api/complete.py)."""
        trace = TurnTrace()
        calls: list[OutToolCall] = []

        def seen(out: OutEvent) -> None:
            if isinstance(out, OutToolCall):
                calls.append(out)

        try:
            finish = await run_to_finish(self._run(turn, caller, trace, True), receive, self.tracker, self.observer,
                                         SURFACE, seen)
        except Exception as failure:  # noqa: BLE001 - every turn failure is answered (from_failure)
            error = self._api_error(failure, caller, trace)
            self._log(turn, record, trace, error.status, error.code)
            raise error from None
        if finish is None:
            self._log(turn, record, trace, 499, "client_closed")
            raise client_closed()
        builder = OutputBuilder(meta, turn.tools, streaming=False)
        text = finish.content_text
        if search is not None:
            builder.web_search(query_of(turn))
            text, finish = _filtered(search, text, finish)
        if finish.reasoning_text:
            builder.reasoning(finish.reasoning_text)
        if text:
            builder.content(text)
        for call in calls:
            builder.tool_call(call.id, call.name, call.arguments)
        _, body = builder.finish(finish, finish.tool_calls)
        await self.stored.save(req, context, caller, body)
        self._log(turn, record, trace, 200, None)
        return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json", headers=fallback_header(trace))

    async def _stream(self, turn: Turn, req: ResponsesRequest, context: Continuation, meta: ResponseMeta,
                      caller: Caller, receive: Receive, record: AccessRecord,
                      search: WebSearchTool | None = None) -> Response:
        trace = TurnTrace()
        builder = OutputBuilder(meta, turn.tools, streaming=True)
        # with domain filters the answer's links are checked before it is sent: the text waits for the end
        held: list[str] | None = [] if search is not None and search.filters else None

        async def produce(channel: EventChannel) -> None:
            started = False
            status, code = 200, None
            try:
                async with self.tracker.inflight(), in_flight(self.observer, SURFACE), \
                        aclosing(self._run(turn, caller, trace)) as outs:
                    async for out in outs:
                        if not started:
                            for data in builder.start():
                                channel.put(data)
                            if search is not None:
                                for data in builder.web_search(query_of(turn)):
                                    channel.put(data)
                            started = True
                        if isinstance(out, _TEXT) and held is not None:
                            held.append(out.text)
                        elif isinstance(out, _TEXT):
                            for data in builder.content(out.text):
                                await channel.write(data)  # the hot path
                        elif isinstance(out, _REASONING):
                            for data in builder.reasoning(out.text):
                                await channel.write(data)
                        elif isinstance(out, OutToolCall):
                            for data in builder.tool_call(out.id, out.name, out.arguments):
                                channel.put(data)
                        elif isinstance(out, OutFinish):
                            if search is not None:
                                text, out = _filtered(search, "".join(held or ()), out)
                                for data in builder.content(text) if held else ():
                                    channel.put(data)
                            events, body = builder.finish(out, out.tool_calls)
                            await self.stored.save(req, context, caller, body)  # a follow-up may come at once
                            for data in events:
                                channel.put(data)
                            channel.settle()
            except BaseException as exc:
                error = _on_this_surface(from_failure(exc, attempts=trace.attempts,
                                                      passthrough=caller.passthrough_token is not None))
                if error is None:
                    status, code = cancelled_outcome(channel.stalled)
                    raise
                status, code = error.status, error.code
                if started:
                    channel.put(builder.failed(error))
                    channel.settle()
                    status = 200
                elif not channel.fail(_Failure(error, builder)):
                    status = 200  # it ends a stream that already answered 200 (api/sse.py)
            finally:
                self._log(turn, record, trace, status, code)

        channel = EventChannel()
        channel.start(produce)
        self.tracker.track(channel.producer)
        first = await channel.first(self.keepalive, receive)  # a client gone while queued cancels the turn
        if isinstance(first, _Failure):
            raise first.error
        if first is None:
            first = KEEPALIVE
        headers = [(b"x-request-id", turn.request_id.encode())]
        headers += [(k.encode(), v.encode()) for k, v in fallback_header(trace).items()]
        return EventStreamResponse(channel, keepalive=self.keepalive, headers=headers, first=first,
                                   write_timeout=self.write_timeout)

    # ---- stored responses (stored.py: each key sees only its own) --------------------------

    async def retrieve(self, response_id: str, caller: Caller) -> dict[str, Any]:
        return await self.stored.retrieve(response_id, caller)

    async def delete(self, response_id: str, caller: Caller) -> dict[str, Any]:
        return await self.stored.delete(response_id, caller)

    async def input_items(self, response_id: str, caller: Caller, *, limit: int, order: str,
                          after: str | None) -> dict[str, Any]:
        return await self.stored.input_items(response_id, caller, limit=limit, order=order, after=after)

    # ---- plumbing -------------------------------------------------------------------------

    def _run(self, turn: Turn, caller: Caller, trace: TurnTrace,
             buffered: bool = False) -> AsyncGenerator[OutEvent, None]:
        return self.runner.run(turn, self.leases_for(caller), trace, buffered=buffered)

    def _api_error(self, exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError:
        error = _on_this_surface(from_failure(exc, attempts=trace.attempts,
                                              passthrough=caller.passthrough_token is not None))
        return error if error is not None else client_closed()

    def _log(self, turn: Turn, record: AccessRecord, trace: TurnTrace, status: int, code: str | None) -> None:
        """The request's access line (api/access.py), and the same facts to the observer (metrics, console tail)."""
        record.status, record.error_code, record.usage = status, code, trace.usage
        record.write(trace)
        report(self.observer, SURFACE, turn, trace, record.started, status)


def _filtered(search: WebSearchTool, text: str, finish: OutFinish) -> tuple[str, OutFinish]:
    """The answer and its finish with only the search results the tool's domain filters let through."""
    results = search.results(finish.citations)
    if len(results) == len(finish.citations):
        return text, finish
    return without_links(text, [r.url for r in results]), dataclasses.replace(finish, citations=results)


_PARAMS = {"response_format": "text.format", "messages": "input"}  # the chat names of shared errors


def _on_this_surface(error: ApiError | None) -> ApiError | None:
    """Shared turn errors name chat-completions params; say the Responses name instead."""
    if error is not None and error.param in _PARAMS:
        return ApiError(error.status, error.message, error.type, _PARAMS[error.param], error.code,
                        error.retry_after, dict(error.headers))
    return error

