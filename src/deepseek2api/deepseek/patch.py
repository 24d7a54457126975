"""The reply document that DeepSeek's JSON-patch stream edits (docs/protocol.md): how a patch path resolves
to a place in it, and how appended text accumulates there. Pure data handling, no events: the decoder
decides what a change means.
"""

from __future__ import annotations

from typing import Any


class Text:
    """A growing string kept as parts, so appending tokens to a long fragment stays O(1).

    Every 64 appended tokens are joined into one part (`settle`): one small str per token costs
    ~60 bytes, which made the parts list ~25x the size of the text itself on every open stream.
    """

    __slots__ = ("parts", "n", "settled")

    def __init__(self, initial: str | None) -> None:
        self.parts: list[str] = [initial] if initial else []
        self.n = len(initial) if initial else 0
        self.settled = len(self.parts)  # parts before this index are already joined chunks

    def settle(self) -> None:
        parts, settled = self.parts, self.settled
        parts[settled:] = ["".join(parts[settled:])]
        self.settled = settled + 1

    def value(self) -> str:
        parts = self.parts
        if len(parts) > 1:
            joined = "".join(parts)
            parts[:] = [joined]
            self.settled = 1
            return joined
        return parts[0] if parts else ""


def text_len(value: Any) -> int:
    if type(value) is str:
        return len(value)
    if type(value) is Text:
        return value.n
    return 0


def text_str(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is Text:
        return value.value()
    return ""


def list_index(lst: list[Any], token: str) -> int | None:
    try:
        index = int(token)
    except ValueError:
        return None
    if index < 0:
        index += len(lst)
    return index if 0 <= index < len(lst) else None


def looks_like_index(token: str) -> bool:
    return token.lstrip("-").isdigit()


class PathCache:
    """Split patch paths ("response/fragments/-1/content") once: the same few paths repeat on every token.
    Bounded, because paths with indexes are many over a long reply."""

    __slots__ = ("_tokens", "_limit")

    def __init__(self, limit: int) -> None:
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._limit = limit

    def parse(self, path: str) -> tuple[str, ...]:
        tokens = self._tokens.get(path)
        if tokens is None:
            tokens = tuple(t for t in path.split("/") if t)
            if len(self._tokens) >= self._limit:
                self._tokens.clear()
            self._tokens[path] = tokens
        return tokens


def walk(root: dict[str, Any], tokens: tuple[str, ...]) -> tuple[Any, Any] | None:
    """Resolve `tokens` to (container, key); creates missing intermediate objects."""
    node: Any = root
    count = len(tokens)
    for i in range(count - 1):
        token = tokens[i]
        if type(node) is dict:
            child = node.get(token)
            if child is None and not looks_like_index(tokens[i + 1]):
                child = node[token] = {}
        elif type(node) is list:
            index = list_index(node, token)
            if index is None:
                return None
            child = node[index]
        else:
            return None
        if type(child) is not dict and type(child) is not list:
            return None
        node = child
    last = tokens[-1]
    if type(node) is dict:
        return node, last
    if type(node) is list:
        index = list_index(node, last)
        return None if index is None else (node, index)
    return None
