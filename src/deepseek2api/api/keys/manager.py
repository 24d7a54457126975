"""Keys made from the console: create (the key is shown once), edit rules, disable, delete.

The key itself is made here (`sk-ds2-` + 32 random bytes), handed back once, and only its SHA-256
digest is kept (store/keys.py) — it cannot be shown again, only replaced. Keys from config.json are
listed with their rules but are the operator's file's: the console cannot change or delete them.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from ...keys.directory import KeyDirectory
from ...keys.rules import RULE_FIELDS, KeyRules
from ...store.keys import KeyBook, StoredKey
from ..auth import Authenticator, key_digest

log = logging.getLogger(__name__)

KEY_PREFIX = "sk-ds2-"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,63}$")


class KeyEditError(Exception):
    """A refused edit; `status` is the admin API's answer (400, 404 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _rules(name: str, fields: Mapping[str, Any]) -> KeyRules:
    unknown = sorted(set(fields) - set(RULE_FIELDS) - {"name"})
    if unknown:
        raise KeyEditError(400, f"unknown field(s): {', '.join(unknown)}; a key has {', '.join(RULE_FIELDS)}")
    try:
        return KeyRules.from_fields(name, fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise KeyEditError(400, f"{where}: {first.get('msg', 'invalid value')}") from None


class KeyManager:
    """The console's key edits, applied to the book, the authenticator and the directory together."""

    def __init__(self, directory: KeyDirectory, book: KeyBook, authenticator: Authenticator, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.book = book
        self.authenticator = authenticator
        self._clock = clock
        self._created: dict[str, float] = {}

    async def load(self) -> None:
        """The stored keys, after config.json's (a config key of the same name wins).

        An unusable state file must not stop the gateway (the state store itself starts fresh then, with a
        warning): the console's keys are left out, said once, and config.json's keys still work."""
        try:
            found = await self.book.load()
        except Exception as exc:  # noqa: BLE001 - sqlite3 or OS errors of whatever the path is
            log.warning("keys made in the console are not loaded: the state file is unusable (%s)", exc)
            return
        for stored in found:
            current = self.directory.get(stored.name)
            if current is not None and current.origin == "config":
                log.warning("key %r from the console is shadowed by config.json's key of that name", stored.name)
                continue
            try:
                rules = KeyRules.from_fields(stored.name, stored.rules)
                digest = bytes.fromhex(stored.digest)
            except (ValidationError, ValueError):
                log.warning("key %r: unreadable entry in the state store, skipped", stored.name)
                continue
            self.directory.put(rules)
            self.authenticator.add_digest(stored.name, digest)
            self._created[stored.name] = stored.created_at

    def created_at(self, name: str) -> float | None:
        return self._created.get(name)

    async def create(self, fields: Mapping[str, Any]) -> tuple[str, KeyRules]:
        name = str(fields.get("name") or "").strip()
        if not NAME_PATTERN.match(name):
            raise KeyEditError(400, "name: 1-64 letters, digits, spaces or . _ @ + - (starting with a letter or digit)")
        if self.directory.get(name) is not None:
            raise KeyEditError(409, f"a key named {name!r} exists already")
        rules = _rules(name, {k: v for k, v in fields.items() if k != "name"})
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = key_digest(key)
        created = self._clock()
        await self.book.put(StoredKey(name, digest.hex(), _stored(rules), created))
        self.directory.put(rules)
        self.authenticator.add_digest(name, digest)
        self._created[name] = created
        return key, rules

    async def update(self, name: str, fields: Mapping[str, Any]) -> KeyRules:
        current = self._editable(name)
        merged = {**_stored(current), **{k: v for k, v in fields.items() if k != "name"}}
        rules = _rules(name, merged)
        stored = [k for k in await self.book.load() if k.name == name]
        if not stored:
            raise KeyEditError(404, f"no key named {name!r}")
        await self.book.put(StoredKey(name, stored[0].digest, _stored(rules), stored[0].created_at))
        self.directory.put(rules)
        return rules

    async def delete(self, name: str) -> None:
        self._editable(name)
        await self.book.remove(name)
        self.directory.remove(name)
        self.authenticator.remove(name)
        self._created.pop(name, None)

    def _editable(self, name: str) -> KeyRules:
        current = self.directory.get(name)
        if current is None:
            raise KeyEditError(404, f"no key named {name!r}")
        if current.origin != "console":
            raise KeyEditError(409, f"the key {name!r} is defined in config.json; change it there")
        return current


def _stored(rules: KeyRules) -> dict[str, Any]:
    return {k: v for k, v in rules.fields().items() if k in RULE_FIELDS}


__all__ = ["KEY_PREFIX", "KeyEditError", "KeyManager"]
