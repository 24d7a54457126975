"""OpenAI chat completions: request → Turn → runner → OpenAI JSON or SSE chunks.

The hot path (one chunk per upstream token) is kept cheap: the chunk envelope is encoded once per
request and each chunk only JSON-encodes its text; chunks already queued go out in one write.
Usage comes counted on `OutFinish` (the runner counts it once per turn, off the event loop).
Everything this needs is handed in by the composition root (server.py): the runner, the model
registry, where a caller's leases come from, the output options, the keep-alive and the tracker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from ...chat.assemble import OutContent, OutEvent, OutFinish, OutReasoning
from ...chat.attachments import AttachmentPolicy
from ...chat.runner import LeaseSource, TurnRunner, TurnTrace, fallback_header
from ...chat.tools.events import OutToolCall
from ...chat.tracker import TurnTracker
from ...chat.turn import ModelRegistry, Turn
from ..access import AccessRecord
from ..auth import Caller
from ..complete import run_to_finish
from ..errors import ApiError, client_closed, from_failure
from ..observe import RequestObserver, in_flight, report
from ..request_body import read_json
from ..sse import KEEPALIVE, WRITE_TIMEOUT, EventChannel, EventStreamResponse
from .protocol import attachments_of, to_turn, uses_legacy_functions, validate_request
from .render import (
    DONE,
    ChunkEncoder,
    citation_fields,
    completion_body,
    finish_reason_for,
    new_completion_id,
    now,
    turn_usage_body,
)

UsagePlacement = Literal["both", "openai", "deepseek"]
SURFACE = "openai"  # the `surface` label of this surface's requests
LeasesFor = Callable[[Caller], LeaseSource]


class ChatCompletions:
    """`POST /v1/chat/completions`."""

    def __init__(self, runner: TurnRunner, registry: ModelRegistry, leases_for: LeasesFor, *,
                 usage_chunk: UsagePlacement, keepalive: float, tracker: TurnTracker,
                 write_timeout: float = WRITE_TIMEOUT, observer: RequestObserver | None = None,
                 files: AttachmentPolicy | None = None) -> None:
        self.observer = observer  # metrics and the console's tail (api/observe.py)
        self.runner = runner
        self.registry = registry
        self.leases_for = leases_for
        self.usage_chunk = usage_chunk
        self.keepalive = keepalive
        self.write_timeout = write_timeout
        self.tracker = tracker
        self.files = files or AttachmentPolicy()

    async def handle(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await read_json(request)
        req = validate_request(body)  # raises RequestInvalid (an ApiError)
        attachments = await attachments_of(req, self.files)  # image_url / file parts; 400/413 naming the part
        turn = to_turn(req, self.registry, request_id, attachments)
        legacy = uses_legacy_functions(req)
        record = AccessRecord.claim(request, request_id, caller.key_name, turn.model_name, turn.stream)
        if turn.stream:
            return await self._stream(turn, caller, record, request.receive, legacy)
        return await self._complete(turn, caller, record, request.receive, legacy)

    async def _complete(self, turn: Turn, caller: Caller, record: AccessRecord, receive: Receive,
                        legacy: bool = False) -> Response:
        """The whole answer as one JSON body, sent as soon as the reply is complete (api/complete.py)."""
        trace = TurnTrace()
        try:
            finish = await run_to_finish(self._run(turn, caller, trace, buffered=True), receive, self.tracker,
                                         self.observer, SURFACE)
        except Exception as failure:  # noqa: BLE001 - every turn failure is answered (from_failure)
            error = self._api_error(failure, caller, trace)
            assert error is not None
            record.status, record.error_code = error.status, error.code
            self._finish(record, turn, trace)
            raise error from None
        if finish is None:
            record.status, record.error_code = 499, "client_closed"
            self._finish(record, turn, trace)
            raise client_closed()
        content_text, reasoning_text = finish.content_text, finish.reasoning_text
        usage = finish.usage
        body = completion_body(new_completion_id(), now(), turn.model_name, content_text, finish.finish_reason,
                               turn_usage_body(usage) if usage is not None else None,
                               reasoning_text if (turn.model.thinking or reasoning_text) else None,
                               finish.tool_calls, legacy)
        body.update(citation_fields(finish))
        record.usage = usage
        self._finish(record, turn, trace)
        return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json", headers=fallback_header(trace))

    async def _stream(self, turn: Turn, caller: Caller, record: AccessRecord, receive: Receive,
                      legacy: bool = False) -> Response:
        tracker = self.tracker
        encoder = ChunkEncoder(new_completion_id(), now(), turn.model_name)
        trace = TurnTrace()
        # Usage goes on exactly ONE chunk: clients that add up usage over the chunks (LangChain's
        # stream_usage) would count it twice otherwise. "both": OpenAI's usage-only chunk when the client
        # asked for it (include_usage), else DeepSeek's placement on the finish chunk.
        usage_chunk = turn.include_usage and self.usage_chunk in ("both", "openai")
        usage_on_finish = self.usage_chunk == "deepseek" or (self.usage_chunk == "both" and not usage_chunk)

        async def produce(channel: EventChannel) -> None:
            started = False
            try:
                async with tracker.inflight(), in_flight(self.observer, SURFACE), \
                        aclosing(self._run(turn, caller, trace)) as outs:
                    async for out in outs:
                        if not started:
                            channel.put(encoder.role(turn.model.thinking))
                            started = True
                        if isinstance(out, OutContent):
                            await channel.write(encoder.content(out.text))  # the hot path
                        elif isinstance(out, OutReasoning):
                            await channel.write(encoder.reasoning(out.text))
                        elif isinstance(out, OutToolCall):
                            if not (legacy and out.index > 0):  # the functions API had one call per answer
                                await channel.write(encoder.tool_call(out, legacy))
                        elif isinstance(out, OutFinish):  # the whole text is on it: no copy kept here
                            record.usage = out.usage
                            usage_dict = turn_usage_body(out.usage) if out.usage is not None else None
                            on_finish = usage_dict if usage_on_finish else None
                            channel.put(encoder.chunk({}, finish_reason_for(out, legacy), on_finish,
                                                      citation_fields(out)))
                            if usage_chunk and usage_dict is not None:
                                channel.put(encoder.usage(usage_dict))
                            channel.put(DONE)
                            channel.settle()
            except BaseException as exc:
                error = self._api_error(exc, caller, trace)
                if error is None:
                    record.stream_cancelled(channel.stalled)
                    raise
                # an HTTP error while nothing was sent (a 429 from the pool's queue), the last event after
                record.stream_failed(error, channel.fail(error))
            finally:
                self._finish(record, turn, trace)

        channel = EventChannel()
        channel.start(produce)
        tracker.track(channel.producer)
        first = await channel.first(self.keepalive, receive)  # nothing is sent while the turn waits for an account
        if isinstance(first, ApiError):
            raise first
        if first is None:
            first = KEEPALIVE
        headers = [(b"x-request-id", record.request_id.encode())]
        headers += [(k.encode(), v.encode()) for k, v in fallback_header(trace).items()]
        return EventStreamResponse(channel, keepalive=self.keepalive, headers=headers, first=first,
                                   write_timeout=self.write_timeout)

    def _finish(self, record: AccessRecord, turn: Turn, trace: TurnTrace) -> None:
        """The request's access line, and the same facts to the observer (metrics, console tail)."""
        record.write(trace)
        report(self.observer, SURFACE, turn, trace, record.started, record.status)

    def _run(self, turn: Turn, caller: Caller, trace: TurnTrace,
             buffered: bool = False) -> AsyncGenerator[OutEvent, None]:
        return self.runner.run(turn, self.leases_for(caller), trace, buffered=buffered)

    @staticmethod
    def _api_error(exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError | None:
        """The answer for a turn failure; None for cancellation (client gone)."""
        return from_failure(exc, attempts=trace.attempts, passthrough=caller.passthrough_token is not None)



