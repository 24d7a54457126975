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

Two promises about the status line (issue 9 item 1, issue 17 item 2):
- nothing is sent, not even headers or a keep-alive, while the turn waits for an account: the runner
  announces when it got one (chat/admission.py), and only then does silence turn into keep-alives. A
  turn that gets no account answers a real 429 with `Retry-After`, which the SDKs retry;
- a client that stops reading cannot hold its account: when one write has waited `write_timeout`
  seconds for the client to drain its socket, the turn is cancelled (upstream stopped, session deleted,
  lease back), the queued bytes are dropped and `ClientStalled` tells the middleware to drop the
  connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..chat import admission

log = logging.getLogger(__name__)

KEEPALIVE: Final = b": keep-alive\n\n"
END: Final = object()  # put by the producer's `finally`: nothing more will come
ADMITTED: Final = object()  # put once when the turn got its account; never sent
WRITE_TIMEOUT: Final = 30.0  # `server.write_timeout`'s default
MAX_WRITE: Final = 65_536  # bytes per socket write: a write that waits, waits for at most this much to drain
MAX_QUEUED: Final = 256  # events waiting for the response before the producer waits (stops reading upstream)

SSE_TYPE: Final = b"text/event-stream; charset=utf-8"
SSE_HEADERS: Final = [
    (b"content-type", SSE_TYPE),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamError(Protocol):
    """An error that can end a stream as its last event (api/codec.py's StreamFailure)."""

    def sse_bytes(self) -> bytes: ...


class ClientStalled(Exception):
    """The client read nothing for `write_timeout` seconds while a write waited; the stream is over.
    Raised out of the response so the middleware can drop the connection (api/middleware.py)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the client read nothing for {seconds:g} s")
        self.seconds = seconds


class EventChannel:
    """A queue of SSE byte strings from one producer task to one response."""

    __slots__ = ("queue", "producer", "puts", "settled", "sink", "parked", "sending", "admitted", "opened",
                 "send_since", "stalled", "_sent", "_room", "_hot", "_loop")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.producer: asyncio.Task[None] | None = None
        self.puts = 0  # how many events the producer queued; keep-alives are not counted
        self.settled = False  # the reply's last event is queued; only upstream cleanup is left
        self.sink: Send | None = None  # the ASGI send, once the response has started
        self.parked = False  # the response waits on the empty queue: it has nothing in hand
        self.sending = False  # a direct write is in progress (suspended by flow control)
        self.admitted = False  # the turn got an account: silence may now become keep-alives
        self.opened = False  # `first` returned: the status line is decided
        self.send_since: float | None = None  # loop time when the write in progress began
        self.stalled = False  # ended because the client stopped reading (write timeout)
        self._sent: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None  # the producer waits for the response to take events
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
            if self.queue.qsize() >= MAX_QUEUED:  # the client reads slower than upstream writes
                await self._wait_for_room()
            self.put(data)
            return
        self.puts += 1
        self.sending = True
        # More events in this same loop iteration (a burst read from upstream) go through the queue,
        # so the response coalesces them into one socket write.
        self._hot = True
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(self._cool)
        self.send_since = loop.time()
        try:
            await sink({"type": "http.response.body", "body": data, "more_body": True})
        except OSError:
            pass  # the client went away; the disconnect watcher ends the stream
        finally:
            self.send_since = None
            self.sending = False
            waiter = self._sent
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _cool(self) -> None:
        self._hot = False

    async def _wait_for_room(self) -> None:
        """Backpressure: a slow reader slows the producer (and so the upstream read) instead of piling
        the reply up in memory; a reader that stops altogether is ended by the write timeout."""
        while self.queue.qsize() >= MAX_QUEUED:
            room = self._room = asyncio.get_running_loop().create_future()
            try:
                await room
            finally:
                self._room = None

    def taken(self) -> None:
        """The response took the queued events: wake a producer waiting for room."""
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

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

    def fail(self, error: StreamError) -> bool:
        """End the reply with `error`: the handler still answers it as HTTP when it is the first item
        (`first`), otherwise it goes out as the stream's last event. Not counted as a put: it is not
        output, and a keep-alive may still be due before it.

        Returns True when the error will be the HTTP answer (its status is what the client gets), False
        when it ends a stream that already answered 200 — for the access log."""
        as_http = not self.opened and self.puts == 0
        self.queue.put_nowait(error)
        return as_http

    def admit(self) -> None:
        """The turn got its account (chat/admission.py): from now on silence becomes keep-alives."""
        if not self.admitted:
            self.admitted = True
            self.queue.put_nowait(ADMITTED)

    def start(self, produce: Callable[[EventChannel], Awaitable[None]]) -> None:
        async def run() -> None:
            admission.listen(self.admit)  # in this task's own context: only this turn's runner finds it
            try:
                await produce(self)
            finally:
                self.close()

        self._loop = asyncio.get_running_loop()
        self.producer = self._loop.create_task(run())

    async def first(self, timeout: float, receive: Receive | None = None) -> object | None:
        """The first item for the response (SSE bytes, a `StreamError`, or END), or None when the turn
        got its account and then stayed silent for `timeout` seconds (open the stream with a keep-alive).

        Before the turn is admitted this waits without a limit of its own: the pool's queue timeout
        bounds the wait, and ends it with an error the handler answers as HTTP (429 + Retry-After).
        With `receive`, a client that hangs up meanwhile cancels the turn at once (the result is END).
        A producer that never announces admission gets no keep-alive before its first item.
        """
        watcher = None
        if receive is not None:
            watcher = asyncio.get_running_loop().create_task(self._cancel_on_disconnect(receive))
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        item: object | None = None
        try:
            while True:
                if deadline is None:
                    item = await self.queue.get()
                else:
                    try:
                        async with asyncio.timeout_at(deadline):
                            item = await self.queue.get()
                    except TimeoutError:
                        item = None
                        break
                if item is not ADMITTED:
                    break
                deadline = loop.time() + timeout
        finally:
            if watcher is not None:
                watcher.cancel()
        self.opened = True
        return item

    async def _cancel_on_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.cancel()
        self.queue.put_nowait(END)

    def drop(self) -> None:
        """Forget everything queued (the client will never read it)."""
        queue = self.queue
        while not queue.empty():
            queue.get_nowait()

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
                 first: object | None = None, write_timeout: float = WRITE_TIMEOUT,
                 keepalive_bytes: bytes = KEEPALIVE, media_type: bytes = SSE_TYPE) -> None:
        self.status_code = 200
        self.keepalive_bytes = keepalive_bytes  # a surface's own idle event instead (Anthropic: `event: ping`)
        self.background = None
        self.channel = channel
        self.keepalive = keepalive
        self.write_timeout = write_timeout
        # the channel's framing is the surface's (NDJSON, a JSON array): only the content type differs
        self.raw_headers = [(b"content-type", media_type), *SSE_HEADERS[1:], *headers]
        self.pending_first = first
        self._task: asyncio.Task[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        channel = self.channel
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        gone = asyncio.Event()
        watcher = loop.create_task(_watch_disconnect(receive, gone, channel))
        ticker = loop.create_task(self._tick(gone))
        ended = stalled = False
        try:
            await self._send(send, {"type": "http.response.start", "status": 200, "headers": self.raw_headers})
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
                channel.taken()
                ended = await self._write(batch, send)
            channel.sink = None
            if not gone.is_set():
                await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we wrote
        except asyncio.CancelledError:
            if not channel.stalled:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own cancel (see `_stall`), not the server's
            stalled = True
        finally:
            channel.sink = None
            ticker.cancel()
            watcher.cancel()
            channel.cancel()
        if stalled:
            channel.drop()
            log.warning("request %s: the client read nothing for %g s (server.write_timeout); stream ended, "
                        "account released", scope.get("state", {}).get("request_id", "-"), self.write_timeout)
            raise ClientStalled(self.write_timeout)

    async def _send(self, send: Send, message: Message) -> None:
        channel = self.channel
        channel.send_since = asyncio.get_running_loop().time()
        try:
            await send(message)
        finally:
            channel.send_since = None

    async def _write(self, batch: list[Any], send: Send) -> bool:
        """Send the batch in writes of at most `MAX_WRITE` bytes; True when it holds the end."""
        ended = False
        parts: list[bytes] = []
        size = 0
        for item in batch:
            if item is END:
                ended = True
                break
            if item is ADMITTED:
                continue
            data = item if isinstance(item, bytes) else item.sse_bytes()  # a StreamError
            if size and size + len(data) > MAX_WRITE:
                await self._send(send, {"type": "http.response.body", "body": b"".join(parts), "more_body": True})
                parts, size = [], 0
            parts.append(data)
            size += len(data)
        if parts:
            await self._send(send, {"type": "http.response.body", "body": b"".join(parts), "more_body": True})
        return ended

    async def _tick(self, gone: asyncio.Event) -> None:
        """Queue a keep-alive whenever the producer queued nothing for `keepalive` seconds, and end the
        stream when one write has waited `write_timeout` seconds for the client to read."""
        channel = self.channel
        loop = asyncio.get_running_loop()
        step = min(self.keepalive, self.write_timeout / 4)
        last = channel.puts
        next_keepalive = loop.time() + self.keepalive
        while not gone.is_set():
            await asyncio.sleep(step)
            now = loop.time()
            since = channel.send_since
            if since is not None and now - since >= self.write_timeout:
                self._stall()
                return
            if now + step / 2 >= next_keepalive:  # timers may fire a hair early
                if channel.puts == last:
                    channel.queue.put_nowait(self.keepalive_bytes)
                last = channel.puts
                next_keepalive = now + self.keepalive

    def _stall(self) -> None:
        """The client stopped reading: cancel the turn and wake the response out of its blocked write."""
        channel = self.channel
        channel.stalled = True
        channel.cancel()  # upstream stopped, session deleted, lease back (a settled turn finishes its cleanup)
        channel.drop()
        if self._task is not None:
            self._task.cancel()


async def _watch_disconnect(receive: Receive, gone: asyncio.Event, channel: EventChannel) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            channel.cancel()
            channel.queue.put_nowait(END)  # wake the writer
            return
