"""One key's rules: which models it may use and how much (config objects or keys made in the console).

Pure values: the limiter (keys/limiter.py) counts against them, the gate (api/keys/gate.py) answers.
A limit of 0 (or `expires_at` None) means "no limit", so a plain string key has no rules at all.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..settings import ApiKey

RULE_FIELDS = ("models", "max_streams", "rpm", "tokens_per_day", "expires_at", "enabled", "note")


@dataclass(frozen=True, slots=True)
class KeyRules:
    """What one named key may do; `origin` says where it was defined ("config" or "console")."""

    name: str
    models: tuple[str, ...] = ()  # shell patterns (`deepseek-*`), matched case-insensitively; empty: all
    max_streams: int = 0  # concurrent requests
    rpm: int = 0  # requests in any 60 s
    tokens_per_day: int = 0  # prompt + completion tokens per UTC day
    expires_at: float | None = None  # unix seconds
    enabled: bool = True
    note: str = ""
    origin: str = "config"

    @classmethod
    def from_settings(cls, key: ApiKey) -> KeyRules:
        return cls(name=key.name, models=tuple(key.models), max_streams=key.max_streams, rpm=key.rpm,
                   tokens_per_day=key.tokens_per_day, expires_at=key.expires_at, enabled=key.enabled,
                   note=key.note)

    @classmethod
    def from_fields(cls, name: str, fields: Mapping[str, Any], origin: str = "console") -> KeyRules:
        """Rules from a stored or posted object: validated the way config.json's keys are."""
        known = {k: fields[k] for k in RULE_FIELDS if k in fields and fields[k] is not None}
        key = ApiKey.model_validate({"name": name, "key": "-", **known})
        return cls.from_settings(key).with_origin(origin)

    def with_origin(self, origin: str) -> KeyRules:
        return KeyRules(self.name, self.models, self.max_streams, self.rpm, self.tokens_per_day, self.expires_at,
                        self.enabled, self.note, origin)

    def allows_model(self, model: str) -> bool:
        if not self.models:
            return True
        name = model.strip().lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in self.models)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def fields(self) -> dict[str, Any]:
        """The rules as a JSON object (no key: it is never kept in the clear)."""
        out = asdict(self)
        out["models"] = list(self.models)
        return out


__all__ = ["RULE_FIELDS", "KeyRules"]
