"""How a configured account logs in: the policy the pool (and `deepseek2api check`) share.

A stable device id per account (DeepSeek ties sessions to it; a new one per login looks like a new
phone every time), every token learned is registered with the log redactor, and an account with no
password is a credentials problem, not a network one.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from ..logs import redactor
from ..settings import AccountSettings, Settings
from .health import TOKEN_EXPIRED


class LoginClient(Protocol):
    async def login(self, *, password: str, email: str | None, mobile: str | None, device_id: str,
                    proxy: str | None, area_code: str | None) -> str: ...


def device_id(account_id: str) -> str:
    """The same 32-hex device id for an account on every login and every restart."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"deepseek2api:{account_id}").hex


def register_secrets(settings: Settings) -> None:
    """Tell the log redactor every configured secret (API keys, passwords, tokens)."""
    for secret in [k.key for k in settings.keys] + [k.key for k in settings.admin_keys] \
            + [a.password for a in settings.accounts] \
            + [a.token for a in settings.accounts]:
        redactor.add(secret)


class AccountLogin:
    """`await login(account, proxy)` → a fresh token; raises `UpstreamFailure` with the kind."""

    def __init__(self, client: LoginClient) -> None:
        self.client = client

    async def __call__(self, account: AccountSettings, proxy: str | None) -> str:
        if not account.password:
            raise UpstreamFailure(UpstreamError(ErrorKind.NEEDS_TOKEN, TOKEN_EXPIRED))
        token = await self.client.login(password=account.password, email=account.email, mobile=account.mobile,
                                        device_id=device_id(account.id), proxy=proxy, area_code=account.area_code)
        redactor.add(token)
        return token
