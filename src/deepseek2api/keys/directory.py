"""Every named key's rules, by name: config.json's keys first, then the keys made in the console."""

from __future__ import annotations

from collections.abc import Iterable

from .rules import KeyRules


class KeyDirectory:
    """name → `KeyRules` (event-loop only; the console's edits replace an entry in one step)."""

    def __init__(self, rules: Iterable[KeyRules] = ()) -> None:
        self._rules: dict[str, KeyRules] = {r.name: r for r in rules}

    def get(self, name: str) -> KeyRules | None:
        return self._rules.get(name)

    def put(self, rules: KeyRules) -> None:
        self._rules[rules.name] = rules

    def remove(self, name: str) -> bool:
        return self._rules.pop(name, None) is not None

    def all(self) -> list[KeyRules]:
        return list(self._rules.values())


__all__ = ["KeyDirectory"]
