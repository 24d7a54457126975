"""Upstream events → what the client should see: citations, stop sequences, finish reason.

The decoder hands over raw deltas; this turns them into surface-neutral output events that every
renderer (OpenAI chunks, OpenAI JSON, later Anthropic/Responses) can print as they are.

Two things need text that has not fully arrived yet, so a little content is held back:
- citation markers `[citation:N]` / `[reference:N]` arrive split across deltas (`"[c"`, `"itation"`,
  `":1]."`, docs/protocol.md): a trailing "[" that may still become a marker waits for the rest;
- stop sequences may straddle deltas: the longest tail that is still a prefix of a stop string waits.
Citations only examine the tail, and stop sequences go through `stops.StopMatcher`, which never
re-reads held text, so the work per delta is proportional to the delta, not to the answer or the stop.

`max_tokens` is counted by the runner (chat/token_cap.py), which ends the turn here with `end_at`.
Reasoning is never merged into content, and stop sequences apply to content only (as in DeepSeek's
API, reasoning is not the "completion").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..deepseek.errors import ErrorKind
from ..deepseek.events import (
    ContentDelta,
    Finished,
    ReasoningDelta,
    SearchResult,
    SearchResults,
    UpstreamError,
    UpstreamEvent,
    Usage,
)
from .stops import HeldText, StopMatcher
from .tools.events import OutToolCall
from .usage import TurnUsage


@dataclass(frozen=True, slots=True)
class OutReasoning:
    """Reasoning text to show now (becomes `reasoning_content`)."""

    text: str


@dataclass(frozen=True, slots=True)
class OutContent:
    """Answer text to show now, citations already rendered."""

    text: str


@dataclass(frozen=True, slots=True)
class OutFinish:
    """The end of the turn: always the last output event, emitted exactly once.

    `citations` is the latest full search-result list; the full texts are for usage counting and
    non-streaming bodies (for a tool turn: the visible text, markup removed). `stop_sequence` is the client's
    stop string that ended the turn, if any.
    """

    finish_reason: str  # "stop" | "length" | "content_filter" | "tool_calls"
    upstream_status: str | None
    citations: tuple[SearchResult, ...]
    reasoning_text: str
    content_text: str
    stop_sequence: str | None = None
    usage: TurnUsage | None = None  # filled in by the runner (chat/usage.py), the same for every surface
    tool_calls: tuple[OutToolCall, ...] = ()  # the calls of a tool turn (chat/shaping.py), in order


OutEvent = OutReasoning | OutContent | OutToolCall | OutFinish

_FINISH_REASONS = {
    "FINISHED": "stop",
    "CONTENT_FILTER": "content_filter",
    "INCOMPLETE": "length",  # only when the runner gave up continuing
    "INSUFFICIENT_SYSTEM_RESOURCE": "length",  # outside OpenAI's enum (docs/clients.md)
}

_MARKER = re.compile(r"\[(citation|reference):(\d{1,6})\]")
_MARKER_HEADS = ("[citation:", "[reference:")
_MAX_DIGITS = 6
_LONGEST_PARTIAL = max(len(h) for h in _MARKER_HEADS) + _MAX_DIGITS  # "[reference:123456" (no "]")


class _KeptText:
    """The turn's text so far, for OutFinish. Kept as chunks of 64 pieces, not one str per token: a
    2-character str costs ~60 bytes, so a per-token list held 25x the text's size per stream."""

    __slots__ = ("chunks", "loose")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.loose: list[str] = []

    def add(self, text: str) -> None:
        loose = self.loose
        loose.append(text)
        if len(loose) >= 64:
            self.chunks.append("".join(loose))
            loose.clear()

    def text(self) -> str:
        return "".join(self.chunks) + "".join(self.loose)

    def keep_first(self, chars: int) -> None:
        """Forget everything after the first `chars` characters."""
        text = self.text()
        if len(text) > chars:
            self.chunks, self.loose = [text[:chars]], []


