"""`max_tokens` as a cap on the answer, counted exactly as `usage` counts it.

The cap covers reasoning and visible answer together, as OpenAI's `max_completion_tokens` does for
reasoning models (and DeepSeek's API for deepseek-reasoner): `usage.completion_tokens` never exceeds it.
When a delta would cross it, only the part that fits goes out, the turn ends with `finish_reason:
"length"` and the runner stops the upstream reply. The web chat has no such switch, so this is the only
way to honour it.

Counting every delta with the tokenizer would cost more than the answer is worth, so:
- a token is at least one UTF-8 byte, so while the text's bytes stay under the cap nothing is counted
  (most replies never get near their cap);
- past that, text is counted in pieces cut where tokens cannot span the cut (`usage.is_safe_cut`), so
  the pieces' counts add up to the whole text's count and each character is counted about once; only
  the short tail after the last such cut is counted again at each check;
- counting runs in a worker thread with the GIL-releasing batch call (chat/usage.py), and only when
  the uncounted bytes could reach the cap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .usage import count_tokens, last_safe_cut, truncate_tokens


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class _Part:
    """One of the two texts (reasoning, answer): the counted head and the uncounted tail."""

    counted: int = 0  # tokens of the text before `tail` (which starts at a safe cut)
    tail: str = ""
    tail_bytes: int = 0
    chars: int = 0  # characters let out so far

    def fold(self) -> int:
        """Count the tail up to its last safe cut into `counted`; the exact tokens of what is left."""
        cut = last_safe_cut(self.tail, 1, len(self.tail) - 1)
        if cut > 0:
            self.counted += count_tokens(self.tail[:cut])
            self.tail = self.tail[cut:]
            self.tail_bytes = _utf8_len(self.tail)
        return count_tokens(self.tail)


@dataclass(slots=True)
class TokenCap:
    """Feed it each text delta before it goes out (`admit`); it says how much of it may."""

    limit: int
    _parts: dict[bool, _Part] = field(default_factory=lambda: {False: _Part(), True: _Part()})

    def chars(self, reasoning: bool) -> int:
        """Characters of that text let out so far."""
        return self._parts[reasoning].chars

    async def admit(self, text: str, *, reasoning: bool) -> str | None:
        """None: `text` goes out whole. A string: only that prefix goes out and the cap is reached."""
        part, other = self._parts[reasoning], self._parts[not reasoning]
        size = _utf8_len(text)
        if part.counted + other.counted + part.tail_bytes + size + other.tail_bytes <= self.limit:
            part.tail += text
            part.tail_bytes += size
            part.chars += len(text)
            return None
        keep = await asyncio.to_thread(self._measure, part, other, text)
        part.chars += len(text) if keep is None else len(keep)
        return keep

    def _measure(self, part: _Part, other: _Part, text: str) -> str | None:
        """Exact counts (blocking: runs in a worker thread)."""
        other_tail = other.fold()
        part.fold()  # the old tail alone: all of it already went out
        counted, old_tail = part.counted, part.tail
        part.tail += text
        part.tail_bytes += _utf8_len(text)
        tail_tokens = part.fold()  # (folding moves counted text into part.counted)
        if part.counted + tail_tokens + other.counted + other_tail <= self.limit:
            return None
        # Over: cut the new text so that old tail + kept new text fit what is left of the cap exactly.
        kept = truncate_tokens(old_tail + text, max(0, self.limit - counted - other.counted - other_tail))
        part.counted = counted
        part.tail = kept if len(kept) >= len(old_tail) else old_tail
        part.tail_bytes = _utf8_len(part.tail)
        return kept[len(old_tail):]
