"""Request-head limits the ASGI app cannot enforce: size, count and read time of the headers.

uvicorn's default parser (httptools) reads a request head of any size, header by header, before the
app sees anything, and waits for it for ever: a 60 MB `Authorization` header was read whole and a head
sent at 1 byte/s stayed open indefinitely. `LimitedHttpToolsProtocol` is uvicorn's
own protocol with three checks added:

- a head (request line + headers) longer than `max_header_bytes` is answered 431 and the connection
  closed as soon as the bytes received say so, before the parser buffers more;
- more than `max_headers` header lines: 431;
- a head not complete within `header_timeout` seconds of the connection opening (or of the first byte
  of a later request on a kept-alive connection): 408 and close.

Both answers are the API's own: the error envelope of the surface the path belongs to (OpenAI or
Anthropic shape), an `x-request-id`, and a line in the access log like every other request.

Body size and body read time are checked in the ASGI middleware (api/middleware.py), so they also
hold under any server. `protocol_for(settings)` gives the class with the configured limits; plain
`uvicorn app:app` users can pass `--http deepseek2api.http_limits:LimitedHttpToolsProtocol` to get
the defaults.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .api.access import AccessEntry, write_line
from .api.dialect import dialect_for, render_error
from .api.errors import ApiError

DEFAULT_MAX_HEADER_BYTES = 65_536
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEADER_TIMEOUT = 30.0

_END_OF_HEAD = b"\r\n\r\n"


class HeadLimitExceeded(Exception):
    """Raised inside a parser callback to stop parsing; answered with `status`."""


def _response(error: ApiError, method: str, path: str) -> bytes:
    """The bytes of `error` as the app would render it for `path`, logged as one access line."""
    entry = AccessEntry(f"req_{uuid.uuid4().hex}", None, method or "-", path or "-", time.perf_counter())
    status, headers, body = render_error(error, dialect_for(path), entry.request_id)
    entry.error_code = error.code
    write_line(entry, status=status)
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", "content-type: application/json",
             f"content-length: {len(body)}", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


def _too_large() -> ApiError:
    return ApiError(431, "Request header fields too large (server.max_header_bytes / server.max_headers).",
                    "invalid_request_error", None, "request_headers_too_large")


def _head_timeout(seconds: float) -> ApiError:
    return ApiError(408, f"The request head did not arrive within {seconds:g} s (server.header_timeout).",
                    "invalid_request_error", None, "request_timeout")


def _request_line(head: bytes) -> tuple[str, str]:
    """Method and path of a request line (empty strings when it is not there yet)."""
    line = head.split(b"\r\n", 1)[0][:8192].decode("latin-1")
    parts = line.split(" ")
    if len(parts) < 2:
        return "", ""
    return parts[0][:16], parts[1].split("?", 1)[0]


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded, timed request head."""

    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    max_headers = DEFAULT_MAX_HEADERS
    header_timeout = DEFAULT_HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_lines = 0
        self._tail = b""  # the last 3 bytes of the head so far, to see "\r\n\r\n" split across reads
        self._start = b""  # the first bytes of the head: the request line, for the error's envelope and log
        self._in_head = True
        self._limit_hit = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._limit_hit:
            return
        if self._in_head:
            if len(self._start) < 8192:
                self._start += data[:8192]
            seen = self._tail + data
            end = seen.find(_END_OF_HEAD)
            size = self._head_bytes + (len(data) if end < 0 else end + len(_END_OF_HEAD) - len(self._tail))
            if size > self.max_header_bytes:
                self._reject(_too_large())
                return
            self._head_bytes, self._tail = size, seen[-3:]
        super().data_received(data)

    # parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # a later request on a kept-alive connection
            self._in_head, self._head_bytes, self._head_lines, self._tail = True, 0, 0, b""
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_lines += 1
        if self._head_lines > self.max_headers:
            raise HeadLimitExceeded()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._start = b""  # what arrives next is a body or the next request's head
        self._disarm_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_lines > self.max_headers:  # the parser stopped on our HeadLimitExceeded
            self._reject(_too_large())
            return
        super().send_400_response(msg)

    # internals ----------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes or self._tail:
            self._reject(_head_timeout(self.header_timeout))
        else:  # nothing sent at all: just close, as for an idle kept-alive connection
            self._limit_hit = True
            self.transport.close()

    def _reject(self, error: ApiError) -> None:
        self._limit_hit = True
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_response(error, *_request_line(self._start)))
            self.transport.close()


def protocol_for(max_header_bytes: int, max_headers: int, header_timeout: float) -> type[Any]:
    """The protocol class with these limits (a subclass, so the defaults stay untouched)."""
    return type("ConfiguredHttpToolsProtocol", (LimitedHttpToolsProtocol,),
                {"max_header_bytes": max_header_bytes, "max_headers": max_headers,
                 "header_timeout": header_timeout, "__module__": __name__})
