"""The one grammar of tool-call markers: every DSML and V3 tag variant DeepSeek's models write (docs/tools.md).

`scan_tag` looks at the text from a `<` and says: not a marker, a marker that needs more text (the
sieve holds it back), or a complete tag with its kind and attributes. Variants accepted:

- DSML: `<｜DSML｜tool_calls>`, `<｜DSML｜function_calls>`, `<｜DSML｜invoke name="…">`,
  `<｜DSML｜parameter name="…" string="true|false">`, their closers; separators `｜`, `|`, `‖` (one to
  three of them, or `:` after DSML), spaces inside (`< ｜DSML｜…`), the closing `/` in any position
  (`</｜DSML｜x>`, `<｜/DSML｜x>`, `<｜DSML｜/x>`), any case, a closer missing its `>`.
- V3: `<｜tool▁calls▁begin｜>`, `<｜tool▁call▁begin｜>`, `<｜tool▁sep｜>`, `<｜tool▁call▁end｜>`,
  `<｜tool▁calls▁end｜>` with `▁`, `_` or a space between words and any pipe variant.

Everything the sieve can hold back is bounded: an uncertain prefix is at most ~60 characters, a
certain tag at most `MAX_TAG` characters.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

SEPARATORS: Final = "｜|‖"
MAX_TAG: Final = 512
_MAX_WORD = 40
_MAX_SPACES = 3
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_▁")
_FIRST = frozenset(" \t/dD" + SEPARATORS)  # what may follow "<" in any marker (a cheap early exit)
_ATTR = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")


class TagKind(enum.Enum):
    WRAP_OPEN = "wrap_open"        # tool_calls / function_calls / tool▁calls▁begin
    WRAP_CLOSE = "wrap_close"
    INVOKE_OPEN = "invoke_open"    # invoke / tool▁call▁begin
    INVOKE_CLOSE = "invoke_close"
    PARAM_OPEN = "param_open"
    PARAM_CLOSE = "param_close"
    TOOL_SEP = "tool_sep"          # V3 <｜tool▁sep｜>
    OTHER = "other"                # any other DSML or tool▁… tag (e.g. an invented tool_result)


@dataclass(frozen=True, slots=True)
class Tag:
    kind: TagKind
    end: int  # index just after the tag
    attrs: Mapping[str, str] = field(default_factory=dict)
    v3: bool = False


class _Partial:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PARTIAL"


PARTIAL: Final = _Partial()

_DSML_NAMES = {
    "tool_calls": (TagKind.WRAP_OPEN, TagKind.WRAP_CLOSE),
    "function_calls": (TagKind.WRAP_OPEN, TagKind.WRAP_CLOSE),
    "invoke": (TagKind.INVOKE_OPEN, TagKind.INVOKE_CLOSE),
    "parameter": (TagKind.PARAM_OPEN, TagKind.PARAM_CLOSE),
}
_V3_NAMES = {
    "tool_calls_begin": TagKind.WRAP_OPEN,
    "tool_calls_end": TagKind.WRAP_CLOSE,
    "tool_call_begin": TagKind.INVOKE_OPEN,
    "tool_call_end": TagKind.INVOKE_CLOSE,
    "tool_sep": TagKind.TOOL_SEP,
}


def _spaces(buf: str, j: int, n: int) -> int:
    k = j
    while k < n and buf[k] in " \t" and k - j < _MAX_SPACES:
        k += 1
    return k


def scan_tag(buf: str, i: int, final: bool = False) -> Tag | _Partial | None:
    """Classify the text at `buf[i]` (a `<`). With `final`, nothing can follow: no PARTIAL answer."""
    n = len(buf)
    if i + 1 < n and buf[i + 1] not in _FIRST:
        return None
    closing = False
    j = _spaces(buf, i + 1, n)
    if j < n and buf[j] == "/":
        closing = True
        j = _spaces(buf, j + 1, n)
    seps = 0
    while j < n and buf[j] in SEPARATORS and seps < 3:
        j += 1
        seps += 1
    j = _spaces(buf, j, n)
    if j < n and buf[j] == "/":
        closing = True
        j = _spaces(buf, j + 1, n)
    if j >= n:
        return None if final else PARTIAL
    k = j
    while k < n and buf[k] in _WORD_CHARS and k - j <= _MAX_WORD:
        k += 1
    word = buf[j:k].lower()
    if not word:
        return None
    if k >= n:  # the word may still grow
        if final:
            return None
        if "dsml".startswith(word) or (seps and ("tool".startswith(word) or word.startswith("tool"))):
            return PARTIAL
        return None
    if word == "dsml":
        return _dsml(buf, i, k, n, closing, final)
    if seps and word.startswith("tool"):
        return _v3(buf, k, n, word, final)
    return None


def _dsml(buf: str, i: int, k: int, n: int, closing: bool, final: bool) -> Tag | _Partial | None:
    k = _spaces(buf, k, n)
    seps = 0
    while k < n and (buf[k] in SEPARATORS or buf[k] == ":") and seps < 3:
        k += 1
        seps += 1
    if k >= n:
        return None if final else PARTIAL
    if not seps:
        return None
    k = _spaces(buf, k, n)
    if k < n and buf[k] == "/":
        closing = True
        k += 1
    start = k
    while k < n and buf[k] in _WORD_CHARS and k - start <= _MAX_WORD:
        k += 1
    if k >= n and not final:
        return PARTIAL
    name = buf[start:k].lower()
    if not name:
        return None
    kinds = _DSML_NAMES.get(name)
    kind = TagKind.OTHER if kinds is None else kinds[1 if closing else 0]
    # attributes up to ">" (quotes respected); a closer may lack its ">"
    m = k
    limit = min(n, i + MAX_TAG)
    while m < limit:
        ch = buf[m]
        if ch == ">":
            return Tag(kind, m + 1, _attrs(buf[k:m]))
        if ch == '"' or ch == "'":
            q = buf.find(ch, m + 1, limit)
            if q < 0:
                m = limit
                break
            m = q + 1
            continue
        if ch == "<" or (ch == "\n" and not buf[k:m].strip()):
            return Tag(kind, m, _attrs(buf[k:m]))
        m += 1
    if m >= n and n < i + MAX_TAG and not final:
        return PARTIAL
    if final and m >= n:
        return Tag(kind, n, _attrs(buf[k:n]))
    return Tag(kind, k, {})  # too long to be a tag: only the marker itself is markup


def _v3(buf: str, k: int, n: int, word: str, final: bool) -> Tag | _Partial | None:
    m = _spaces(buf, k, n)
    seps = 0
    while m < n and buf[m] in SEPARATORS and seps < 3:
        m += 1
        seps += 1
    m = _spaces(buf, m, n)
    if m >= n:
        if final:
            return Tag(_V3_NAMES.get(_v3_key(word), TagKind.OTHER), n, v3=True) if seps else None
        return PARTIAL
    if not seps:
        return None
    end = m + 1 if buf[m] == ">" else m
    return Tag(_V3_NAMES.get(_v3_key(word), TagKind.OTHER), end, v3=True)


def _v3_key(word: str) -> str:
    return word.replace("▁", "_").replace(" ", "_")


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        value = match.group(2)
        if value is None:
            value = match.group(3) if match.group(3) is not None else match.group(4)
        out[match.group(1).lower()] = value
    return out


CDATA_OPEN: Final = "<![CDATA["
CDATA_CLOSE: Final = "]]>"
