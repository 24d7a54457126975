"""Login, tokens and the auth envelope of the simulator."""

from __future__ import annotations

import pytest

from simulator_support import (
    EMAIL,
    MOBILE,
    MOBILE_PASSWORD,
    PASSWORD,
    asgi_client,
    auth,
    envelope_ok,
    login,
    small_config,
    state_of,
)


async def test_login_with_email_returns_token_at_biz_data_user_token() -> None:
    async with asgi_client() as client:
        r = await client.post("/api/v0/users/login", json={"email": EMAIL, "password": PASSWORD,
                                                            "device_id": "d", "os": "android"})
        assert r.status_code == 200
        user = envelope_ok(r.json())["user"]
        assert isinstance(user["token"], str) and len(user["token"]) == 64
        assert PASSWORD not in r.text
        current = await client.get("/api/v0/users/current", headers=auth(user["token"]))
        assert envelope_ok(current.json())["token"] == user["token"]
        assert state_of(client).stats()["logins"] == 1


async def test_login_with_mobile_form_and_country_prefix() -> None:
    async with asgi_client() as client:
        for number in (MOBILE, "+86" + MOBILE):
            r = await client.post("/api/v0/users/login", json={"mobile": number, "area_code": None,
                                                                "password": MOBILE_PASSWORD})
            assert envelope_ok(r.json())["user"]["token"]


@pytest.mark.parametrize("body", [
    {"email": EMAIL, "password": "wrong"},
    {"email": "nobody@example.org", "password": PASSWORD},
    {"mobile": MOBILE, "password": PASSWORD},
    {"email": EMAIL},
])
async def test_wrong_credentials_give_biz_code_2_with_http_200(body: dict) -> None:
    async with asgi_client() as client:
        r = await client.post("/api/v0/users/login", json=body)
        assert r.status_code == 200
        assert r.json() == {"code": 0, "msg": "", "data": {"biz_code": 2, "biz_msg": "PASSWORD_OR_USER_NAME_IS_WRONG",
                                                            "biz_data": None}}
        assert state_of(client).stats()["login_failures"] == 1


async def test_banned_user_cannot_log_in() -> None:
    config = small_config()
    config.users[0].banned = True
    async with asgi_client(config) as client:
        r = await client.post("/api/v0/users/login", json={"email": EMAIL, "password": PASSWORD})
        assert r.json()["data"]["biz_code"] == 10


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic abc"}])
async def test_unknown_token_gets_40003_envelope(headers: dict) -> None:
    async with asgi_client() as client:
        for method, path in (("GET", "/api/v0/users/current"), ("POST", "/api/v0/chat_session/create"),
                             ("POST", "/api/v0/chat/create_pow_challenge"), ("POST", "/api/v0/chat/completion")):
            r = await client.request(method, path, json={}, headers=headers)
            assert r.status_code == 200
            assert r.json() == {"code": 40003, "msg": "Authorization Failed (invalid token)", "data": None}


async def test_http_401_mode() -> None:
    async with asgi_client(small_config(token_error_http=True)) as client:
        r = await client.get("/api/v0/users/current", headers={"authorization": "Bearer nope"})
        assert r.status_code == 401
        assert r.json()["code"] == 40003


async def test_token_expires_after_ttl_and_relogin_gives_a_working_token() -> None:
    async with asgi_client(small_config(token_ttl=60)) as client:
        state = state_of(client)
        now = [1_800_000_000.0]
        state.clock = lambda: now[0]
        token = await login(client)
        r = await client.get("/api/v0/users/current", headers=auth(token))
        assert r.json()["code"] == 0
        now[0] += 61
        r = await client.get("/api/v0/users/current", headers=auth(token))
        assert r.json()["code"] == 40003
        fresh = await login(client)
        assert fresh != token
        r = await client.get("/api/v0/users/current", headers=auth(fresh))
        assert r.json()["code"] == 0


async def test_header_name_and_scheme_case_do_not_matter() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await client.get("/api/v0/users/current", headers={"Authorization": f"bearer {token}"})
        assert r.json()["code"] == 0
