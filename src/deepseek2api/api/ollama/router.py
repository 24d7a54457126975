"""HTTP binding of the Ollama API (`/api/…`), served only when the operator turns it on (`ollama.enabled`).

Ollama has no API keys, so who may call is the operator's choice: loopback clients only (the
default), or any client with a gateway key as `Authorization: Bearer` (`ollama.require_key`). With
`ollama.port` the surface answers only on that listener (11434 is Ollama's own port), and 404s on the
main one. Model management (`pull`, `push`, `create`, `copy`, `delete`, `blobs`) and embeddings are
not served: they answer a clear 501 instead of a 404 an app would read as "no Ollama here".
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...chat.turn import ModelRegistry
from ..access import note_key
from ..auth import Authenticator, Caller
from ..errors import ApiError, not_found
from ..request_body import read_json
from .protocol import model_of
from .render import API_VERSION, ps_body, show_body, tag_body
from .serving import OllamaTurns

LOCAL = Caller(key_name="ollama-local")  # a loopback client when no key is required
_NOT_SERVED = ("pull", "push", "create", "copy", "delete", "embed", "embeddings")


def _loopback(request: Request) -> bool:
    client = request.client
    if client is None:
        return False
    try:
        return ipaddress.ip_address(client.host).is_loopback
    except ValueError:
        return client.host in ("localhost", "testclient")


class OllamaGate:
    """Who may use the surface, and on which listener."""

    def __init__(self, authenticator: Authenticator, *, port: int | None, require_key: bool) -> None:
        self.authenticator, self.port, self.require_key = authenticator, port, require_key

    def admit(self, request: Request) -> Caller:
        server = request.scope.get("server")
        if self.port is not None and (not server or server[1] != self.port):
            raise not_found(f"Unknown route {request.method} {request.url.path}.", "unknown_route")
        if self.require_key:
            return self.authenticator.authenticate_request(request)
        if not _loopback(request):
            raise ApiError(403, "this gateway serves the Ollama API to loopback clients only (set ollama.require_key "
                                "to serve other clients with a key)", "permission_error", None, "forbidden")
        note_key(request, LOCAL.key_name)
        return LOCAL


def ollama_router(turns: OllamaTurns, registry: ModelRegistry, gate: OllamaGate) -> APIRouter:
    router = APIRouter()

    @router.post("/api/chat", summary="Chat (Ollama API)")
    async def chat(request: Request) -> Response:
        return await turns.chat(request, gate.admit(request))

    @router.post("/api/generate", summary="Generate (Ollama API)")
    async def generate(request: Request) -> Response:
        return await turns.generate(request, gate.admit(request))

    @router.get("/api/tags", summary="List models (Ollama API)")
    async def tags(request: Request) -> JSONResponse:
        gate.admit(request)
        return JSONResponse({"models": [tag_body(spec.id, spec) for spec in registry.listed()]})

    @router.get("/api/ps", summary="Running models (Ollama API)")
    async def ps(request: Request) -> JSONResponse:
        gate.admit(request)
        return JSONResponse({"models": [ps_body(spec.id, spec) for spec in registry.listed()]})

    @router.post("/api/show", summary="Show a model (Ollama API)")
    async def show(request: Request) -> JSONResponse:
        gate.admit(request)
        name, spec = model_of(await read_json(request), registry)
        return JSONResponse(show_body(name, spec))

    @router.get("/api/version", summary="Version (Ollama API)")
    async def version(request: Request) -> JSONResponse:
        gate.admit(request)
        return JSONResponse({"version": API_VERSION})

    async def not_served(request: Request) -> Response:
        gate.admit(request)
        what = request.url.path.removeprefix("/api/").split("/", 1)[0]
        raise ApiError(501, f"/api/{what} is not served by this gateway: it serves DeepSeek's models and stores "
                            "none locally (no pull, push, create, copy, delete or embeddings).",
                       "invalid_request_error", None, "not_served")

    for what in _NOT_SERVED:
        router.add_api_route(f"/api/{what}", not_served, methods=["POST", "DELETE"], include_in_schema=False)
    router.add_api_route("/api/blobs/{digest}", not_served, methods=["HEAD", "POST"], include_in_schema=False)
    return router
