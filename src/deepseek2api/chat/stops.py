"""Stop sequences: how many and how long a client may send, and a matcher whose work is linear.

OpenAI documents "up to 4" stop sequences; the gateway has accepted 16 since its first version (some
agent frameworks send more than four), so the count stays at 16. A single stop string is capped at
`MAX_STOP_CHARS` characters: real stops are short markers ("\\n\\nHuman:", "</answer>"), and an
unbounded one (1 MB) made every streamed chunk copy and compare the held-back text.

`StopMatcher` is a Knuth–Morris–Pratt automaton fed chunk by chunk: its state is the length of the
longest tail of the content so far that is a prefix of the stop string, so it never re-reads earlier
text. Each character costs amortised O(1) steps whatever the stop's length (`steps` counts them, for
tests); while no prefix is in progress it jumps to the next occurrence of the stop's first character
with `str.find`, so ordinary text is skipped at C speed.
"""

from __future__ import annotations

from collections import deque

MAX_STOP_SEQUENCES = 16
MAX_STOP_CHARS = 256


class StopMatcher:
    """Streaming search for one stop string across any split of the text into chunks."""

    __slots__ = ("_fail", "state", "steps", "stop")

    def __init__(self, stop: str) -> None:
        if not stop:
            raise ValueError("a stop sequence cannot be empty")
        self.stop = stop
        self.state = 0  # longest tail of the text seen so far that is a prefix of `stop`
        self.steps = 0  # character steps taken (first-character jumps by str.find not counted)
        self._fail = _prefix_function(stop)

    def scan(self, text: str) -> int | None:
        """Feed `text`; return the offset in `text` just past the first complete match, or None."""
        stop, fail, q, steps = self.stop, self._fail, self.state, 0
        first, size = stop[0], len(stop)
        i, n = 0, len(text)
        try:
            while i < n:
                if q == 0:
                    i = text.find(first, i)
                    if i < 0:
                        return None
                char = text[i]
                while q and stop[q] != char:
                    q = fail[q - 1]
                    steps += 1
                if stop[q] == char:
                    q += 1
                steps += 1
                i += 1
                if q == size:
                    return i
            return None
        finally:
            self.state, self.steps = q, self.steps + steps


def _prefix_function(s: str) -> list[int]:
    """fail[k] = length of the longest proper border of s[:k + 1] (KMP's failure function)."""
    fail = [0] * len(s)
    q = 0
    for k in range(1, len(s)):
        while q and s[k] != s[q]:
            q = fail[q - 1]
        if s[k] == s[q]:
            q += 1
        fail[k] = q
    return fail


class HeldText:
    """Text held back while it may still start a stop sequence: appended at the end, released from
    the front, each character copied once (a long hold is never re-joined per chunk)."""

    __slots__ = ("_offset", "_pieces", "size")

    def __init__(self) -> None:
        self._pieces: deque[str] = deque()
        self._offset = 0  # characters of the first piece already released
        self.size = 0

    def append(self, text: str) -> None:
        if text:
            self._pieces.append(text)
            self.size += len(text)

    def take(self, count: int) -> str:
        """Remove and return the first `count` characters."""
        out: list[str] = []
        count = min(count, self.size)
        self.size -= count
        while count:
            head = self._pieces[0]
            available = len(head) - self._offset
            if count < available:
                out.append(head[self._offset:self._offset + count])
                self._offset += count
                break
            out.append(head[self._offset:] if self._offset else head)
            self._pieces.popleft()
            self._offset = 0
            count -= available
        return "".join(out)

    def clear(self) -> None:
        self._pieces.clear()
        self._offset = self.size = 0
