"""The operator's surfaces: `/admin/status` opens with the console's keys, and `/admin…` and
`/metrics` are not readable by other web origins even with `cors_origins: ["*"]`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway_support import API_KEY, Stack, running_stack

ADMIN_KEY = "sk-admin-hardening"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=1, admin_keys=[{"name": "ops", "key": ADMIN_KEY}]) as running:
        yield running


def _get(stack: Stack, path: str, key: str | None = None, **headers: str) -> httpx.Response:
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.get(f"{stack.base_url}{path}", headers=headers, timeout=30)


def test_admin_status_is_for_admin_keys_and_not_for_client_keys(stack: Stack) -> None:
    assert _get(stack, "/admin/status").status_code == 401
    assert _get(stack, "/admin/status", API_KEY).status_code == 403
    body = _get(stack, "/admin/status", ADMIN_KEY).json()
    assert len(body["accounts"]) == 1
    assert _get(stack, "/health", API_KEY).status_code == 200


@pytest.mark.parametrize("path, key", [("/admin/api/accounts", ADMIN_KEY), ("/admin/status", ADMIN_KEY),
                                       ("/metrics", None), ("/admin", None)])
def test_operator_paths_send_no_cors_grant_to_another_origin(stack: Stack, path: str, key: str | None) -> None:
    response = _get(stack, path, key, origin="https://evil.example")
    assert response.status_code < 400
    assert "access-control-allow-origin" not in response.headers
    preflight = httpx.options(f"{stack.base_url}{path}", headers={
        "origin": "https://evil.example", "access-control-request-method": "GET"}, timeout=30)
    assert "access-control-allow-origin" not in preflight.headers


def test_the_api_keeps_its_cors_grant_and_the_preflight_allows_delete(stack: Stack) -> None:
    response = _get(stack, "/v1/models", API_KEY, origin="https://app.example")
    assert response.headers["access-control-allow-origin"] == "*"
    preflight = httpx.options(f"{stack.base_url}/v1/responses/resp_1", headers={
        "origin": "https://app.example", "access-control-request-method": "DELETE"}, timeout=30)
    assert preflight.status_code == 204
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
