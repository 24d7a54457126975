"""A transport that calls an ASGI app in-process: no socket, no port, no second thread.

Protocol tests point `DeepSeekClient` at the simulator app through it, so they run on the test's own
event loop and read the app's state directly. It keeps what a real connection guarantees the client:
a streamed body arrives chunk by chunk (with a little backpressure, like a socket buffer), and closing a
stream early, or cancelling the wait for its headers, cancels the app's response task at once, which
is how the app learns that its client hung up. Proxies mean nothing in-process and are ignored; a
`request()` is bounded by connect + read, a stream by the client's own first-byte and idle limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .transport import Method, Response, Timeouts, TransportError, TransportErrorKind

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

BUFFERED_CHUNKS = 16  # how far the app may write ahead of the reader before `send` waits
AFTER_ANSWER_GRACE = 1.0  # seconds an app may run on after a complete answer before it is cancelled


class AsgiStream:
    """One request/response exchange with the app, running as its own task."""

    def __init__(self, app: AsgiApp, scope: MutableMapping[str, Any], body: bytes) -> None:
        self._body: bytes | None = body
        self._hung_up = asyncio.Event()
        self._started = asyncio.Event()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(BUFFERED_CHUNKS)  # None: look at `_end`
        self._end: TransportError | None = None  # set once the body is over, with the error if it broke
        self._complete = False  # the app sent its last body message
        self._status = 0
        self._headers: dict[str, str] = {}
        self.task = asyncio.ensure_future(self._run(app, scope))

    # ------------------------------------------------------------------------------------ the app side

    async def _run(self, app: AsgiApp, scope: MutableMapping[str, Any]) -> None:
        try:
            await app(scope, self._receive, self._send)
        except Exception as exc:  # a crashing server: the client sees a dropped connection
            log.warning("the in-process app failed: %r", exc, exc_info=True)
            self._break(f"the app failed ({type(exc).__name__})")
        else:
            self._break("the app returned before its answer was complete")  # no-op once complete

    def _break(self, message: str) -> None:
        """End an unfinished exchange like a dropped connection."""
        if self._complete or self._end is not None:
            return
        self._end = TransportError(TransportErrorKind.NETWORK, message)
        self._started.set()
        self._wake_reader()

    def _wake_reader(self) -> None:
        """A reader blocked on an empty queue must look at `_end`; a full queue has no blocked reader."""
        with contextlib.suppress(asyncio.QueueFull):
            self._chunks.put_nowait(None)

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._hung_up.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._hung_up.is_set():
            raise OSError("the client closed the connection")  # ASGI >= 2.4: a write after a hang-up fails
        kind = message["type"]
        if kind == "http.response.start" and not self._started.is_set():
            self._status = int(message["status"])
            self._headers = {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
                             for k, v in message.get("headers", ())}
            self._started.set()
        elif kind == "http.response.body" and self._started.is_set() and not self._complete:
            chunk = bytes(message.get("body", b""))
            if chunk:
                await self._chunks.put(chunk)
            if not message.get("more_body", False):
                self._complete = True
                self._wake_reader()

    # --------------------------------------------------------------------------------- the client side

    async def started(self) -> None:
        """Wait for the status and headers; cancelling the wait hangs up."""
        try:
            await self._started.wait()
        except BaseException:
            await self.aclose()
            raise
        if self._end is not None and not self._status:  # it broke before the answer began
            await self.aclose()
            raise self._end

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    def __aiter__(self) -> AsgiStream:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._chunks.empty() and (self._complete or self._end is not None):
                if self._end is not None:
                    raise self._end
                raise StopAsyncIteration
            chunk = await self._chunks.get()
            if chunk is not None:
                return chunk

    async def aclose(self) -> None:
        """Hang up. An app still answering is cancelled at once (a real server would see the connection
        close); one whose answer is complete gets a moment to finish its own work first."""
        self._hung_up.set()
        task = self.task
        if self._complete and not task.done():
            await asyncio.wait((task,), timeout=AFTER_ANSWER_GRACE)
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))


class AsgiTransport:
    """Calls `app` for every request, on the running loop. `app` is any ASGI 3 application."""

    def __init__(self, app: AsgiApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        self._open: set[AsgiStream] = set()
        self._closed = False

    def _scope(self, method: str, url: str, headers: Mapping[str, str]) -> MutableMapping[str, Any]:
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if not any(k == b"host" for k, _ in raw_headers):
            raw_headers.insert(0, (b"host", parts.netloc.rsplit("@", 1)[-1].encode("latin-1")))
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": method.upper(), "scheme": scheme, "path": parts.path or "/",
            "raw_path": (parts.path or "/").encode("latin-1"), "query_string": parts.query.encode("latin-1"),
            "root_path": "", "headers": raw_headers, "client": self.client,
            "server": (parts.hostname or "localhost", port),
        }

    async def open_stream(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                          proxy: str | None, timeouts: Timeouts) -> AsgiStream:
        if self._closed:
            raise RuntimeError("the ASGI transport is closed")
        stream = AsgiStream(self.app, self._scope(method, url, headers), body or b"")
        self._open.add(stream)
        stream.task.add_done_callback(lambda _: self._open.discard(stream))
        await stream.started()
        return stream

    async def request(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                      proxy: str | None, timeouts: Timeouts) -> Response:
        limit = timeouts.connect + timeouts.read
        try:
            async with asyncio.timeout(limit):
                stream = await self.open_stream(method, url, headers=headers, body=body, proxy=proxy,
                                                timeouts=timeouts)
                try:
                    content = b"".join([chunk async for chunk in stream])
                finally:
                    await stream.aclose()
        except TimeoutError:
            raise TransportError(TransportErrorKind.NETWORK, f"no complete answer within {limit:g} s") from None
        return Response(stream.status, stream.headers, content)

    async def aclose(self) -> None:
        """Hang up on every exchange still open."""
        self._closed = True
        streams, self._open = list(self._open), set()
        await asyncio.gather(*(s.aclose() for s in streams), return_exceptions=True)
