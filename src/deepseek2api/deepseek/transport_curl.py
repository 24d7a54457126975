"""The default transport: curl_cffi with a browser TLS fingerprint, one `AsyncSession` per proxy.

Everything curl-specific lives here: sessions (and with them connections and TLS sessions) pooled per
exit, `max_clients` concurrent transfers per session, aborting a request that still waits for its
response headers, and ending a streaming transfer without reading the rest of it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from curl_cffi import Curl, CurlError, CurlHttpVersion, CurlOpt
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import Response as CurlResponse
from curl_cffi.requests.exceptions import ImpersonateError
from curl_cffi.requests.streams import STREAM_END

from .profile import ClientProfile
from .transport import Method, Response, Timeouts, TransportError, TransportErrorKind

log = logging.getLogger(__name__)

DEFAULT_ACCEPT_ENCODING = "gzip, deflate, br"


def curl_message(exc: BaseException) -> str:
    """The useful middle of a curl_cffi error: `Failed to connect to … (curl 7)`."""
    text = str(exc).strip() or type(exc).__name__
    text = text.removeprefix("Failed to perform, ")
    cut = text.find(" See https://curl.se/")
    if cut > 0:
        text = text[:cut]
    return text.rstrip(". ")


def _transport_error(exc: CurlError, impersonate: str | None) -> TransportError:
    if isinstance(exc, ImpersonateError):
        message = f"impersonation profile {impersonate!r} rejected by curl_cffi"
        return TransportError(TransportErrorKind.SETUP, message)
    return TransportError(TransportErrorKind.NETWORK, curl_message(exc))


# The curl handle a stream request runs on, so a request we stop waiting for can really be aborted.
_CURL_HANDLES: contextvars.ContextVar[list[Curl] | None] = contextvars.ContextVar("curl_handles", default=None)


class _TrackedSession(AsyncSession[CurlResponse]):
    """An AsyncSession that tells the caller which curl handle its request got.

    curl_cffi offers no way to cancel a streaming request that is still waiting for its response
    headers: cancelling `request()` leaves the transfer running in curl's multi handle until curl's own
    timeout, while upstream may already be generating. Removing the handle from the multi handle ends
    the transfer and closes the connection at once (the account is then really free again).
    """

    async def pop_curl(self) -> Curl:
        curl = await super().pop_curl()
        handles = _CURL_HANDLES.get()
        if handles is not None:
            handles.append(curl)
        return curl


def _abort_pending(session: AsyncSession[CurlResponse], request: asyncio.Future[CurlResponse],
                   handles: list[Curl]) -> None:
    """Stop a stream request we no longer wait for, before or after its headers arrived."""
    if not request.done():
        for curl in handles:
            session.acurl.remove_handle(curl)  # the transfer ends; request() returns an empty response
    _discard_when_done(request)


def _discard_when_done(task: asyncio.Future[CurlResponse]) -> None:
    """A stream request we stopped waiting for: when its response does arrive, drop it at once."""

    def on_done(done: asyncio.Future[CurlResponse]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        _abort_transfer(done.result())

    task.add_done_callback(on_done)


def _abort_transfer(response: CurlResponse) -> asyncio.Future[Any] | None:
    """Stop a streaming transfer now; returns the transfer task (done once the handle is released).

    curl_cffi's `Response.aclose()` waits for the transfer to finish by itself, which for an early stop
    means reading the whole reply (or hanging on a stalled one). Cancelling the transfer task removes
    the handle from curl's multi handle, which closes the connection and releases the handle.
    """
    if response.quit_now is not None:
        response.quit_now.set()  # belt and braces: the next write callback aborts the transfer
    task = cast("asyncio.Future[Any] | None", response.astream_task)
    if task is None:
        return None
    if not task.done():
        task.cancel()
    return task


class CurlStream:
    """A curl_cffi streaming response behind the `ResponseStream` interface."""

    __slots__ = ("_impersonate", "_response")

    def __init__(self, response: CurlResponse, impersonate: str | None) -> None:
        self._response = response
        self._impersonate = impersonate

    @property
    def status(self) -> int:
        return int(self._response.status_code)

    @property
    def headers(self) -> Mapping[str, str]:
        return cast("Mapping[str, str]", self._response.headers)  # curl_cffi's Headers: case-insensitive

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """curl_cffi's `aiter_content` with its errors mapped where they surface.

        One generator per chunk instead of a wrapper around curl's: on the hot path (one chunk per
        token) a wrapper cost about 1 µs per chunk, roughly 1 % of forwarding one.
        """
        response = self._response
        chunks = response.queue
        assert chunks is not None, "not a streaming response"
        while True:
            chunk = await chunks.get()
            if chunk.__class__ is bytes:
                yield chunk
            elif chunk is STREAM_END:
                await response.aclose()  # the transfer ends by itself: keep the connection
                return
            elif isinstance(chunk, CurlError):
                await response.aclose()
                raise _transport_error(chunk, self._impersonate)
            else:  # a memoryview or bytearray, should curl_cffi ever hand one over
                yield bytes(chunk)

    async def aclose(self) -> None:
        task = _abort_transfer(self._response)
        if task is not None and not task.done():
            await asyncio.wait((task,))


class CurlTransport:
    """curl_cffi sessions keyed by proxy URL (None = direct), created on first use and reused, so
    connections and TLS sessions are pooled per exit. `max_clients` bounds concurrent transfers per
    session: size it to the account pool's capacity (curl_cffi's default of 10 silently queues).
    """

    def __init__(self, *, impersonate: str | None, max_clients: int = 256,
                 accept_encoding: str = DEFAULT_ACCEPT_ENCODING) -> None:
        self.impersonate = impersonate or None
        self.max_clients = max(1, int(max_clients))
        self.accept_encoding = accept_encoding
        self._sessions: dict[str | None, AsyncSession[CurlResponse]] = {}
        self._closed = False

    @classmethod
    def for_profile(cls, profile: ClientProfile, *, max_clients: int = 256) -> CurlTransport:
        """The transport a profile asks for: its fingerprint, and its Accept-Encoding for curl to decode."""
        encoding = {k.lower(): v for k, v in profile.headers.items()}.get("accept-encoding")
        return cls(impersonate=profile.impersonate, max_clients=max_clients,
                   accept_encoding=encoding or DEFAULT_ACCEPT_ENCODING)

    def _session(self, proxy: str | None) -> AsyncSession[CurlResponse]:
        """The session for this exit; created lazily (no await between lookup and insert: no race)."""
        if self._closed:
            raise RuntimeError("the curl transport is closed")
        key = proxy or None
        session = self._sessions.get(key)
        if session is None:
            session = _TrackedSession(
                impersonate=self.impersonate,
                max_clients=self.max_clients,
                proxy=key,  # curl_cffi maps `proxy` to {"all": url}: every scheme goes through it
                trust_env=False,  # None means direct, never a proxy from the environment
                allow_redirects=False,  # a redirect is not an API answer; never carry the token elsewhere
                # h2 over TLS (ALPN), HTTP/1.1 on cleartext: browsers never send an h2c `Upgrade`,
                # and a plain-http base URL (the simulator) must not get one either
                http_version=CurlHttpVersion.V2TLS,
                # no SIGPIPE juggling around every transfer step (two syscalls each time): Python already
                # ignores SIGPIPE, and DNS is asynchronous (c-ares), so curl needs no signals
                curl_options={CurlOpt.NOSIGNAL: 1},
            )
            self._sessions[key] = session
        return session

    async def request(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                      proxy: str | None, timeouts: Timeouts) -> Response:
        session = self._session(proxy)
        try:
            response = await session.request(
                method, url, headers=dict(headers), data=body, timeout=(timeouts.connect, timeouts.read),
                accept_encoding=self.accept_encoding,
            )
        except CurlError as exc:
            raise _transport_error(exc, self.impersonate) from None
        return Response(int(response.status_code), cast("Mapping[str, str]", response.headers),
                        response.content or b"")

    async def open_stream(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                          proxy: str | None, timeouts: Timeouts) -> CurlStream:
        """Send and wait for the first body bytes; cancelling the wait really ends the transfer.

        curl_cffi returns a streaming response only once the first body chunk arrived, and cancelling that
        wait would orphan the transfer. So the request runs as its own task, and if we stop waiting
        (the caller's first-byte timeout, or the caller is cancelled) its curl handle is removed from the
        multi handle: the transfer ends and the connection closes at once.
        """
        session = self._session(proxy)
        handles: list[Curl] = []
        context = _CURL_HANDLES.set(handles)
        try:  # the request task copies the context now, so its pop_curl reports into `handles`
            request: asyncio.Future[CurlResponse] = asyncio.ensure_future(session.request(
                method, url, headers=dict(headers), data=body, stream=True,
                timeout=(timeouts.connect, timeouts.read),
                accept_encoding=self.accept_encoding,
            ))
        finally:
            _CURL_HANDLES.reset(context)
        try:
            await asyncio.wait((request,))
        except BaseException:
            _abort_pending(session, request, handles)
            raise
        try:
            response = request.result()
        except CurlError as exc:
            raise _transport_error(exc, self.impersonate) from None
        return CurlStream(response, self.impersonate)

    async def aclose(self) -> None:
        """Close every session (and with them all their connections)."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
