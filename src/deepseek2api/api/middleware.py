"""One pure-ASGI middleware for what every route needs: request id, CORS, body limit, last-resort errors,
the access line of requests no serving object logs (api/access.py), and dropping the connection of a
client that stopped reading a stream (api/sse.py `ClientStalled`).

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass straight through with no buffering
and no extra task per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import AccessEntry, write_line
from .dialect import DialectTable, ErrorDialect, render_error
from .errors import ApiError, internal_error, shutting_down, too_large
from .request_limits import (
    RequestLimits,
    allowed_request_headers,
    body_timeout_error,
    head_error,
)
from .sse import ClientStalled

log = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")  # echoed back as a header only when it looks like this
_CLIENT_ID_LIMIT = 128
_CLOSE = (b"connection", b"close")
# Streams that a complete event (the dialect's `stream_event`) can end at any point: SSE, and Ollama's
# NDJSON. A streamed JSON array (Gemini without `?alt=sse`) is not one: a cut is its client's error.
_STREAM_TYPES = (b"text/event-stream", b"application/x-ndjson")
_OPERATOR_PATHS = ("/admin", "/metrics")
_EXPOSE_HEADERS = b"x-request-id, request-id, retry-after, retry-after-ms, x-should-retry"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, cors_origins: Iterable[str],
                 limits: RequestLimits | None = None, dialects: DialectTable | None = None) -> None:
        self.app = app
        self.dialects = dialects or DialectTable()  # route prefix → error dialect (server.py)
        self.limits = limits or RequestLimits()
        self.max_body_bytes = max_body_bytes
        self.origins = [o.rstrip("/") for o in cors_origins]
        self.any_origin = "*" in self.origins

    def _allowed_origin(self, origin: str | None, path: str) -> bytes | None:
        """The Access-Control-Allow-Origin value. The operator's surfaces (`/admin…`, `/metrics`) are
        same-origin only unless the origin is listed by name: `*` does not open them to any web page."""
        if not origin:
            return None
        listed = origin.rstrip("/") in self.origins
        if path.startswith(_OPERATOR_PATHS):
            return origin.encode() if listed else None
        if self.any_origin:
            return b"*"
        return origin.encode() if listed else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # Always our own id (a client must not pick one, or repeat another request's); the client's own
        # goes beside it into the access line, and back as x-client-request-id when it is well-formed.
        request_id = f"req_{uuid.uuid4().hex}"
        client_id = headers.get("x-client-request-id") or headers.get("x-request-id") or None
        path = scope.get("path", "")
        entry = AccessEntry(request_id, client_id[:_CLIENT_ID_LIMIT] if client_id else None, scope["method"], path,
                             time.perf_counter())
        dialect = self.dialects.for_path(path)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["access"] = entry
        state["dialect"] = dialect  # every error answer of this request renders in it (api/dialect.py)
        origin = self._allowed_origin(headers.get("origin"), path)
        extra = dialect.id_headers(request_id)  # x-request-id, and the one the surface's SDKs read
        if client_id and _SAFE_REQUEST_ID.match(client_id):
            extra.append((b"x-client-request-id", client_id.encode()))
        if origin is not None:
            extra += [(b"access-control-allow-origin", origin), (b"access-control-expose-headers", _EXPOSE_HEADERS)]
            if origin != b"*":
                extra.append((b"vary", b"Origin"))

        try:
            await self._serve(scope, receive, send, headers, extra, entry, dialect)
        finally:
            if not entry.claimed:  # nobody else writes this request's line
                write_line(entry, status=entry.status or 499)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str],
                     extra: list[tuple[bytes, bytes]], entry: AccessEntry, dialect: ErrorDialect) -> None:
        request_id = entry.request_id

        async def answer(error: ApiError, *, close: bool = False) -> None:
            await self._error(entry, send, extra + [_CLOSE] if close else extra, error, dialect)

        too_big = head_error(scope["headers"], self.limits)
        if too_big is not None:
            await answer(too_big)
            return

        if scope["method"] == "OPTIONS":  # CORS preflight (or a plain OPTIONS): always 204
            allow = allowed_request_headers(headers.get("access-control-request-headers", ""))
            entry.status = 204
            await send({"type": "http.response.start", "status": 204, "headers": extra + [
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", allow.encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ]})
            await send({"type": "http.response.body", "body": b""})
            return

        length = headers.get("content-length")
        # A body the app does not read in full (a 401 before it, a 413) must not keep the connection: a
        # client trickling the rest would hold it open for ever (issue 24). `connection: close` makes
        # the server close it once the answer is out.
        has_body = (length is not None and length.strip() not in ("", "0")) or "transfer-encoding" in headers
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await answer(self._too_large(), close=True)
            return

        received = 0
        limit = self.max_body_bytes
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + self.limits.body_timeout
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later calls only wait for the client to leave: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, body_deadline - loop.time()))
            except TimeoutError:
                raise body_timeout_error(self.limits) from None  # answered by the app's ApiError handler
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large()  # answered by the app's ApiError handler
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        started = False
        streaming = False  # an event stream (_STREAM_TYPES): an error can still go out as its last event
        ended = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started, streaming, ended
            if message["type"] == "http.response.start":
                started = True
                entry.status = message["status"]
                present = {k.lower() for k, _ in message.get("headers", [])}
                streaming = any(k.lower() == b"content-type" and v.startswith(_STREAM_TYPES)
                                for k, v in message.get("headers", []))
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in present]
                if has_body and not body_done and b"connection" not in present:
                    message["headers"].append(_CLOSE)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except ApiError as error:
            entry.error_code = error.code
            if not started:
                await answer(error, close=has_body and not body_done)
        except ClientStalled:  # the stream's turn is already ended (api/sse.py); drop the connection too
            entry.error_code = "write_timeout"
            await _abort_connection(receive)
        except ClientDisconnect:  # the client left while sending its request: nobody to answer
            entry.error_code = "client_closed"
            log.debug("request %s: client disconnected before its body was read", request_id)
        except asyncio.CancelledError:
            # The server cancels what still runs when its shutdown grace (server.shutdown_grace) is
            # over: end the request with an answer instead of a cut connection and a logged trace.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._shutting_down(entry, send, extra, dialect, started, streaming and not ended)
        except Exception:
            entry.error_code = "internal_error"
            log.exception("unhandled error in request %s", request_id)
            if not started:
                await answer(internal_error(request_id))

    async def _shutting_down(self, entry: AccessEntry, send: Send, extra: list[tuple[bytes, bytes]],
                             dialect: ErrorDialect, started: bool, open_stream: bool) -> None:
        error = shutting_down()
        try:
            if not started:
                await self._error(entry, send, extra, error, dialect)
            elif open_stream:
                last = dialect.stream_event(error, None)
                await send({"type": "http.response.body", "body": last, "more_body": False})
        except (OSError, RuntimeError):
            pass  # the connection is already gone

    def _too_large(self) -> ApiError:
        return too_large(self.max_body_bytes)

    @staticmethod
    async def _error(entry: AccessEntry, send: Send, extra: list[tuple[bytes, bytes]], error: ApiError,
                     dialect: ErrorDialect) -> None:
        status, error_headers, body = render_error(error, dialect, entry.request_id)
        entry.status, entry.error_code = status, error.code
        present = {k for k, _ in extra}
        error_headers = {k: v for k, v in error_headers.items() if k.encode() not in present}
        headers = extra + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in error_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _abort_connection(receive: Receive) -> None:
    """Close the client's connection at once, dropping what its socket buffers still hold.

    ASGI has no message for that, so this reaches uvicorn's transport through its `receive` (a bound
    method of the connection's request cycle). With another server nothing is done here: the server
    closes the connection itself when the app returns with the response unfinished (and logs that)."""
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        return
    abort()
    for _ in range(3):  # the transport reports the loss on the next loop turns; then uvicorn knows it is gone
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)