def _may_become_marker(tail: str) -> bool:
    """`tail` starts with "[" and runs to the end of the text: could more text complete a marker?"""
    for head in _MARKER_HEADS:
        if len(tail) <= len(head):
            if head.startswith(tail):
                return True
        elif tail.startswith(head):
            digits = tail[len(head) :]
            if len(digits) <= _MAX_DIGITS and digits.isascii() and digits.isdigit():
                return True
    return False


def _markdown_url(url: str) -> str:
    """Keep a URL from ending the Markdown link early."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def finish_reason_for(status: str | None) -> str:
    """Map an upstream terminal status to an OpenAI finish reason (unknown → "stop")."""
    return _FINISH_REASONS.get((status or "").upper(), "stop")


class TurnAssembler:
    """Feed it every upstream event of one turn (all rounds); print what it returns."""

    def __init__(self, stop: Sequence[str] = (), citations: Literal["link", "strip"] = "link") -> None:
        self._stops = tuple(dict.fromkeys(s for s in stop if s))
        self._matchers = tuple(StopMatcher(s) for s in self._stops)
        self._link = citations != "strip"
        self._results: tuple[SearchResult, ...] = ()
        self._by_index: dict[int, SearchResult] = {}
        self._reference_zero_based = False
        self._cite_pending = ""  # a possible partial citation marker
        self._stop_pending = HeldText()  # a possible partial stop sequence (citations already rendered)
        self._content = _KeptText()
        self._reasoning = _KeptText()
        self._finish: OutFinish | None = None
        self._capped = False
        self.upstream_tokens: int | None = None  # last `accumulated_token_usage`, for reference

    # -- public API ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once `OutFinish` has been emitted; later events are ignored."""
        return self._finish is not None

    @property
    def stopped(self) -> bool:
        """True when a stop sequence ended the turn (the caller may stop the upstream stream)."""
        return self._finish is not None and self._finish.stop_sequence is not None

    @property
    def ended_early(self) -> bool:
        """True when the turn ended before upstream finished (a stop sequence, or `end_at` for
        max_tokens): the caller stops reading and stops the reply upstream."""
        return self.stopped or self._capped

    def end_at(self, content_chars: int, reasoning_chars: int) -> OutFinish:
        """End the turn at the token cap: keep only the text let out so far (the counts say how much
        of each), drop what is held back, and finish with "length"."""
        self._content.keep_first(content_chars)
        self._reasoning.keep_first(reasoning_chars)
        self._capped = True
        return self._end("length", None)

    @property
    def content_text(self) -> str:
        return self._content.text()

    @property
    def reasoning_text(self) -> str:
        return self._reasoning.text()

    @property
    def citations(self) -> tuple[SearchResult, ...]:
        return self._results

    def push(self, event: UpstreamEvent) -> list[OutEvent]:
        """Output events caused by one upstream event (often one, sometimes none)."""
        if self._finish is not None:
            return []
        if isinstance(event, ContentDelta):
            return self._on_content(event.text) if event.text else []
        if isinstance(event, ReasoningDelta):
            if not event.text:
                return []
            self._reasoning.add(event.text)
            return [OutReasoning(event.text)]
        if isinstance(event, SearchResults):
            self._set_results(event.results)
            return []
        if isinstance(event, Finished):
            out = self._flush()
            if self._finish is None:
                out.append(self._end(finish_reason_for(event.status), event.status))
            return out
        if isinstance(event, Usage):
            self.upstream_tokens = event.accumulated_tokens
            return []
        if isinstance(event, UpstreamError) and event.kind is ErrorKind.CONTENT_FILTER:
            out = self._flush()
            if self._finish is None:
                out.append(self._end("content_filter", "CONTENT_FILTER"))
            return out
        # Ready, Title, other UpstreamErrors: the runner decides (retry, continue, error event).
        return []

    def finish(self) -> list[OutEvent]:
        """End of the turn: flush held-back text and emit `OutFinish` if upstream never finished."""
        if self._finish is not None:
            return []
        out = self._flush()
        if self._finish is None:
            out.append(self._end("stop", None))
        return out

    # -- internals ----------------------------------------------------------------------------

    def _end(self, reason: str, status: str | None, stop_sequence: str | None = None) -> OutFinish:
        self._cite_pending = ""
        self._stop_pending.clear()
        self._finish = OutFinish(
            finish_reason=reason,
            upstream_status=status,
            citations=self._results,
            reasoning_text=self.reasoning_text,
            content_text=self.content_text,
            stop_sequence=stop_sequence,
        )
        return self._finish

    def _set_results(self, results: tuple[SearchResult, ...]) -> None:
        self._results = tuple(results)
        by_index: dict[int, SearchResult] = {}
        for position, result in enumerate(self._results, start=1):
            index = result.cite_index if result.cite_index is not None else position
            by_index.setdefault(index, result)
        self._by_index = by_index

    def _on_content(self, text: str) -> list[OutEvent]:
        rendered = self._render_citations(text)
        return self._through_stop(rendered) if rendered else []

    def _flush(self) -> list[OutEvent]:
        """Release held-back text as it is: an unfinished marker is just text."""
        out: list[OutEvent] = []
        raw, self._cite_pending = self._cite_pending, ""
        if raw:
            out.extend(self._through_stop(raw))
        if self._finish is None and self._stop_pending.size:
            rest = self._stop_pending.take(self._stop_pending.size)
            self._content.add(rest)
            out.append(OutContent(rest))
        return out

    def _render_citations(self, text: str) -> str:
        s = self._cite_pending + text if self._cite_pending else text
        self._cite_pending = ""
        if "[" not in s:
            return s
        out: list[str] = []
        emitted = 0  # s[:emitted] is handled
        search = 0
        while True:
            i = s.find("[", search)
            if i < 0:
                break
            match = _MARKER.match(s, i)
            if match is not None:
                out.append(s[emitted:i])
                out.append(self._citation(match.group(1), int(match.group(2))))
                emitted = search = match.end()
                continue
            if len(s) - i <= _LONGEST_PARTIAL and _may_become_marker(s[i:]):
                self._cite_pending = s[i:]
                out.append(s[emitted:i])
                return "".join(out)
            search = i + 1
        out.append(s[emitted:])
        return "".join(out)

    def _citation(self, kind: str, number: int) -> str:
        if kind == "reference":
            # S2g saw 0-based `[reference:N]`; once a 0 shows up, treat the rest as 0-based too.
            if number == 0:
                self._reference_zero_based = True
            if self._reference_zero_based:
                number += 1
        if not self._link:
            return ""
        result = self._by_index.get(number)
        if result is None or not result.url:
            return ""
        return f"[{number}]({_markdown_url(result.url)})"

    def _through_stop(self, text: str) -> list[OutEvent]:
        if not self._stops:
            self._content.add(text)
            return [OutContent(text)]
        held = self._stop_pending
        hit_at, hit = -1, None  # earliest start, counted from the start of the held text
        for matcher in self._matchers:
            end = matcher.scan(text)
            if end is not None:
                at = held.size + end - len(matcher.stop)
                if hit is None or at < hit_at:
                    hit_at, hit = at, matcher.stop
        out: list[OutEvent] = []
        if hit is None and not held.size:  # the usual case: nothing held before this delta
            hold = max(matcher.state for matcher in self._matchers)
            ready = text[: len(text) - hold] if hold else text
            held.append(text[len(text) - hold :] if hold else "")
            if ready:
                self._content.add(ready)
                out.append(OutContent(ready))
            return out
        held.append(text)
        if hit is not None:
            before = held.take(hit_at)
            if before:
                self._content.add(before)
                out.append(OutContent(before))
            out.append(self._end("stop", None, hit))
            return out
        # Keep the longest partial match (never longer than what is held); release the rest.
        ready = held.take(held.size - max(matcher.state for matcher in self._matchers))
        if ready:
            self._content.add(ready)
            out.append(OutContent(ready))
        return out
