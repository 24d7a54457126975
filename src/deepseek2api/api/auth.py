"""Who is calling: a configured gateway key, or (when allowed) a raw DeepSeek token.

Keys are compared in constant time against *every* configured key (no early exit), on fixed-length
digests, so neither the position of a matching key nor a key's length leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .access import note_key
from .errors import ApiError, unauthorized


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller. `key_name` is safe to log; the key itself never is."""

    key_name: str
    passthrough_token: str | None = None  # a DeepSeek token used directly (token_passthrough mode)
    fingerprint: str = ""  # `key_fingerprint` of the presented key: who owns stored responses (never the key)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer …` or `x-api-key` (Anthropic-style clients send that)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def key_digest(value: str) -> bytes:
    """The fixed-length digest keys are compared on (and the only form a console-made key is kept in)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


_digest = key_digest


def key_fingerprint(digest: bytes) -> str:
    """Who owns a stored response: a domain-separated hash of the key's digest (128 bits as hex), the same
    on every replica and across restarts, never the key. Keys are random secrets, and the state file that
    keeps it already holds the conversations themselves (0600), so a fast hash is enough here."""
    return hashlib.sha256(b"deepseek2api/response-owner\0" + digest).hexdigest()[:32]


class Authenticator:
    """Checks gateway keys; knows whether unknown bearers may be used as DeepSeek tokens."""

    def __init__(self, keys: Sequence[tuple[str, str]], *, token_passthrough: bool = False) -> None:
        self._keys = [(name, _digest(key)) for name, key in keys]
        self._fingerprints = {digest: key_fingerprint(digest) for _, digest in self._keys}
        self.token_passthrough = token_passthrough

    def add_digest(self, name: str, digest: bytes) -> None:
        """A key made at runtime (the console; store/keys.py keeps only its digest). Replaces `name`'s."""
        self._keys = [(n, d) for n, d in self._keys if n != name] + [(name, digest)]
        self._fingerprints[digest] = key_fingerprint(digest)

    def remove(self, name: str) -> bool:
        before = len(self._keys)
        self._keys = [(n, d) for n, d in self._keys if n != name]
        return len(self._keys) != before

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    def authenticate_request(self, request: Any) -> Caller:
        """`authenticate` on a Starlette request, noting the key's name for the request's access line."""
        caller = self.authenticate(request.headers)
        note_key(request, caller.key_name)
        return caller

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        key = presented_key(headers)
        if key is None:
            raise unauthorized("Missing API key. Send it as 'Authorization: Bearer <key>'.")
        digest = _digest(key)
        matched: str | None = None
        for name, expected in self._keys:
            if hmac.compare_digest(digest, expected) and matched is None:
                matched = name
        if matched is not None:
            return Caller(key_name=matched, fingerprint=self._fingerprints[digest])
        if self.token_passthrough:  # every bearer owns its own stored responses
            return Caller(key_name="passthrough", passthrough_token=key, fingerprint=key_fingerprint(digest))
        if not self._keys:
            raise ApiError(401, "This gateway has no API keys configured; add one to `keys` in config.json.",
                           "invalid_request_error", None, "invalid_api_key")
        raise unauthorized()
