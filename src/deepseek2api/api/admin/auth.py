"""Who may use the console: `admin_keys`, or — when none are configured — any of `keys`.

Keys are checked by `api/auth.py`'s `Authenticator` (constant time, every key compared, fixed-length
digests). When `admin_keys` is set, a valid *ordinary* API key gets 403 (we know who you are; the
console is not yours) and anything else 401: a client key cannot open the console, and a wrong key
learns nothing it did not already know.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..auth import Authenticator
from ..errors import ApiError


def forbidden() -> ApiError:
    return ApiError(403, "This key is an API key, not an admin key: the console needs one of `admin_keys`.",
                    "permission_error", None, "admin_key_required")


class AdminAuth:
    """Checks a request's headers; returns the key *name* (safe to log) or raises `ApiError` 401/403."""

    def __init__(self, admin_keys: Sequence[tuple[str, str]], keys: Sequence[tuple[str, str]]) -> None:
        self.dedicated = bool(admin_keys)
        self._admin = Authenticator(admin_keys if admin_keys else keys)
        self._clients = Authenticator(keys) if admin_keys else None

    def check(self, headers: Mapping[str, str]) -> str:
        try:
            return self._admin.authenticate(headers).key_name
        except ApiError:
            if self._clients is not None and self._clients.has_keys:
                try:
                    self._clients.authenticate(headers)
                except ApiError:
                    pass
                else:
                    raise forbidden() from None
            raise


__all__ = ["AdminAuth", "forbidden"]
