"""HTTP binding of the Gemini API: `/v1beta/models…` (also `/v1/models/{model}:{method}` and under `/gemini`).

The key comes as the SDKs send it: `x-goog-api-key`, or `?key=` (REST examples, older clients); a
Bearer header works too. `GET /v1/models` stays the OpenAI list (the same path on both APIs); the
Gemini list is `GET /v1beta/models`. Errors on these paths are in Google's envelope (errors.py).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...chat.turn import ModelRegistry
from ..access import note_key
from ..auth import Authenticator, Caller
from ..errors import ApiError, RequestInvalid, not_found, unauthorized
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


def gemini_router(generate: GenerateContent, models: GeminiModels, registry: ModelRegistry,
                  authenticator: Authenticator) -> APIRouter:
    router = APIRouter()

    @router.get("/v1beta/models", summary="List models (Gemini API)")
    @router.get("/gemini/v1beta/models", include_in_schema=False)
    async def list_models(request: Request) -> JSONResponse:
        gemini_caller(request, authenticator)
        return JSONResponse({"models": [model_body(name, spec) for name, spec in registry.names()]})

    @router.get("/v1beta/models/{target:path}", summary="Get a model (Gemini API)")
    @router.get("/gemini/v1beta/models/{target:path}", include_in_schema=False)
    async def get_model(target: str, request: Request) -> JSONResponse:
        gemini_caller(request, authenticator)
        name = model_name(target)
        spec = models.resolve(name)
        if spec is None:
            raise ModelNotFound(name)
        return JSONResponse(model_body(name, spec))

    @router.post("/v1beta/models/{target:path}", summary="generateContent, streamGenerateContent, countTokens")
    @router.post("/v1/models/{target:path}", include_in_schema=False)
    @router.post("/gemini/v1beta/models/{target:path}", include_in_schema=False)
    async def model_method(target: str, request: Request) -> Response:
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
