"""`/docs` works offline: the page and everything it loads come from the gateway itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deepseek2api.api.docs import SWAGGER_UI_VERSION
from deepseek2api.server import create_app
from deepseek2api.settings import Settings

STATIC = Path(__file__).resolve().parents[2] / "src" / "deepseek2api" / "api" / "static"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings.model_validate({"keys": ["k"], "state": {"backend": "memory"},
                                        "upstream": {"base_url": "http://127.0.0.1:9", "impersonate": None}})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _referenced_urls(page: str) -> list[str]:
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    urls += re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", page)  # the OpenAPI document in the JS config
    return urls


def test_the_docs_page_refers_only_to_the_gateways_own_urls(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = _referenced_urls(page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/openapi.json"} <= set(urls), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} leaves the gateway"
    assert "cdn" not in page.text.lower()


def test_everything_the_docs_page_loads_is_served(client: TestClient) -> None:
    kinds = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}
    for url in _referenced_urls(client.get("/docs").text):
        response = client.get(url)
        assert response.status_code == 200, url
        expected = next(kind for suffix, kind in kinds.items() if url.endswith(suffix))
        assert expected in response.headers["content-type"], (url, response.headers["content-type"])
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.content == (STATIC / "swagger-ui" / "swagger-ui-bundle.js").read_bytes()


def test_the_openapi_document_has_no_docs_routes_and_the_old_cdn_route_is_gone(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path.startswith("/docs") for path in paths)
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_the_vendored_swagger_ui_carries_its_licence_and_version() -> None:
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text()
    assert (STATIC / "swagger-ui" / "NOTICE").is_file()
    assert f"`swagger-ui-dist` {SWAGGER_UI_VERSION}" in (STATIC / "swagger-ui" / "README.md").read_text()
