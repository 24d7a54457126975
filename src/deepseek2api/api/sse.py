"""Server-sent events out of a producer task, with keep-alives and disconnect detection.

The turn runs in its own task and puts ready-made SSE bytes on a queue; this response drains the
queue into the socket. Splitting the two gives three things a plain StreamingResponse does not:
- the handler can wait for the first event and still answer an HTTP error if the turn fails before
  any byte was sent (CONFORMANCE.md §0 rule 2);
- a `: keep-alive` comment goes out whenever the producer is silent for `keepalive` seconds (slow
  PoW, long reasoning pauses, a stalled upstream), so proxies and clients do not time out;
- a client that goes away is noticed at once (we listen for `http.disconnect`) and the producer is
  cancelled, which closes the upstream stream and returns the lease.
Events already waiting are coalesced into one socket write. On the hot path (one event per token)
the producer writes to the socket itself while the response waits idle for events (`write`): one
task switch and one queue round trip less per chunk, ~9 µs of ~60 (bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

KEEPALIVE: Final = b": keep-alive\n\n"
END: Final = object()  # put by the producer's `finally`: nothing more will come

SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamError(Protocol):
    """An error that can end a stream as its last event (api/errors.py's ApiError)."""

    def sse_bytes(self) -> bytes: ...


class EventChannel:
    """A queue of SSE byte strings from one producer task to one response."""

    __slots__ = ("queue", "producer", "puts", "settled", "sink", "parked", "sending", "_sent", "_hot", "_loop")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.producer: asyncio.Task[None] | None = None
        self.puts = 0  # how many events the producer queued; keep-alives are not counted
        self.settled = False  # the reply's last event is queued; only upstream cleanup is left
        self.sink: Send | None = None  # the ASGI send, once the response has started
        self.parked = False  # the response waits on the empty queue: it has nothing in hand
        self.sending = False  # a direct write is in progress (suspended by flow control)
        self._sent: asyncio.Future[None] | None = None
        self._hot = False  # a direct write happened in this loop iteration: queue the rest, to coalesce
        self._loop: asyncio.AbstractEventLoop | None = None

    def put(self, data: bytes) -> None:
        self.puts += 1
        self.queue.put_nowait(data)

    async def write(self, data: bytes) -> None:
        """Like `put`, but straight to the socket from the producer's task when that keeps the order:
        the response is started and parked on an empty queue, and no other direct write is running."""
        sink = self.sink
        if sink is None or not self.parked or self.sending or self._hot or not self.queue.empty():
            self.put(data)
            return
        self.puts += 1
        self.sending = True
        # More events in this same loop iteration (a burst read from upstream) go through the queue,
        # so the response coalesces them into one socket write.
        self._hot = True
        (self._loop or asyncio.get_running_loop()).call_soon(self._cool)
        try:
            await sink({"type": "http.response.body", "body": data, "more_body": True})
        except OSError:
            pass  # the client went away; the disconnect watcher ends the stream
        finally:
            self.sending = False
            waiter = self._sent
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _cool(self) -> None:
        self._hot = False

    async def until_sent(self) -> None:
        """Wait for a direct write in progress (the response must not overtake it)."""
        while self.sending:
            waiter = self._sent = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._sent = None

    def close(self) -> None:
        self.queue.put_nowait(END)

    def fail(self, error: StreamError) -> None:
        """End the reply with `error`: the handler still answers it as HTTP when it is the first item
        (`first`), otherwise it goes out as the stream's last event. Not counted as a put: it is not
        output, and a keep-alive may still be due before it."""
        self.queue.put_nowait(error)

    def start(self, produce: Callable[[EventChannel], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await produce(self)
            finally:
                self.close()

        self._loop = asyncio.get_running_loop()
        self.producer = self._loop.create_task(run())

    async def first(self, timeout: float) -> object | None:
        """The first item, or None if the producer stays silent for `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def settle(self) -> None:
        """The reply is complete: end the HTTP body now (clients reading to EOF need not wait) and let
        the producer finish its upstream cleanup (deleting the web session, still holding the account)
        and the access-log line. Clients hang up as soon as they read the end (the openai SDK does on
        [DONE]); that must not cancel the producer either."""
        self.settled = True
        self.queue.put_nowait(END)

    def cancel(self) -> None:
        """Cancel the producer once: a second cancel would interrupt its upstream cleanup."""
        producer = self.producer
        if producer is not None and not producer.done() and not producer.cancelling() and not self.settled:
            producer.cancel()


class EventStreamResponse(Response):
    """ASGI response that streams an `EventChannel` (see the module docstring)."""

    def __init__(self, channel: EventChannel, *, keepalive: float, headers: list[tuple[bytes, bytes]],
                 first: object | None = None, keepalive_bytes: bytes = KEEPALIVE) -> None:
        self.status_code = 200
        self.keepalive_bytes = keepalive_bytes  # a surface's own idle event instead (Anthropic: `event: ping`)
        self.background = None
        self.channel = channel
        self.keepalive = keepalive
        self.raw_headers = SSE_HEADERS + headers
        self.pending_first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        channel = self.channel
        gone = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, gone, channel))
        ticker = asyncio.get_running_loop().create_task(self._tick(gone))
        ended = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            queue = channel.queue
            if self.pending_first is not None:
                ended = await self._write([self.pending_first], send)
            channel.sink = send
            while not ended and not gone.is_set():
                channel.parked = True
                try:
                    batch: list[Any] = [await queue.get()]
                finally:
                    channel.parked = False
                while not queue.empty():
                    batch.append(queue.get_nowait())
                if channel.sending:  # a direct write started before these were queued: it goes first
                    await channel.until_sent()
                    while not queue.empty():
                        batch.append(queue.get_nowait())
                ended = await self._write(batch, send)
            channel.sink = None
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we wrote
        finally:
            channel.sink = None
            ticker.cancel()
            watcher.cancel()
            channel.cancel()

    async def _write(self, batch: list[Any], send: Send) -> bool:
        ended = False
        parts: list[bytes] = []
        for item in batch:
            if item is END:
                ended = True
                break
            parts.append(item if isinstance(item, bytes) else item.sse_bytes())  # a StreamError
        if parts:
            await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
        return ended

    async def _tick(self, gone: asyncio.Event) -> None:
        """Queue a keep-alive whenever the producer queued nothing for `keepalive` seconds."""
        channel = self.channel
        last = channel.puts
        while not gone.is_set():
            await asyncio.sleep(self.keepalive)
            if channel.puts == last:
                channel.queue.put_nowait(self.keepalive_bytes)
            last = channel.puts


async def _watch_disconnect(receive: Receive, gone: asyncio.Event, channel: EventChannel) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            channel.cancel()
            channel.queue.put_nowait(END)  # wake the writer
            return
