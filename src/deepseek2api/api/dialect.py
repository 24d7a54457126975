"""Error dialects: the one place where an `ApiError` becomes an HTTP answer or a stream's last event.

Each surface speaks its clients' error dialect (status mapping, envelope, the stream's error event,
the request-id header its SDKs read). The composition root registers them by route prefix in one
table (`DialectTable`, server.py); the middleware looks the request's dialect up once and keeps it in
`scope["state"]["dialect"]`, and everything that answers an error — the framework's exception
handlers (`install`), the middleware's own answers (pre-response errors, the 500 fallback, the
shutdown trailer), the admin API, `/metrics`, and the turn endpoint's status rule — renders through
`render_error` / `error_response` with that dialect. Every error answer carries the request id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from .access import note_error
from .errors import ApiError, bad_request, not_found


class ErrorDialect(Protocol):
    """How one surface's clients expect an error."""

    def status(self, error: ApiError) -> int:
        """The HTTP status the client gets for `error`."""
        ...

    def body(self, error: ApiError, request_id: str | None) -> bytes:
        """The JSON error body."""
        ...

    def stream_event(self, error: ApiError, request_id: str | None) -> bytes:
        """The event that ends a stream which already answered 200."""
        ...

    def id_headers(self, request_id: str) -> list[tuple[bytes, bytes]]:
        """The request-id headers every answer on these routes carries."""
        ...


class OpenAIDialect:
    """The OpenAI envelope (`{"error": {message, type, param, code}}`); the default for every route."""

    def status(self, error: ApiError) -> int:
        return error.status

    def body(self, error: ApiError, request_id: str | None) -> bytes:
        return error.body_bytes()

    def stream_event(self, error: ApiError, request_id: str | None) -> bytes:
        return error.sse_bytes()

    def id_headers(self, request_id: str) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", request_id.encode())]


OPENAI = OpenAIDialect()


class RenderedDialect(OpenAIDialect):
    """A dialect from a surface's render function `(error, request_id) -> (status, body)`, and `stream_event`
    for the last event of its streams (the middleware's shutdown trailer; the OpenAI event without one)."""

    def __init__(self, render: Callable[[ApiError, str | None], tuple[int, bytes]],
                 stream_event: Callable[[ApiError, str | None], bytes] | None = None) -> None:
        self.render = render
        self._stream_event = stream_event

    def stream_event(self, error: ApiError, request_id: str | None) -> bytes:
        if self._stream_event is None:
            return error.sse_bytes()
        return self._stream_event(error, request_id)

    def status(self, error: ApiError) -> int:
        return self.render(error, None)[0]

    def body(self, error: ApiError, request_id: str | None) -> bytes:
        return self.render(error, request_id)[1]


Route = str | Callable[[str], bool]  # a path prefix, or a test of the whole path


class DialectTable:
    """Route → dialect; the first matching route wins, `default` for the rest."""

    def __init__(self, routes: Sequence[tuple[Route, ErrorDialect]] = (), default: ErrorDialect = OPENAI) -> None:
        self.routes = tuple(routes)
        self.default = default

    def for_path(self, path: str) -> ErrorDialect:
        for route, dialect in self.routes:
            if path.startswith(route) if isinstance(route, str) else route(path):
                return dialect
        return self.default


def dialect_of(scope: Any) -> ErrorDialect:
    """The request's dialect, as the middleware chose it (the default without the middleware)."""
    state = scope.get("state") if isinstance(scope, dict) else getattr(scope, "scope", {}).get("state")
    dialect = state.get("dialect") if isinstance(state, dict) else None
    return dialect if dialect is not None else OPENAI


def request_id_of(scope: Any) -> str | None:
    state = scope.get("state") if isinstance(scope, dict) else getattr(scope, "scope", {}).get("state")
    return state.get("request_id") if isinstance(state, dict) else None


def render_error(error: ApiError, dialect: ErrorDialect, request_id: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of `error` in `dialect` (the one rendering every error answer goes through)."""
    headers = error.all_headers()
    if request_id:
        headers.update((k.decode(), v.decode()) for k, v in dialect.id_headers(request_id))
    return dialect.status(error), headers, dialect.body(error, request_id)


def error_response(request: Any, error: ApiError) -> Response:
    """`error` as the answer to `request` (a Starlette request or an ASGI scope), in its dialect."""
    note_error(request, error.code)  # for the access line (api/access.py)
    status, headers, body = render_error(error, dialect_of(request), request_id_of(request))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def _api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error = not_found(f"Unknown route {request.method} {request.url.path}.", "unknown_route")
    elif exc.status_code == 405:
        error = ApiError(405, f"Method {request.method} is not allowed on {request.url.path}.",
                         "invalid_request_error", None, "method_not_allowed")
    else:
        error = ApiError(exc.status_code, str(exc.detail), "invalid_request_error", None, None)
    return error_response(request, error)


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
    return error_response(request, bad_request(f"Invalid request: {first.get('msg', 'bad input')}", where))


_installed = DialectTable()  # the table of the last `install`, for answers given before any app runs


def dialect_for(path: str) -> ErrorDialect:
    """The dialect of `path` by the installed table: for the HTTP parser (http_limits.py), which answers a
    request whose head is too large or too slow before the app (and so the middleware) sees it."""
    return _installed.for_path(path)


def install(app: FastAPI, table: DialectTable | None = None) -> None:
    """Route every error the framework raises through `error_response`; `table` (server.py's) also serves
    `dialect_for`."""
    global _installed
    if table is not None:
        _installed = table
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)


__all__ = ["OPENAI", "DialectTable", "ErrorDialect", "OpenAIDialect", "RenderedDialect", "dialect_for", "dialect_of",
           "error_response", "install", "render_error", "request_id_of"]
