"""What the tool core hands the surfaces: visible text, visible reasoning, and finished tool calls.

A call is only ever emitted whole (name known, arguments complete and valid), so a renderer can send
id, type and name exactly once and the arguments as one fragment.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
_RANDOM = random.SystemRandom()


def new_call_id(prefix: str = "call_") -> str:
    """`call_` + 24 random alphanumerics (unique per call; never derived from the content)."""
    return prefix + "".join(_RANDOM.choices(_ALPHABET, k=24))


@dataclass(frozen=True, slots=True)
class SievedText:
    """Answer text that may be shown now (never contains tool markup outside code fences)."""

    text: str


@dataclass(frozen=True, slots=True)
class SievedReasoning:
    """Reasoning text that may be shown now (tool markup removed the same way)."""

    text: str


@dataclass(frozen=True, slots=True)
class OutToolCall:
    """One complete call. `arguments`: a JSON object string (function tools) or raw text (custom tools)."""

    index: int
    id: str
    name: str
    arguments: str


Event = SievedText | SievedReasoning | OutToolCall
