"""The streaming sieve: answer text flows out at once, tool-call markup never does (docs/tools.md).

Feed the upstream text pieces in order. Text is emitted immediately except (a) a bounded tail that
could still grow into a marker (from a `<`, at most `grammar.MAX_TAG` characters) and (b) trailing
whitespace, held until the next visible character so the text before a call carries no dangling
blank lines. Inside a code fence nothing is markup.

Once a marker is certain the sieve captures silently. Each `invoke` is parsed the moment it closes
and, when valid, emitted as one call. A block is over when, after at least one invoke, something
other than whitespace, another invoke or another wrapper arrives: for the answer the rest is dropped
(an invented tool result) and `stopped` tells the caller to stop the upstream reply. For reasoning
(`stop_after_block=False`) the text goes on and the calls are kept for the end.

A whole-message JSON `{"tool_calls": …}` (optionally fenced) is recognised at the start of the text.
At the end of the stream an unfinished maybe-marker is flushed as text, and an unclosed block is
parsed leniently. Cost per piece depends only on the piece and the bounded tail, never on how long
the answer already is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .events import Event, OutToolCall, SievedReasoning, SievedText, new_call_id
from .grammar import CDATA_CLOSE, CDATA_OPEN, PARTIAL, Tag, TagKind, scan_tag
from .parser import (
    ParsedCall,
    Problem,
    ToolSet,
    parse_dsml_invoke,
    parse_json_calls,
    parse_v3_invoke,
)
from .spec import ToolSpec

_TEXT_SPECIAL = re.compile(r"[<\n]")
_LINE_KEEP = 16
_WS_KEEP = 64
_JSON_KEY = '"tool_calls"'

_TEXT, _JSON_START, _JSON, _INVOKE, _DONE = range(5)

Item = str | ParsedCall


class Sieve:
    """One channel (answer or reasoning). `feed`/`finish` return text strings and `ParsedCall`s in order."""

    def __init__(self, tools: ToolSet, *, parallel: bool = True, stop_after_block: bool = True,
                 json_form: bool = True) -> None:
        self.tools = tools
        self.parallel = parallel
        self.stop_after_block = stop_after_block
        self.calls: list[ParsedCall] = []
        self.problems: list[Problem] = []
        self.stopped = False  # a block ended and the rest is being dropped: stop the upstream reply
        self.finished = False
        self._mode = _TEXT
        self._out: list[Item] = []
        self._pending = ""      # TEXT: held maybe-marker starting at "<"
        self._ws = ""           # held trailing whitespace
        self._started = not json_form  # a non-whitespace character was seen (whole-message JSON no longer possible)
        self._start_buf = ""
        self._fence: tuple[str, int] | None = None
        self._line = ""
        self._in_block = False  # at least one invoke of the current block has closed
        self._inv_tag: Tag | None = None
        self._inv_parts: list[str] = []
        self._inv_tail = ""
        self._inv_cdata = False
        self._json_parts: list[str] = []
        self._json_depth = 0
        self._json_str = False
        self._json_esc = False

    @property
    def capturing(self) -> bool:
        """Markup is being captured (nothing visible comes out for a while): time for keep-alives."""
        return self._mode in (_INVOKE, _JSON) or self._in_block

    def feed(self, piece: str) -> list[Item]:
        if self.finished or self._mode == _DONE or not piece:
            return []
        if (self._mode == _TEXT and self._started and not self._pending and not self._in_block
                and "<" not in piece and "\n" not in piece):
            # the common case: plain text in the middle of a line
            if len(self._line) < _LINE_KEEP:
                self._line += piece[:_LINE_KEEP - len(self._line)]
            if not self._ws and not piece[-1].isspace():
                return [piece]
            out: list[Item] = []
            self._out = out
            self._plain(piece)
            return out
        out = []
        self._out = out
        self._run(piece, False)
        return out

    def finish(self) -> list[Item]:
        """End of stream: flush held text, parse an unclosed block leniently."""
        if self.finished:
            return []
        out: list[Item] = []
        self._out = out
        if self._mode != _DONE:
            self._run("", True)
        if self._mode == _INVOKE:
            self._complete_invoke("".join(self._inv_parts) + self._inv_tail)
            self._inv_tail = ""
        elif self._mode == _JSON:
            self._complete_json("".join(self._json_parts))
        if self._mode != _DONE and not self._in_block and self._ws:
            out.append(self._ws)
        self._ws = ""
        self.finished = True
        return out

    # ------------------------------------------------------------ dispatch

    def _run(self, text: str, final: bool) -> None:
        rest: str | None = text
        while rest is not None:
            mode = self._mode
            if mode == _TEXT:
                rest = self._text(rest, final)
            elif mode == _INVOKE:
                rest = self._invoke(rest, final)
            elif mode == _JSON_START:
                rest = self._json_start(rest, final)
            elif mode == _JSON:
                rest = self._json(rest)
            else:
                return

    # ------------------------------------------------------------ text

    def _text(self, s: str, final: bool) -> str | None:
        if self._pending:
            s = self._pending + s
            self._pending = ""
        if not self._started:
            k = 0
            n = len(s)
            while k < n and s[k].isspace():
                k += 1
            if k == n:
                if final:
                    self._started = True
                else:
                    self._start_buf += s
                    return None
            elif s[k] in "{`~":
                self._mode = _JSON_START
                return s
            else:
                self._started = True
            if self._start_buf:
                s = self._start_buf + s
                self._start_buf = ""
        i, n = 0, len(s)
        while i < n:
            if self._fence is None:
                match = _TEXT_SPECIAL.search(s, i)
                j = match.start() if match else -1
            else:
                j = s.find("\n", i)
            if j < 0:
                self._track(s, i, n)
                self._plain(s[i:])
                break
            if j > i:
                self._track(s, i, j)
                self._plain(s[i:j])
                if self._mode == _DONE:
                    return None
            if s[j] == "\n":
                self._newline()
                self._plain("\n")
                i = j + 1
                continue
            tag = scan_tag(s, j, final)
            if tag is PARTIAL:
                self._pending = s[j:]
                return None
            if not isinstance(tag, Tag):
                self._track(s, j, j + 1)
                self._plain("<")
                i = j + 1
            else:
                i = tag.end
                if not self._line:
                    self._line = "<"  # a tag at the line start: this line is no fence
                self._on_tag(tag)
                if self._mode != _TEXT:
                    return s[i:] if self._mode != _DONE else None
            if self._mode == _DONE:
                return None
        return None

    def _track(self, s: str, i: int, j: int) -> None:
        if len(self._line) < _LINE_KEEP:
            self._line += s[i:min(j, i + _LINE_KEEP - len(self._line))]

    def _newline(self) -> None:
        line = self._line
        self._line = ""
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3 or not stripped:
            return
        ch = stripped[0]
        if ch not in "`~":
            return
        run = len(stripped) - len(stripped.lstrip(ch))
        if self._fence is None:
            if run >= 3 and not (ch == "`" and "`" in stripped[run:]):
                self._fence = (ch, run)
        elif ch == self._fence[0] and run >= self._fence[1] and not stripped[run:].strip() \
                and len(line) < _LINE_KEEP:
            self._fence = None

    def _plain(self, text: str) -> None:
        if self._in_block:
            if text.isspace():
                return
            self._end_block()
            if self._mode == _DONE:
                return
        if text.isspace():
            ws = self._ws + text
            if len(ws) > _WS_KEEP:
                self._out.append(ws[:-_WS_KEEP])
                ws = ws[-_WS_KEEP:]
            self._ws = ws
            return
        k = len(text.rstrip())
        if self._ws:
            self._out.append(self._ws + text[:k])
        else:
            self._out.append(text[:k] if k < len(text) else text)
        self._ws = text[k:]

    def _on_tag(self, tag: Tag) -> None:
        kind = tag.kind
        if kind is TagKind.INVOKE_OPEN:
            self._ws = ""
            self._mode = _INVOKE
            self._inv_tag = tag
            self._inv_parts = []
            self._inv_tail = ""
            self._inv_cdata = False
        elif kind is TagKind.OTHER and self._in_block:
            self._end_block()
        # every other tag (wrappers, stray closers, parameters) is markup and simply disappears

    def _end_block(self) -> None:
        self._ws = "" if self.stop_after_block else "\n"  # reasoning goes on: keep its lines apart
        self._in_block = False
        if self.stop_after_block:
            self._mode = _DONE
            self.stopped = True
            self._pending = ""

    # ------------------------------------------------------------ invoke capture

    def _invoke(self, s: str, final: bool) -> str | None:
        buf = self._inv_tail + s if self._inv_tail else s
        self._inv_tail = ""
        parts = self._inv_parts
        i = 0
        while True:
            if self._inv_cdata:
                end = buf.find(CDATA_CLOSE, i)
                if end < 0:
                    keep = max(i, len(buf) - 2)
                    parts.append(buf[:keep])
                    self._inv_tail = buf[keep:]
                    return None
                i = end + len(CDATA_CLOSE)
                self._inv_cdata = False
                continue
            lt = buf.find("<", i)
            if lt < 0:
                parts.append(buf)
                return None
            if buf.startswith(CDATA_OPEN, lt):
                self._inv_cdata = True
                i = lt + len(CDATA_OPEN)
                continue
            if not final and len(buf) - lt < len(CDATA_OPEN) and CDATA_OPEN.startswith(buf[lt:]):
                parts.append(buf[:lt])
                self._inv_tail = buf[lt:]
                return None
            tag = scan_tag(buf, lt, final)
            if tag is PARTIAL:
                parts.append(buf[:lt])
                self._inv_tail = buf[lt:]
                return None
            if not isinstance(tag, Tag) or tag.kind not in (
                    TagKind.INVOKE_CLOSE, TagKind.WRAP_CLOSE, TagKind.INVOKE_OPEN):
                i = tag.end if isinstance(tag, Tag) else lt + 1
                continue
            body = "".join(parts) + buf[:lt] if parts else buf[:lt]
            self._complete_invoke(body)
            if self._mode == _DONE:
                return None
            return buf[lt:] if tag.kind is TagKind.INVOKE_OPEN else buf[tag.end:]

    def _complete_invoke(self, body: str) -> None:
        tag = self._inv_tag
        self._inv_parts = []
        self._mode = _TEXT
        self._in_block = True
        if tag is None:
            return
        if tag.v3:
            result = parse_v3_invoke(self.tools, body)
        else:
            result = parse_dsml_invoke(self.tools, tag.attrs, body)
        self._accept(result)
        if self.calls and not self.parallel:
            self._end_block()

    def _accept(self, result: ParsedCall | Problem) -> None:
        if isinstance(result, ParsedCall):
            if self.parallel or not self.calls:
                self.calls.append(result)
                self._out.append(result)
        else:
            self.problems.append(result)

    # ------------------------------------------------------------ whole-message JSON

    def _json_start(self, s: str, final: bool) -> str | None:
        buf = self._start_buf + s
        self._start_buf = ""
        state, brace = _json_prefix(buf)
        if state is None and not final:
            self._start_buf = buf
            return None
        self._started = True
        if state:
            self._mode = _JSON
            self._json_parts = []
            self._json_depth = 0
            return buf[brace:]
        self._mode = _TEXT
        return buf

    def _json(self, s: str) -> str | None:
        depth, in_str, esc = self._json_depth, self._json_str, self._json_esc
        for k, ch in enumerate(s):
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    self._json_parts.append(s[:k + 1])
                    self._complete_json("".join(self._json_parts))
                    self._end_block_json()
                    return None
        self._json_depth, self._json_str, self._json_esc = depth, in_str, esc
        self._json_parts.append(s)
        return None

    def _complete_json(self, text: str) -> None:
        self._json_parts = []
        for result in parse_json_calls(self.tools, text):
            self._accept(result)

    def _end_block_json(self) -> None:
        self._in_block = True
        self._mode = _TEXT
        self._end_block()


def _json_prefix(buf: str) -> tuple[bool | None, int]:
    """Does `buf` start a whole-message `{"tool_calls":` (optionally fenced)? None = cannot tell yet."""
    n = len(buf)
    i = _skip_space(buf, 0)
    if i >= n:
        return None, 0
    if buf[i] in "`~":
        ch = buf[i]
        j = i
        while j < n and buf[j] == ch:
            j += 1
        if j >= n:
            return (None, 0) if j - i < 8 else (False, 0)
        if j - i < 3:
            return False, 0
        nl = buf.find("\n", j)
        info = (buf[j:] if nl < 0 else buf[j:nl]).strip().lower()
        if nl < 0:
            return (None, 0) if "json".startswith(info) else (False, 0)
        if info not in ("", "json"):
            return False, 0
        i = _skip_space(buf, nl + 1)
        if i >= n:
            return None, 0
    if buf[i] != "{":
        return False, 0
    brace = i
    i = _skip_space(buf, i + 1)
    got = buf[i:i + len(_JSON_KEY)]
    if len(got) < len(_JSON_KEY):
        return (None, 0) if _JSON_KEY.startswith(got) else (False, 0)
    if got != _JSON_KEY:
        return False, 0
    i = _skip_space(buf, i + len(_JSON_KEY))
    if i >= n:
        return None, 0
    return (True, brace) if buf[i] == ":" else (False, 0)


def _skip_space(buf: str, i: int) -> int:
    n = len(buf)
    limit = i + 64
    while i < n and i < limit and buf[i].isspace():
        i += 1
    return i



class ToolStream:
    """The answer and reasoning sieves of one turn, producing the surfaces' events.

    `content()`/`reasoning()` take upstream pieces, `finish()` ends the turn. A call written only in the
    reasoning is returned at the end when the answer has neither calls nor visible text.
    """

    def __init__(self, tools: ToolSet | Iterable[ToolSpec], *, parallel: bool = True) -> None:
        toolset = tools if isinstance(tools, ToolSet) else ToolSet(tools)
        self.tools = toolset
        self.answer = Sieve(toolset, parallel=parallel)
        self.thoughts = Sieve(toolset, parallel=parallel, stop_after_block=False, json_form=False)
        self.calls: list[OutToolCall] = []
        self.text_sent = False  # visible answer text went out (no silent retry possible any more)
        self._parallel = parallel
        self._from_reasoning = False

    @property
    def stopped(self) -> bool:
        """The answer's call block is complete: stop the upstream reply (what follows is dropped)."""
        return self.answer.stopped

    @property
    def capturing(self) -> bool:
        return self.answer.capturing

    @property
    def problems(self) -> list[Problem]:
        return self.answer.problems + (self.thoughts.problems if self._from_reasoning else [])

    def content(self, piece: str) -> list[Event]:
        return self._events(self.answer.feed(piece))

    def reasoning(self, piece: str) -> list[Event]:
        items = self.thoughts.feed(piece)
        return [] if not items else [SievedReasoning(item) for item in items if isinstance(item, str) and item]

    def finish(self) -> list[Event]:
        thoughts = self.thoughts.finish()
        events: list[Event] = [SievedReasoning(item) for item in thoughts if isinstance(item, str) and item]
        events += self._events(self.answer.finish())
        if not self.calls and not self.text_sent and self.thoughts.calls:
            self._from_reasoning = True
            chosen = self.thoughts.calls if self._parallel else self.thoughts.calls[:1]
            events += self._events(list(chosen))
        return events

    def _events(self, items: list[Item]) -> list[Event]:
        events: list[Event] = []
        for item in items:
            if isinstance(item, str):
                if item:
                    if not self.text_sent and not item.isspace():
                        self.text_sent = True
                    events.append(SievedText(item))
            else:
                call = OutToolCall(len(self.calls), new_call_id(), item.name, item.arguments)
                self.calls.append(call)
                events.append(call)
        return events
