"""Does an exit (a proxy, or the direct route) reach DeepSeek? One cheap request, no account used.

The console's "test proxy" asks `users/current` with a placeholder token: any answer from upstream
(it refuses the token) proves the exit works; a connection error or a WAF page proves it does not.
No account, token or login is involved, so a test can never cost an account anything.
"""

from __future__ import annotations

from ..deepseek.client import DeepSeekClient
from ..deepseek.errors import ErrorKind, UpstreamFailure
from ..deepseek.events import UpstreamError

PLACEHOLDER_TOKEN = "deepseek2api-exit-probe"
_EXIT_KINDS = (ErrorKind.NETWORK, ErrorKind.WAF_BLOCKED)


async def probe_exit(client: DeepSeekClient, proxy: str | None) -> UpstreamError | None:
    """None when upstream answered through `proxy` (None: direct); else the exit's failure."""
    try:
        await client.current_user(PLACEHOLDER_TOKEN, proxy=proxy)
    except UpstreamFailure as failure:
        return failure.error if failure.kind in _EXIT_KINDS else None
    return None


__all__ = ["probe_exit"]
