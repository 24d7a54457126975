"""Tool-call markup in an answer that may not call tools, turned into readable text.

A request with no tools (a summary, a compaction, a title over a history full of calls) still shows the
model calls in its prompt, and the model sometimes answers in the same markup. Such an answer must never
reach the client as raw DSML: each call block becomes one readable line, `[Read: file_path=notes.txt]`,
in its place, and stray tags disappear. The same sieve as for tool turns finds the markup (any variant of
chat/tools/grammar.py), so nothing that looks like markup slips through, and plain text passes untouched.
"""

from __future__ import annotations

import json

from .parser import ParsedCall, Problem, ToolSet, dsml_params
from .sieve import Item, Sieve

_MAX_SHOWN = 300  # characters of a call's arguments kept in its readable line


class MarkupStripper(Sieve):
    """A sieve for a turn without tools: every call it finds comes out as text (see the module doc)."""

    def __init__(self) -> None:
        super().__init__(ToolSet(()), stop_after_block=False, json_form=False)

    def _accept(self, result: ParsedCall | Problem) -> None:
        self._out.append("\n" + readable_call(result))  # on its own line: the sieve holds the space before


def readable_call(call: ParsedCall | Problem) -> str:
    """One call as a line a person can read (its arguments shortened to 300 characters)."""
    if isinstance(call, ParsedCall):
        name, shown = call.name, call.arguments
    else:
        name = call.name or "tool"
        params, outside = dsml_params(call.raw)
        if params:
            shown = ", ".join(f"{p.name}={p.value.strip()}" for p in params)
        else:  # V3 (`function<｜tool▁sep｜>NAME ```json {…}````) or JSON: the arguments object
            start, end = outside.find("{"), outside.rfind("}")
            shown = _compact(outside[start:end + 1]) if 0 <= start < end else ""
    shown = " ".join(shown.split())
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 1] + "…"
    return f"[{name}: {shown}]" if shown else f"[{name}]"


def _compact(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        return text


def strip_markup(text: str) -> str:
    """The whole answer at once: exactly what the stripper yields for it as one piece."""
    sieve = MarkupStripper()
    items: list[Item] = sieve.feed(text) + sieve.finish()
    return "".join(item for item in items if isinstance(item, str))
