"""The turn endpoint: what every chat surface does the same way once it has parsed a request into a `Turn`.

A surface's serving module parses the request, picks where the turn's leases come from and makes the
request's codec (api/codec.py); then `TurnEndpoint.serve(request, turn, caller, leases, codec)` does the
rest and returns the HTTP response. The contract, which every surface relies on:

- **Status rule.** A turn that fails before the first byte is an HTTP error in the surface's dialect
  (api/dialect.py; a queued turn the pool cannot serve is a real 429 with Retry-After). After the
  first byte, the answer stays a 200 and the stream ends with the codec's `failed` event, never text.
  A client that hangs up is 499 in the log (its turn is cancelled: upstream stopped, lease back); a
  client that stops reading is cut by the write timeout (api/sse.py) and logged as 200 `write_timeout`.
- **Lifecycle.** Streams run the turn in an `EventChannel` producer task; nothing (not even headers)
  is sent while the turn waits for an account; then silence becomes the codec's keep-alive bytes.
  A non-stream answer goes out as soon as `OutFinish` arrives (`run_to_finish`), while the turn
  finishes its upstream cleanup still holding the account; a hang-up before that cancels the turn.
- **Accounting.** The turn is counted in the tracker (graceful shutdown waits for it) and in the
  observer's in-flight gauge; the request claims its access line (api/access.py) and writes it exactly
  once when the turn is over, beside `report()` to the observer (metrics, the console's tail).

Dependencies arrive as one `SurfaceDeps`, built once by the composition root (server.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from ..chat.assemble import OutContent, OutEvent, OutFinish, OutReasoning
from ..chat.attachments import AttachmentPolicy
from ..chat.runner import AccountSource, LeaseSource, TurnRunner, TurnTrace, fallback_header
from ..chat.tools.events import OutToolCall
from ..chat.tracker import TurnTracker
from ..chat.turn import ModelRegistry, Turn
from .access import AccessRecord, cancelled_outcome
from .auth import Caller
from .codec import StreamCodec, StreamFailure
from .dialect import ErrorDialect
from .errors import ApiError, client_closed, from_failure
from .observe import RequestObserver, in_flight, report
from .request_body import disconnected
from .sse import WRITE_TIMEOUT, EventChannel, EventStreamResponse

LeasesFor = Callable[[Caller], AccountSource]


@dataclass(frozen=True, slots=True)
class SurfaceDeps:
    """What every surface needs, built once by the composition root."""

    runner: TurnRunner
    registry: ModelRegistry
    leases_for: LeasesFor  # where a caller's turn gets its account (the pool, or its own token)
    tracker: TurnTracker
    keepalive: float  # server.keepalive_interval
    write_timeout: float = WRITE_TIMEOUT  # server.write_timeout
    observer: RequestObserver | None = None  # metrics and the console's tail (api/observe.py)
    files: AttachmentPolicy = field(default_factory=AttachmentPolicy)  # the same limits on every surface


class TurnEndpoint:
    """One surface's turns: `surface` names it in metrics and the tail, `dialect` gives its error statuses,
    `adapt` (optional) rewrites a turn error into the surface's own terms (a param's name)."""

    def __init__(self, deps: SurfaceDeps, surface: str, dialect: ErrorDialect,
                 adapt: Callable[[ApiError], ApiError] | None = None) -> None:
        self.deps = deps
        self.surface = surface
        self.dialect = dialect
        self.adapt = adapt

    async def serve(self, request: Request, turn: Turn, caller: Caller, leases: LeaseSource,
                    codec: StreamCodec) -> Response:
        record = AccessRecord.claim(request, turn.request_id, caller.key_name, turn.model_name, turn.stream)
        if turn.stream:
            return await self._stream(turn, caller, leases, codec, record, request.receive)
        return await self._complete(turn, caller, leases, codec, record, request.receive)

    async def _complete(self, turn: Turn, caller: Caller, leases: LeaseSource, codec: StreamCodec,
                        record: AccessRecord, receive: Receive) -> Response:
        deps = self.deps
        trace = TurnTrace()
        calls: list[OutToolCall] = []

        def seen(out: OutEvent) -> None:
            if isinstance(out, OutToolCall):
                calls.append(out)

        try:
            finish = await run_to_finish(deps.runner.run(turn, leases, trace, buffered=True), receive, deps.tracker,
                                         deps.observer, self.surface, seen)
        except Exception as failure:  # noqa: BLE001 - every turn failure is answered (from_failure)
            error = self._error(failure, caller, trace)
            assert error is not None
            self._finish(record, turn, trace, self.dialect.status(error), error.code)
            raise error from None
        if finish is None:
            self._finish(record, turn, trace, 499, "client_closed")
            raise client_closed()
        body = await codec.body(finish, calls)
        self._finish(record, turn, trace, 200, None)
        headers = {k.decode(): v.decode() for k, v in codec.headers()}
        headers.update(fallback_header(trace))  # the mode the turn really ran in
        return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json", headers=headers)

    async def _stream(self, turn: Turn, caller: Caller, leases: LeaseSource, codec: StreamCodec,
                      record: AccessRecord, receive: Receive) -> Response:
        deps = self.deps

        trace = TurnTrace()

        async def produce(channel: EventChannel) -> None:
            started = False
            status, code = 200, None
            text, reasoning, write = codec.text, codec.reasoning, channel.write
            try:
                async with deps.tracker.inflight(), in_flight(deps.observer, self.surface), \
                        aclosing(deps.runner.run(turn, leases, trace)) as outs:
                    async for out in outs:
                        if not started:
                            channel.put(codec.start())
                            started = True
                        if type(out) is OutContent:
                            data = text(out.text)  # the hot path
                            if data:
                                await write(data)
                        elif isinstance(out, OutReasoning):
                            data = reasoning(out.text)
                            if data:
                                await write(data)
                        elif isinstance(out, OutToolCall):
                            data = codec.tool_call(out)
                            if data:
                                channel.put(data)
                        elif isinstance(out, OutFinish):
                            channel.put(await codec.finish(out))  # the whole text is on it: no copy kept here
                            channel.settle()
            except BaseException as exc:
                error = self._error(exc, caller, trace)
                if error is None:
                    status, code = cancelled_outcome(channel.stalled)
                    raise
                code = error.code
                # Before the first byte the handler answers it as HTTP; after it (output or only keep-alives)
                # it is the stream's last event and the client already got its 200 (api/sse.py).
                as_http = channel.fail(StreamFailure(error, codec.failed(error, started)))
                status = self.dialect.status(error) if as_http else 200
            finally:
                self._finish(record, turn, trace, status, code)

        channel = EventChannel()
        channel.start(produce)
        deps.tracker.track(channel.producer)
        first = await channel.first(deps.keepalive, receive)  # a client gone while queued cancels the turn
        if isinstance(first, StreamFailure):
            raise first.error
        keepalive = codec.keepalive
        headers = codec.headers() + [(k.encode(), v.encode()) for k, v in fallback_header(trace).items()]
        return EventStreamResponse(channel, keepalive=deps.keepalive, headers=headers,
                                   first=keepalive if first is None else first, keepalive_bytes=keepalive,
                                   write_timeout=deps.write_timeout, media_type=codec.media_type)

    def _error(self, exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError | None:
        """The answer for a turn failure; None for a cancellation (the client is gone)."""
        error = from_failure(exc, attempts=trace.attempts, passthrough=caller.passthrough_token is not None)
        if error is not None and self.adapt is not None:
            return self.adapt(error)
        return error

    def _finish(self, record: AccessRecord, turn: Turn, trace: TurnTrace, status: int, code: str | None) -> None:
        """The request's access line (api/access.py), and the same facts to the observer."""
        record.status, record.error_code, record.usage = status, code, trace.usage
        record.write(trace)
        report(self.deps.observer, self.surface, turn, trace, record.started, status)


