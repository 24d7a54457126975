"""Client-supplied regular expressions, matched in linear time (RE2), never by a backtracking engine.

A JSON Schema's `pattern` / `patternProperties` come from the client and are matched against what the
model wrote. Python's `re` backtracks: `^(a+)+$` against 40 `a`s and a `!` takes ~2^40 steps, and `re`
holds the GIL while it runs, so neither the event loop nor a worker thread gets through it (0.2.0 stopped
answering `/health` for minutes). RE2 (the `google-re2` binding) matches in time linear in the text.

jsonschema calls `re.search(pattern, text)` from its keyword functions and helpers (`pattern`,
`patternProperties`, `additionalProperties`, `unevaluatedProperties`); `install()` points the `re` those
modules use at this module, whose `search` goes through RE2 and whose other names are the standard
`re`'s. A pattern RE2 cannot express (look-around, back-references, counted repetition over 1000) or
any pattern when `google-re2` is not installed is not enforced (it counts as a match) and logged once:
the client validates its own schema anyway; the gateway's check only drives a repair round.
"""

from __future__ import annotations

import logging
import re
import sys
from functools import lru_cache
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

try:
    import re2 as _re2  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - google-re2 ships wheels for the platforms we support
    _re2 = None

_warned: set[str] = set()


def _warn_once(pattern: str, why: str) -> None:
    if len(_warned) < 100 and pattern not in _warned:
        _warned.add(pattern)
        log.warning("schema pattern %r is not enforced: %s", pattern[:100], why)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    """The RE2 program for `pattern`, or None when RE2 cannot run it (then the pattern is not enforced)."""
    if _re2 is None:
        _warn_once(pattern, "google-re2 is not installed")
        return None
    options = _re2.Options()
    options.log_errors = False
    try:
        return _re2.compile(pattern, options)
    except _re2.error as exc:
        _warn_once(pattern, f"RE2 cannot run it ({exc})")
        return None


def search(pattern: Any, string: Any, flags: int = 0) -> bool:
    """True when `pattern` matches somewhere in `string` (jsonschema's only use of `re`)."""
    if not isinstance(pattern, str) or not isinstance(string, str) or flags:
        return re.search(pattern, string, flags) is not None  # not a client pattern: jsonschema's own
    program = _compiled(pattern)
    return True if program is None else program.search(string) is not None


def available() -> bool:
    """Whether patterns are enforced at all (google-re2 importable)."""
    return _re2 is not None


class _ReProxy(ModuleType):
    """Stands in for `re` inside jsonschema's modules: `search` is ours, everything else is `re`'s."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)


def install() -> None:
    """Make every regex jsonschema matches against an instance go through `search` (idempotent)."""
    proxy = _ReProxy("re")
    proxy.search = search  # type: ignore[attr-defined]
    for name in ("jsonschema._keywords", "jsonschema._utils", "jsonschema._legacy_keywords"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "re", None) is re:
            module.re = proxy  # type: ignore[attr-defined]
