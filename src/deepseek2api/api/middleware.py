"""One pure-ASGI middleware for what every route needs: request id, CORS, body limit, last-resort errors.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass straight through with no buffering
and no extra task per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import (
    ApiError,
    anthropic_sse_bytes,
    internal_error,
    is_anthropic_path,
    rendered,
    shutting_down,
    too_large,
)
from .request_limits import (
    RequestLimits,
    allowed_request_headers,
    body_timeout_error,
    head_error,
)

log = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_EXPOSE_HEADERS = b"x-request-id, request-id, retry-after, retry-after-ms, x-should-retry"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, cors_origins: Iterable[str],
                 limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = limits or RequestLimits()
        self.max_body_bytes = max_body_bytes
        self.origins = [o.rstrip("/") for o in cors_origins]
        self.any_origin = "*" in self.origins

    def _allowed_origin(self, origin: str | None) -> bytes | None:
        if not origin:
            return None
        if self.any_origin:
            return b"*"
        return origin.encode() if origin.rstrip("/") in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        origin = self._allowed_origin(headers.get("origin"))
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        path = scope.get("path", "")
        if is_anthropic_path(path):
            extra.append((b"request-id", request_id.encode()))  # the anthropic SDKs read this one
        if origin is not None:
            extra += [(b"access-control-allow-origin", origin), (b"access-control-expose-headers", _EXPOSE_HEADERS)]
            if origin != b"*":
                extra.append((b"vary", b"Origin"))

        too_big = head_error(scope["headers"], self.limits)
        if too_big is not None:
            await self._error(send, extra, too_big, path)
            return

        if scope["method"] == "OPTIONS":  # CORS preflight (or a plain OPTIONS): always 204
            allow = allowed_request_headers(headers.get("access-control-request-headers", ""))
            await send({"type": "http.response.start", "status": 204, "headers": extra + [
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", allow.encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ]})
            await send({"type": "http.response.body", "body": b""})
            return

        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._error(send, extra, self._too_large(), path)
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
        streaming = False  # an event stream: an error can still go out as its last event
        ended = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started, streaming, ended
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                streaming = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                                for k, v in message.get("headers", []))
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in present]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except ApiError as error:
            if not started:
                await self._error(send, extra, error, path)
        except ClientDisconnect:  # the client left while sending its request: nobody to answer
            log.debug("request %s: client disconnected before its body was read", request_id)
        except asyncio.CancelledError:
            # The server cancels what still runs when its shutdown grace (server.shutdown_grace) is
            # over: end the request with an answer instead of a cut connection and a logged trace.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._shutting_down(send, extra, started, streaming and not ended, path)
        except Exception:
            log.exception("unhandled error in request %s", request_id)
            if not started:
                await self._error(send, extra, internal_error(request_id), path)

    async def _shutting_down(self, send: Send, extra: list[tuple[bytes, bytes]], started: bool,
                             open_stream: bool, path: str = "") -> None:
        error = shutting_down()
        try:
            if not started:
                await self._error(send, extra, error, path)
            elif open_stream:
                last = anthropic_sse_bytes(error) if is_anthropic_path(path) else error.sse_bytes()
                await send({"type": "http.response.body", "body": last, "more_body": False})
        except (OSError, RuntimeError):
            pass  # the connection is already gone

    def _too_large(self) -> ApiError:
        return too_large(self.max_body_bytes)

    @staticmethod
    async def _error(send: Send, extra: list[tuple[bytes, bytes]], error: ApiError, path: str = "") -> None:
        status, error_headers, body = rendered(error, path, dict(extra)[b"x-request-id"].decode())
        present = {k for k, _ in extra}
        error_headers = {k: v for k, v in error_headers.items() if k.encode() not in present}
        headers = extra + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in error_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
