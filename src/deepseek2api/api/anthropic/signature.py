"""Thinking-block signatures: opaque to clients, checkable by the gateway when a block comes back.

Anthropic clients must send `thinking` blocks back with their `signature` (Claude Code does, every
turn). The signature is an HMAC-SHA256 of the thinking text under a key that is configured
(`anthropic.signature_key`, shared by replicas) or random per process: a block the gateway wrote is
recognised as such, anything else (another gateway's, a restarted process's, an edited block) is
simply not trusted — never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_PREFIX = "ds2api1."


class ThinkingSigner:
    def __init__(self, key: str | None = None) -> None:
        self._key = key.encode() if key else secrets.token_bytes(32)

    def sign(self, thinking: str) -> str:
        mac = hmac.new(self._key, thinking.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return _PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify(self, thinking: str, signature: object) -> bool:
        """True only for a signature this key made over exactly this text."""
        if not isinstance(signature, str) or not signature.startswith(_PREFIX):
            return False
        return hmac.compare_digest(self.sign(thinking), signature)
