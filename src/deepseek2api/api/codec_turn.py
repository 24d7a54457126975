"""One turn served through a surface's codec: the loop the Gemini and Ollama surfaces share.

A surface brings a `StreamCodec` (the bytes of each output event in its wire format) and a function
for its non-streamed body; this runs the turn with everything the gateway promises on every surface:
failures before the first byte answered as HTTP errors (raised as `ApiError`, rendered in the path's
error dialect by api/dialect.py), after it as the codec's `failed` bytes; keep-alives in the codec's
own shape; a client that hangs up or stops reading cancels the turn (lease back); one access line
and one observer report per request. It is the codec-shaped loop the turn endpoint generalises
(issue 21), so porting these surfaces onto it is a matter of handing over the same codecs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

from starlette.responses import Response
from starlette.types import Receive

from ..chat.assemble import OutContent, OutFinish, OutReasoning
from ..chat.runner import LeaseSource, TurnRunner, TurnTrace
from ..chat.tools.events import OutToolCall
from ..chat.tracker import TurnTracker
from ..chat.turn import Turn
from .access import AccessRecord, cancelled_outcome
from .auth import Caller
from .endpoint import run_to_finish
from .errors import ApiError, client_closed, from_failure
from .observe import RequestObserver, in_flight, report
from .sse import WRITE_TIMEOUT, EventChannel, EventStreamResponse


class StreamCodec(Protocol):
    """A streamed answer in one surface's wire format: each method returns ready bytes."""

    def start(self) -> bytes: ...  # before the first output (may be b"")
    def text(self, text: str) -> bytes: ...  # the hot path: one call per upstream token
    def reasoning(self, text: str) -> bytes: ...
    def tool_call(self, call: OutToolCall) -> bytes: ...
    def finish(self, finish: OutFinish) -> bytes: ...  # the last bytes of a complete answer
    def failed(self, error: ApiError) -> bytes: ...  # the last bytes of a stream that already started
    def keep_alive(self) -> bytes: ...  # sent when the turn is silent (must parse in the surface's clients)
    def headers(self) -> list[tuple[bytes, bytes]]: ...  # the whole header list, content-type included


BodyOf = Callable[[OutFinish], bytes]


@dataclass(frozen=True, slots=True)
class _Failure:
    """The codec's failure bytes as the stream's last event (api/sse.py's StreamError)."""

    error: ApiError
    data: bytes

    def sse_bytes(self) -> bytes:
        return self.data


@dataclass(slots=True)
class TurnService:
    """What a surface needs to serve turns; built once by the composition root, shared by a surface."""

    runner: TurnRunner
    tracker: TurnTracker
    surface: str  # the `surface` label of metrics and the console's tail
    keepalive: float
    write_timeout: float = WRITE_TIMEOUT
    observer: RequestObserver | None = None

    async def complete(self, turn: Turn, caller: Caller, leases: LeaseSource, receive: Receive,
                       record: AccessRecord, body_of: BodyOf, headers: dict[str, str]) -> Response:
        """The whole answer as one body (api/complete.py: a client that hangs up first cancels the turn)."""
        trace = TurnTrace()
        try:
            finish = await run_to_finish(self.runner.run(turn, leases, trace, buffered=True), receive, self.tracker,
                                         self.observer, self.surface)
        except Exception as failure:  # noqa: BLE001 - every turn failure is answered (from_failure)
            error = _api_error(failure, caller, trace)
            assert error is not None
            self._log(turn, record, trace, error.status, error.code)
            raise error from None
        if finish is None:
            self._log(turn, record, trace, 499, "client_closed")
            raise client_closed()
        data = body_of(finish)
        self._log(turn, record, trace, 200, None)
        return Response(data, headers=headers)

    async def stream(self, turn: Turn, caller: Caller, leases: LeaseSource, receive: Receive,
                     record: AccessRecord, codec: StreamCodec) -> Response:
        tracker, runner, observer, surface = self.tracker, self.runner, self.observer, self.surface
        trace = TurnTrace()
        hold_text = turn.tool_choice.forces_call  # no text before a forced call: held until we know

        async def produce(channel: EventChannel) -> None:
            started = called = False
            held: list[str] = []
            status, code = 200, None
            try:
                outs = runner.run(turn, leases, trace)
                async with tracker.inflight(), in_flight(observer, surface), aclosing(outs) as events:
                    async for out in events:
                        if not started:
                            head = codec.start()
                            if head:
                                channel.put(head)
                            started = True
                        if isinstance(out, OutContent):
                            if hold_text and not called:
                                held.append(out.text)
                            else:
                                await channel.write(codec.text(out.text))  # the hot path
                        elif isinstance(out, OutReasoning):
                            shown = codec.reasoning(out.text)
                            if shown:  # a surface may only count reasoning (Gemini without includeThoughts)
                                await channel.write(shown)
                        elif isinstance(out, OutToolCall):
                            called = True
                            held.clear()
                            channel.put(codec.tool_call(out))
                        elif isinstance(out, OutFinish):
                            if held and not (out.tool_calls or called):
                                channel.put(codec.text("".join(held)))
                            channel.put(codec.finish(out))
                            channel.settle()
            except BaseException as exc:
                error = _api_error(exc, caller, trace)
                if error is None:
                    status, code = cancelled_outcome(channel.stalled)
                    raise
                code = error.code
                # before the first byte the handler answers it as HTTP; after it, the codec's failure bytes
                as_http = channel.fail(_Failure(error, codec.failed(error)))
                status = error.status if as_http else 200
            finally:
                self._log(turn, record, trace, status, code)

        channel = EventChannel()
        channel.start(produce)
        tracker.track(channel.producer)
        first = await channel.first(self.keepalive, receive)  # a client gone while queued cancels the turn
        if isinstance(first, _Failure):
            raise first.error
        keep_alive = codec.keep_alive()
        response = EventStreamResponse(channel, keepalive=self.keepalive, headers=[],
                                       first=keep_alive if first is None else first, keepalive_bytes=keep_alive,
                                       write_timeout=self.write_timeout)
        response.raw_headers = codec.headers()  # the surface's own content type (NDJSON, a JSON array, SSE)
        return response

    def _log(self, turn: Turn, record: AccessRecord, trace: TurnTrace, status: int, code: str | None) -> None:
        """The request's access line (api/access.py), and the same facts to the observer."""
        record.status, record.error_code, record.usage = status, code, trace.usage
        record.write(trace)
        report(self.observer, self.surface, turn, trace, record.started, status)


def _api_error(exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError | None:
    return from_failure(exc, attempts=trace.attempts, passthrough=caller.passthrough_token is not None)
