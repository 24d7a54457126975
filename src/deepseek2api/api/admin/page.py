"""The console page: one HTML file, its stylesheet and script, shipped as package data.

Read once when the routes are built (no file I/O per request) and served with a strict Content
Security Policy: only our own script and style, no inline code, no framing, no referrer. The page is
public (it holds no data); everything it shows comes from the admin API, with the key it was given.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


def _load() -> dict[str, bytes]:
    folder = resources.files(__package__ or "deepseek2api.api.admin") / "static"
    return {name: (folder / name).read_bytes() for name in ASSETS}


def page_routes(prefix: str = "/admin") -> list[BaseRoute]:
    """`GET {prefix}` (the page), `{prefix}/` (redirect) and `{prefix}/static/<asset>`."""
    files = _load()
    page = files["index.html"].replace(b"{{PREFIX}}", prefix.encode())

    async def index(request: Request) -> Response:
        return Response(page, headers={**SECURITY_HEADERS, "content-type": ASSETS["index.html"]})

    async def slash(request: Request) -> Response:
        return RedirectResponse(prefix, status_code=308)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS or name == "index.html":
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(files[name], headers={**SECURITY_HEADERS, "content-type": ASSETS[name]})

    return [
        Route(prefix, index, methods=["GET"], include_in_schema=False),
        Route(prefix + "/", slash, methods=["GET"], include_in_schema=False),
        Route(prefix + "/static/{name}", asset, methods=["GET"], include_in_schema=False),
    ]


__all__ = ["page_routes"]
