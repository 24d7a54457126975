"""The console's keys and usage page (`/admin/keys`): its HTML, script, chart module and stylesheet.

Package data read once when the routes are built, served with the console's strict Content Security
Policy (api/admin/page.py): our own script and style only, no CDN, no build step. The page holds no
data; everything comes from the admin API with the key the console stored for this tab.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..admin.page import SECURITY_HEADERS

ASSETS = {
    "keys.html": "text/html; charset=utf-8",
    "keys.css": "text/css; charset=utf-8",
    "keys.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
}


def keys_page_routes(prefix: str = "/admin") -> list[BaseRoute]:
    """`GET {prefix}/keys` and `{prefix}/keys/static/<asset>`."""
    folder = resources.files(__package__ or "deepseek2api.api.keys") / "static"
    files = {name: (folder / name).read_bytes() for name in ASSETS}
    page = files["keys.html"].replace(b"{{PREFIX}}", prefix.encode())

    async def index(request: Request) -> Response:
        return Response(page, headers={**SECURITY_HEADERS, "content-type": ASSETS["keys.html"]})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS or name == "keys.html":
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(files[name], headers={**SECURITY_HEADERS, "content-type": ASSETS[name]})

    return [
        Route(f"{prefix}/keys", index, methods=["GET"], include_in_schema=False),
        Route(f"{prefix}/keys/static/{{name}}", asset, methods=["GET"], include_in_schema=False),
    ]


__all__ = ["keys_page_routes"]
