"""HTTP binding of the Gemini API: `/v1beta/models…` (also `/v1/models/{model}:{method}` and under `/gemini`).

The key comes as the SDKs send it: `x-goog-api-key`, or `?key=` (REST examples, older clients); a
Bearer header works too. `GET /v1/models[/{model}]` is also OpenAI's path: it is the Gemini list only
for a request that carries a Google-style key (`GoogleKeyRoute`), so the two APIs share it. Errors on
these paths are in Google's envelope (errors.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from ...chat.model_limits import ModelLimits
from ...chat.turn import ModelRegistry
from ..access import note_key
from ..auth import Authenticator, Caller
from ..errors import ApiError, RequestInvalid, not_found, unauthorized
from .errors import render
from .protocol import GeminiModels, ModelNotFound, model_name
from .render import model_body
from .serving import GenerateContent

_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def gemini_caller(request: Request, authenticator: Authenticator) -> Caller:
    """The caller of a Gemini request: `x-goog-api-key`, `?key=`, or the usual Bearer / x-api-key."""
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    try:
        caller = authenticator.authenticate({"authorization": f"Bearer {key.strip()}"} if key and key.strip()
                                            else request.headers)
    except ApiError as exc:
        if key is None and "authorization" not in request.headers and "x-api-key" not in request.headers:
            raise unauthorized("Method doesn't allow unregistered callers. Send the key as 'x-goog-api-key' or "
                               "'?key='.") from None
        raise unauthorized("API key not valid. Please pass a valid API key.") if exc.status == 401 else exc from None
    note_key(request, caller.key_name)
    return caller


def _google_keyed(scope: Scope) -> bool:
    if any(name == b"x-goog-api-key" for name, _ in scope.get("headers", ())):
        return True
    return "key" in parse_qs(scope.get("query_string", b"").decode("latin-1"))


class GoogleKeyRoute(APIRoute):
    """A route that matches only requests carrying a Google-style key (`GET /v1/models` is OpenAI's too)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") == "http" and not _google_keyed(scope):
            return Match.NONE, {}
        return super().matches(scope)


def _in_google_envelope(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Errors of a shared path in Google's envelope (the path alone would pick OpenAI's)."""

    async def wrapped(request: Request, target: str = "") -> Response:
        try:
            return await handler(request, target) if target else await handler(request)
        except ApiError as error:
            status, body = render(error, None)
            return Response(body, status_code=status, media_type="application/json", headers=error.all_headers())

    return wrapped


def gemini_router(generate: GenerateContent, models: GeminiModels, registry: ModelRegistry,
                  authenticator: Authenticator, limits: ModelLimits | None = None) -> APIRouter:
    """`limits`: the `model_limits` settings, as `/v1/models` reports them (`inputTokenLimit`...)."""
    router = APIRouter()

    @router.get("/v1beta/models", summary="List models (Gemini API)")
    @router.get("/gemini/v1beta/models", include_in_schema=False)
    async def list_models(request: Request) -> JSONResponse:
        gemini_caller(request, authenticator)
        return JSONResponse({"models": [model_body(name, spec, limits) for name, spec in registry.names()]})

    @router.get("/v1beta/models/{target:path}", summary="Get a model (Gemini API)")
    @router.get("/gemini/v1beta/models/{target:path}", include_in_schema=False)
    async def get_model(request: Request, target: str) -> JSONResponse:
        gemini_caller(request, authenticator)
        name = model_name(target)
        spec = models.resolve(name)
        if spec is None:
            raise ModelNotFound(name)
        return JSONResponse(model_body(name, spec, limits))

    router.add_api_route("/v1/models", _in_google_envelope(list_models), methods=["GET"],
                         route_class_override=GoogleKeyRoute, include_in_schema=False)
    router.add_api_route("/v1/models/{target:path}", _in_google_envelope(get_model), methods=["GET"],
                         route_class_override=GoogleKeyRoute, include_in_schema=False)

    @router.post("/v1beta/models/{target:path}", summary="generateContent, streamGenerateContent, countTokens")
    @router.post("/v1/models/{target:path}", include_in_schema=False)
    @router.post("/gemini/v1beta/models/{target:path}", include_in_schema=False)
    async def model_method(request: Request, target: str) -> Response:
        name, _, method = target.rpartition(":")
        if not name or method not in _METHODS:
            raise not_found(f"Method '{method or target}' is not served; use one of {', '.join(_METHODS)}.",
                            "unknown_route")
        if not name.strip():
            raise RequestInvalid("The model name is empty.", "model")
        caller = gemini_caller(request, authenticator)
        if method == "countTokens":
            return await generate.count_tokens(request, name)
        return await generate.generate(request, caller, name, stream=method == "streamGenerateContent")

    return router
