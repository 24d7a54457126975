"""A lease source for token passthrough: the caller's bearer *is* the DeepSeek token.

Only used when the operator turns `token_passthrough` on. There is no account to rotate to and no
password to log in with, so a rejected token ends the request (the API answers 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError
from .errors import PassthroughExhausted
from .proxies import ProxyPool


class PassthroughLease:
    account_id = "passthrough"

    def __init__(self, token: str, proxy: str | None) -> None:
        self._token = token
        self.proxy = proxy

    async def token(self) -> str:
        return self._token

    async def relogin(self) -> str:
        raise UpstreamFailure(UpstreamError(ErrorKind.TOKEN_INVALID, "the passthrough token was rejected"))

    def report(self, error: UpstreamError) -> None:
        """Nothing to remember: the token belongs to the caller."""

    def report_success(self) -> None:
        """Nothing to remember: the token belongs to the caller."""


class PassthroughLeases:
    def __init__(self, token: str, proxies: ProxyPool) -> None:
        self._token = token
        self._proxies = proxies

    @asynccontextmanager
    async def lease(self, *, exclude: Collection[str] = (), prefer: str | None = None,
                    only: str | None = None) -> AsyncIterator[PassthroughLease]:
        """The caller's token; `prefer` means nothing here and `only` may name just this token."""
        if PassthroughLease.account_id in exclude:
            raise PassthroughExhausted("the passthrough token was already tried")
        if only is not None and only != PassthroughLease.account_id:
            raise PassthroughExhausted("a passthrough request cannot be pinned to a pool account")
        yield PassthroughLease(self._token, self._proxies.pick(None))
