"""How the pool logs accounts in: every configured login field reaches DeepSeek."""

from __future__ import annotations

from typing import Any

from deepseek2api.pool.login import AccountLogin
from deepseek2api.settings import Settings


class RecordingClient:
    def __init__(self) -> None:
        self.logins: list[dict[str, Any]] = []

    async def login(self, **kwargs: Any) -> str:
        self.logins.append(kwargs)
        return "token-from-login"

    async def aclose(self) -> None:
        pass


async def test_mobile_login_sends_area_code_and_a_stable_device_id() -> None:
    settings = Settings.model_validate({
        "keys": ["k"], "state": {"backend": "memory"},
        "accounts": [{"mobile": "13800000000", "area_code": "+86", "password": "pw", "name": "phone"}]})
    client = RecordingClient()
    login = AccountLogin(client)
    account = settings.accounts[0]
    assert await login(account, None) == "token-from-login"
    await login(account, "socks5://127.0.0.1:1")
    first, second = client.logins
    assert first["mobile"] == "13800000000" and first["area_code"] == "+86" and first["password"] == "pw"
    assert first["email"] is None and first["proxy"] is None and second["proxy"] == "socks5://127.0.0.1:1"
    assert first["device_id"] == second["device_id"] and len(first["device_id"]) == 32
