"""Deterministic repair of almost-JSON written by a model (docs/tools.md).

Models break JSON in a few predictable ways: a code fence around it, prose before or after it, raw
newlines or tabs inside strings, invalid escapes such as `\\d` in a regex, trailing commas, and closers
missing because the answer was cut. One string-aware pass fixes all of these; anything else is left
for the one correction round.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[^\n]*\n(.*?)(?:\n[ \t]*\1[`~]*[ \t]*)?\s*$", re.DOTALL)
_ESCAPABLE = frozenset('"\\/bfnrtu')
_CLOSER = {"{": "}", "[": "]"}
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def strip_fence(text: str) -> str:
    """The body of a code fence that makes up the whole text (``` or ~~~, any info string); else `text`."""
    match = _FENCE.match(text)
    return match.group(2) if match else text


def loads_lenient(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is JSON as is or after repair; (False, None) otherwise."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        pass
    fixed = repair_json_text(text)
    if fixed is None:
        return False, None
    try:
        return True, json.loads(fixed)
    except (ValueError, RecursionError):
        return False, None


def repair_json_text(text: str) -> str | None:
    """The repaired JSON text of the first object or array in `text`, or None when there is none."""
    body = strip_fence(text.strip())
    start = -1
    for i, ch in enumerate(body):
        if ch in "{[":
            start = i
            break
    if start < 0:
        return None
    out: list[str] = []
    stack: list[str] = []
    in_string = False
    i, n = start, len(body)
    while i < n:
        ch = body[i]
        if in_string:
            if ch == "\\":
                nxt = body[i + 1] if i + 1 < n else ""
                if nxt in _ESCAPABLE and nxt:
                    out.append(ch + nxt)
                    i += 2
                    continue
                out.append("\\\\")  # an invalid escape: keep the backslash as a character
                i += 1
                continue
            if ch == '"':
                in_string = False
            elif ch in _CONTROL_ESCAPES:
                ch = _CONTROL_ESCAPES[ch]
            elif ch < " ":
                ch = f"\\u{ord(ch):04x}"
            out.append(ch)
            i += 1
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(_CLOSER[ch])
        elif ch in "}]":
            _drop_trailing_comma(out)
            if stack and stack[-1] == ch:
                stack.pop()
            elif stack:  # a wrong closer: assume the right one was meant
                ch = stack.pop()
            else:
                break
            out.append(ch)
            i += 1
            if not stack:
                break
            continue
        out.append(ch)
        i += 1
    if in_string:
        out.append('"')
    if stack:
        _drop_trailing_comma(out)
        while out and out[-1].strip() in (":",):
            out.pop()
        out.extend(reversed(stack))
    return "".join(out)


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j].isspace():
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]
