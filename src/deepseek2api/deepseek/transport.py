"""The seam between `DeepSeekClient` and whatever carries its bytes (httpx style).

The client knows endpoints, bodies, error classification and timeouts between chunks; a transport only
moves one request and its answer. Two implementations: `transport_curl.CurlTransport` (the default: a
browser TLS fingerprint, one connection pool per proxy) and `transport_asgi.AsgiTransport` (an ASGI app
called in-process, no sockets: the simulator in protocol tests).

A transport reports failures to carry a request as `TransportError` with a kind; what the failure means
upstream (which `ErrorKind`, which message, which secrets to scrub) stays the client's business.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from typing import Literal, NamedTuple, Protocol

# The methods DeepSeek's API takes (curl_cffi accepts exactly a set of literals like these).
Method = Literal["GET", "POST"]


class Timeouts(NamedTuple):
    """What the transport itself enforces (the client adds its own guards on top).

    `connect` bounds opening the connection. After that, `read` bounds the rest of a `request()` (the
    whole call then takes at most connect + read), while a stream tolerates silence for about
    connect + read before the transport drops it.
    """

    connect: float
    read: float


class TransportErrorKind(enum.Enum):
    """Why a transport could not carry a request."""

    NETWORK = "network"  # connect, proxy, TLS, timeout, connection reset: another try may work
    SETUP = "setup"  # the transport refused its own configuration (an unknown impersonation profile)


class TransportError(Exception):
    """A request the transport could not carry. `message` names no URL and may still hold secrets
    of the request (a proxy password in a curl message): the client scrubs before it shows it."""

    def __init__(self, kind: TransportErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Response(NamedTuple):
    """A complete answer. `headers` answers lookups by lower-case name."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class ResponseStream(Protocol):
    """An answer whose body is still arriving: status and headers are in, chunks follow.

    Iterating yields body chunks as they arrive and raises `TransportError` when the connection breaks.
    `aclose()` ends the transfer now (it never reads the rest): a stream stopped early must free the
    upstream side at once, or the account keeps generating for nobody.
    """

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    """Carries requests for `DeepSeekClient`. `proxy` is the exit for this call (None = direct)."""

    async def request(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                      proxy: str | None, timeouts: Timeouts) -> Response:
        """Send one request and read its whole answer; `TransportError` when it cannot be carried."""
        ...

    async def open_stream(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                          proxy: str | None, timeouts: Timeouts) -> ResponseStream:
        """Send one request and return once its answer has begun; `TransportError` as for `request()`.

        Cancelling the call while it waits ends the transfer, so a caller may bound the wait for the
        first byte with `asyncio.timeout` and be sure nothing keeps running upstream.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection; the transport is unusable after."""
        ...
