"""HTTP binding of the OpenAI surface. Every route works with and without the `/v1` prefix,
because users paste either form of the base URL (docs/clients.md).

`openai_router(...)` is called by the composition root with the parts the routes need; nothing
here looks anything up on the app.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...chat.model_limits import ModelLimits
from ...chat.turn import ModelRegistry
from ..auth import Authenticator
from .protocol import ModelNotFound
from .render import model_body, model_list_body
from .serving import ChatCompletions


def openai_router(chat: ChatCompletions, registry: ModelRegistry, authenticator: Authenticator,
                  limits: ModelLimits | None = None) -> APIRouter:
    router = APIRouter()
    authenticate = authenticator.authenticate_request  # also names the key in the access line

    @router.post("/v1/chat/completions", summary="Create a chat completion (OpenAI-compatible)")
    @router.post("/chat/completions", include_in_schema=False)
    async def chat_completions(request: Request) -> Response:
        caller = authenticate(request)
        return await chat.handle(request, caller, request.scope["state"]["request_id"])

    @router.get("/v1/models", summary="List models")
    @router.get("/models", include_in_schema=False)
    async def list_models(request: Request) -> JSONResponse:
        authenticate(request)
        if request.query_params.get("available", "").lower() in ("1", "true", "yes"):
            # only the models every account can serve today, by the settings learned so far (chat/modes.py)
            learned = chat.deps.runner.modes.learned().values()
            served = [spec for spec in registry.listed()
                      if all(modes.allows(spec.model_type) is not False for modes in learned)]
            return JSONResponse(model_list_body(served, limits))
        return JSONResponse(model_list_body(registry, limits))

    @router.get("/v1/models/{model_id:path}", summary="Retrieve a model")
    @router.get("/models/{model_id:path}", include_in_schema=False)
    async def retrieve_model(model_id: str, request: Request) -> JSONResponse:
        authenticate(request)
        if not model_id.strip("/"):  # `GET /v1/models/` is the list, not a model named ""
            return JSONResponse(model_list_body(registry))
        spec = registry.resolve(model_id)
        if spec is None:
            raise ModelNotFound(model_id)  # the same 404 as an unknown model in a chat request
        return JSONResponse(model_body(spec, model_id, limits))

    return router
