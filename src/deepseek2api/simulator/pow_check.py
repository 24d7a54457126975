"""The simulator's side of DeepSeek's proof-of-work: mint real DeepSeekHashV1 challenges and check answers.

A challenge is made the way the server must make it: pick a secret answer in [0, difficulty), publish
the hash of `salt_expireAt_answer`. Checking costs one hash. Challenges are bound to a target path,
expire after `pow_ttl`, carry an HMAC signature under a per-server key, and are single use
(docs/protocol.md). Issued challenges are kept until they expire, so memory stays bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALGORITHM = "DeepSeekHashV1"
MISSING_HEADER = (40300, "MISSING_HEADER")
INVALID_POW = (40301, "INVALID_POW_RESPONSE")
_SWEEP_EVERY = 256  # sweep expired challenges every N mints
_MAX_ISSUED = 200_000  # hard cap; the oldest are dropped first


def _load_hash() -> Callable[[bytes], str]:
    """The PoW helper's fast hash when it imports, else the pure-Python reference (one hash per call)."""
    try:
        from ..deepseek.pow import hash_hex

        if hash_hex(b"abc") == "f841106c601ce9be9bc38525e90d4178d47f21dd8eb9f238fc55ffaa4ca94506":
            return hash_hex
    except Exception:  # noqa: BLE001 - pow.py may be missing or half-written; the reference always works
        pass
    from ..deepseek.pow_reference import hash_hex as reference

    return reference


hash_hex = _load_hash()


@dataclass
class IssuedChallenge:
    salt: str
    expire_at: int  # ms
    difficulty: int
    target_path: str
    signature: str
    used: bool = False


class PowVerifier:
    """Mints challenges and verifies `x-ds-pow-response` headers."""

    def __init__(self, rng: random.Random, clock: Callable[[], float]) -> None:
        self._key = os.urandom(32)
        self._rng = rng
        self._clock = clock
        self._issued: dict[str, IssuedChallenge] = {}
        self._mints = 0

    def __len__(self) -> int:
        return len(self._issued)

    def clear(self) -> None:
        self._issued.clear()

    def _sign(self, challenge: str, salt: str, difficulty: int, expire_at: int, target_path: str) -> str:
        message = f"{ALGORITHM}|{challenge}|{salt}|{difficulty}|{expire_at}|{target_path}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def mint(self, target_path: str, difficulty: int, ttl_seconds: float) -> dict[str, Any]:
        """A new challenge, as the `biz_data.challenge` object."""
        self._mints += 1
        if self._mints % _SWEEP_EVERY == 0 or len(self._issued) >= _MAX_ISSUED:
            self.sweep()
        expire_after = int(ttl_seconds * 1000)
        expire_at = int(self._clock() * 1000) + expire_after
        salt = secrets.token_hex(10)
        answer = self._rng.randrange(difficulty)
        challenge = hash_hex(f"{salt}_{expire_at}_{answer}".encode())
        signature = self._sign(challenge, salt, difficulty, expire_at, target_path)
        self._issued[challenge] = IssuedChallenge(salt, expire_at, difficulty, target_path, signature)
        return {"algorithm": ALGORITHM, "challenge": challenge, "salt": salt, "signature": signature,
                "difficulty": difficulty, "expire_at": expire_at, "expire_after": expire_after,
                "target_path": target_path}

    def sweep(self) -> None:
        """Forget expired challenges (a reused expired answer is still refused: unknown challenge)."""
        now_ms = int(self._clock() * 1000)
        for key in [k for k, v in self._issued.items() if v.expire_at < now_ms]:
            del self._issued[key]
        while len(self._issued) >= _MAX_ISSUED:
            del self._issued[next(iter(self._issued))]

    def verify(self, header: str | None, path: str) -> tuple[int, str] | None:
        """None when the header is a valid, fresh, unused answer for `path`; else (code, msg) to send."""
        if not header:
            return MISSING_HEADER
        payload = _decode(header)
        if payload is None:
            return INVALID_POW
        answer, challenge = payload.get("answer"), payload.get("challenge")
        if type(answer) is not int or not isinstance(challenge, str):  # a float answer is refused
            return INVALID_POW
        issued = self._issued.get(challenge)
        if (issued is None or payload.get("algorithm") != ALGORITHM or payload.get("salt") != issued.salt
                or not isinstance(payload.get("signature"), str)
                or not hmac.compare_digest(payload["signature"], issued.signature)
                or payload.get("target_path") != path or issued.target_path != path):
            return INVALID_POW
        if issued.used or int(self._clock() * 1000) > issued.expire_at:
            return INVALID_POW
        if not 0 <= answer < issued.difficulty:
            return INVALID_POW
        if hash_hex(f"{issued.salt}_{issued.expire_at}_{answer}".encode()) != challenge:
            return INVALID_POW
        issued.used = True
        return None


def _decode(header: str) -> dict[str, Any] | None:
    """base64(JSON) → dict; padding optional; None when it is not that."""
    text = header.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
