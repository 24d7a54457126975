"""`/docs` served entirely from the package, so the API page works offline and behind firewalls.

FastAPI's own page loads Swagger UI from a CDN and is blank without internet. Here the same page
(FastAPI's `get_swagger_ui_html`) points at Swagger UI's files shipped in `api/static/swagger-ui`
(vendored from the npm package `swagger-ui-dist`, Apache-2.0, see its README there) and at a
favicon of our own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

_STATIC = Path(__file__).resolve().parent / "static"


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` (and its assets under `/docs/assets`) from the package.

    Replaces FastAPI's CDN-based docs routes when the app was created with them, so the caller
    needs only this one call.
    """
    cdn_paths = {app.docs_url, app.swagger_ui_oauth2_redirect_url} - {None}
    kept: list[BaseRoute] = [route for route in app.router.routes if getattr(route, "path", None) not in cdn_paths]
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - API"
    # cache the rendered page: it is the same for every request
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title,
                               swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                               swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
                               swagger_favicon_url=f"{ASSETS_PATH}/favicon.svg")
    body = bytes(page.body)

    async def docs_page(request: Request) -> HTMLResponse:
        return HTMLResponse(body)

    async def favicon(request: Request) -> FileResponse:
        return FileResponse(_STATIC / "favicon.svg", media_type="image/svg+xml")

    kept[:0] = [
        Route(DOCS_PATH, docs_page, methods=["GET", "HEAD"], include_in_schema=False),
        Route(f"{ASSETS_PATH}/favicon.svg", favicon, methods=["GET", "HEAD"], include_in_schema=False),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False),  # what browsers ask for
        Mount(ASSETS_PATH, app=StaticFiles(directory=_STATIC / "swagger-ui"), name="swagger-ui"),
    ]
    app.router.routes[:] = kept
    app.docs_url = DOCS_PATH
    app.swagger_ui_oauth2_redirect_url = None
