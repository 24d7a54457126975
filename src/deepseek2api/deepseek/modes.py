"""Which chat modes (`model_type`: default, expert, vision) an account may use, from its web settings.

Since 2026-09 the web chat's settings (`GET /api/v0/client/settings?scope=model`) list expert and vision
as `enabled: false` for many accounts, and a completion sent in a disabled mode comes back empty. The
answer's exact shape is not public, so it is read tolerantly: any object naming a mode next to an
enabled/disabled flag, or a flag keyed by the mode's name, counts; anything else is "unknown" (None),
and an unknown mode is assumed usable. Reading it never fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODES = ("default", "expert", "vision")
_NAME_KEYS = ("model_type", "modelType", "type", "mode", "name", "id", "key", "model")
_ON_KEYS = ("enabled", "is_enabled", "isEnabled", "available", "is_available", "visible", "on")
_OFF_KEYS = ("disabled", "is_disabled", "isDisabled", "hidden")
_MAX_NODES = 2000  # a settings answer is small; never walk a huge one


@dataclass(frozen=True, slots=True)
class ModelModes:
    """mode → enabled, for the modes the settings named (others are unknown)."""

    enabled: Mapping[str, bool] = field(default_factory=dict)

    def allows(self, mode: str | None) -> bool | None:
        """True / False as the settings say; None when they did not say (treat as allowed)."""
        if not mode:
            return True
        return self.enabled.get(mode.lower())

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(m for m, on in self.enabled.items() if not on)


def _flag(node: Mapping[str, Any]) -> bool | None:
    for key in _ON_KEYS:
        value = node.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    for key in _OFF_KEYS:
        value = node.get(key)
        if isinstance(value, bool):
            return not value
    return None


def _mode_of(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    lowered = text.strip().lower()
    return next((mode for mode in MODES if mode == lowered or lowered.startswith(mode + "_")
                 or lowered.endswith("_" + mode)), None)


def parse_model_settings(envelope: Any) -> ModelModes:
    """Every (mode, enabled) pair found anywhere in the answer; the first word on a mode wins."""
    found: dict[str, bool] = {}
    stack: list[Any] = [envelope]
    seen = 0
    while stack and seen < _MAX_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, Mapping):
            continue
        flag = _flag(node)
        if flag is not None:
            for key in _NAME_KEYS:
                mode = _mode_of(node.get(key))
                if mode is not None:
                    found.setdefault(mode, flag)
                    break
        for key, value in node.items():
            mode = key.lower() if isinstance(key, str) and key.lower() in MODES else None
            if mode is not None:
                if isinstance(value, bool):
                    found.setdefault(mode, value)
                elif isinstance(value, Mapping) and (inner := _flag(value)) is not None:
                    found.setdefault(mode, inner)
            for suffix in ("_enabled", "_available"):
                if isinstance(key, str) and key.lower().endswith(suffix) and isinstance(value, bool):
                    named = _mode_of(key[: -len(suffix)])
                    if named is not None:
                        found.setdefault(named, value)
            if isinstance(value, (Mapping, list)):
                stack.append(value)
    return ModelModes(found)