async def run_to_finish(outs: AsyncGenerator[OutEvent, None], receive: Receive, tracker: TurnTracker,
                        observer: RequestObserver | None, surface: str,
                        seen: Callable[[OutEvent], None] | None = None) -> OutFinish | None:
    """A non-streaming turn, run in its own task until its answer is complete: the turn's `OutFinish` (it
    carries the whole text), or None when the client hung up first. A failure of the turn is raised here.
    `seen` gets every event before the finish (tool calls...).

    The answer goes out as soon as `OutFinish` arrives, while the turn finishes its upstream cleanup
    (delete the web session) still holding the account. A client that hangs up before that cancels the
    turn (lease back, upstream stopped): otherwise an upstream that never ends would keep its account
    busy forever."""
    finished: asyncio.Future[OutFinish] = asyncio.get_running_loop().create_future()

    async def run_turn() -> None:
        try:
            async with tracker.inflight(), in_flight(observer, surface), aclosing(outs) as events:
                async for out in events:
                    if isinstance(out, OutFinish):
                        if not finished.done():
                            finished.set_result(out)
                    elif seen is not None:
                        seen(out)
        except asyncio.CancelledError:
            finished.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the request through the future
            if not finished.done():
                finished.set_exception(exc)

    task = tracker.spawn(run_turn())
    watcher = asyncio.ensure_future(disconnected(receive))
    try:
        await asyncio.wait((finished, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when we are cancelled ourselves (server shutdown)
        watcher.cancel()
        if not finished.done():
            task.cancel()
            await asyncio.wait((task,))  # the turn's cleanup runs to the end
    if finished.cancelled():
        return None
    return finished.result()  # raises the turn's failure


__all__ = ["LeasesFor", "SurfaceDeps", "TurnEndpoint", "run_to_finish"]
