"""Tools and `response_format` between the assembler and the surfaces, for one upstream answer.

A turn that declares tools (with `tool_choice` other than none) or asks for JSON gets one
`AnswerShaper` per upstream answer. Answer and reasoning pieces go through the tool sieve
(chat/tools/sieve.py), so markup never reaches the client and each call goes out as one
`OutToolCall` the moment it is complete. At the end the repair policy decides (chat/tools/repair.py):
the calls, plain text, ONE retry upstream with a correction (only while nothing reached the client),
or `AnswerRejected`. When the answer may still be retried at its end — `response_format` (checked by
chat/tools/structured.py, then sent as one piece) or a `tool_choice` that forces a call — its text
and calls are held back until the decision; reasoning always streams.

Plain turns never get a shaper: their hot path stays the assembler's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing

from .assemble import OutContent, OutEvent, OutFinish, OutReasoning
from .errors import AnswerRejected, RejectKind
from .tools import events as tool_events
from .tools.events import OutToolCall
from .tools.repair import Outcome, decide
from .tools.sieve import ToolStream
from .tools.spec import ResponseFormat, ToolChoiceMode
from .tools.strip import MarkupStripper, strip_markup
from .tools.structured import StructuredError, check_structured
from .tools.structured import correction_text as structured_correction
from .turn import Turn


def needs_shaping(turn: Turn) -> bool:
    """Tools offered to the model, or a JSON answer demanded."""
    return _tools_offered(turn) or _json_format(turn) is not None


def needs_stripping(turn: Turn) -> bool:
    """A turn without a shaper whose answer may still hold call markup: tools declared but not offered
    (`tool_choice: none`), or a history with calls and tool results in it (summaries, compaction, titles)."""
    if needs_shaping(turn):
        return False
    return bool(turn.tools) or any(m.tool_calls or m.role == "tool" for m in turn.messages)


async def without_markup(outs: AsyncGenerator[OutEvent, None]) -> AsyncGenerator[OutEvent, None]:
    """The events of a plain answer with call markup turned into readable text (chat/tools/strip.py);
    `OutFinish` carries the stripped texts. Closing it closes `outs`."""
    content, reasoning = MarkupStripper(), MarkupStripper()
    texts: list[str] = []
    thoughts: list[str] = []
    streamed = False  # pieces came before the finish (not a buffered answer)
    async with aclosing(outs) as events:
        async for out in events:
            if isinstance(out, OutContent):
                streamed = True
                text = "".join(i for i in content.feed(out.text) if isinstance(i, str))
                texts.append(text)
                if text:
                    yield OutContent(text)
            elif isinstance(out, OutReasoning):
                streamed = True
                text = "".join(i for i in reasoning.feed(out.text) if isinstance(i, str))
                thoughts.append(text)
                if text:
                    yield OutReasoning(text)
            elif isinstance(out, OutFinish):
                if not streamed:
                    yield dataclasses.replace(out, content_text=strip_markup(out.content_text),
                                              reasoning_text=strip_markup(out.reasoning_text))
                    continue
                thought = "".join(i for i in reasoning.finish() if isinstance(i, str))
                text = "".join(i for i in content.finish() if isinstance(i, str))
                if thought:
                    thoughts.append(thought)
                    yield OutReasoning(thought)
                if text:
                    texts.append(text)
                    yield OutContent(text)
                yield dataclasses.replace(out, content_text="".join(texts), reasoning_text="".join(thoughts))
            else:
                yield out


def _tools_offered(turn: Turn) -> bool:
    return bool(turn.tools) and turn.tool_choice.mode is not ToolChoiceMode.NONE


def _json_format(turn: Turn) -> ResponseFormat | None:
    """The `response_format` the answer must meet (None for none or plain text)."""
    fmt = turn.response_format
    return fmt if fmt is not None and fmt.kind != "text" else None


class AnswerShaper:
    """Feed it the assembler's events of one answer (`push`); emit what it returns.

    `buffered`: nothing is emitted before the end (a non-stream response reads `OutFinish`).
    `retried`: the one repair round was already used for this turn.
    After `OutFinish` went in, either the patched `OutFinish` came out, or `retry` holds the
    correction for the repair round (nothing more is emitted for this answer), or `AnswerRejected`
    was raised.
    """

    def __init__(self, turn: Turn, *, buffered: bool, retried: bool) -> None:
        offered = _tools_offered(turn)
        self.tools = ToolStream(turn.tools, parallel=turn.parallel_tool_calls) if offered else None
        self.fmt = _json_format(turn)
        self.choice = turn.tool_choice
        self.buffered = buffered
        self.retried = retried
        self.shown = False  # content, reasoning or a call reached the client
        self.retry: str | None = None  # the correction for the repair round, once decided
        self.answer = ""  # the visible answer of an answer that is retried (for the repair prompt)
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[OutToolCall] = []
        # A forced call or a JSON answer may still be retried at the end: hold text and calls till then.
        self.hold = self.fmt is not None or (offered and turn.tool_choice.forces_call)
        self._held: list[OutEvent] = []

    @property
    def stopped(self) -> bool:
        """The call block is complete: stop the upstream reply (the rest would be an invented result)."""
        return self.tools is not None and self.tools.stopped

    def push(self, out: OutEvent) -> list[OutEvent]:
        tools = self.tools
        if isinstance(out, OutContent):
            if tools is None:
                self._content.append(out.text)  # held: response_format checks the whole answer
                return []
            events = tools.content(out.text)
            if len(events) == 1 and not self.hold and not self.buffered:  # the hot path: plain text
                event = events[0]
                if type(event) is tool_events.SievedText:
                    self._content.append(event.text)
                    self.shown = True
                    return [out] if event.text == out.text else [OutContent(event.text)]
            return self._visible(events)
        if isinstance(out, OutReasoning):
            if tools is None:
                return self._visible((tool_events.SievedReasoning(out.text),))
            return self._visible(tools.reasoning(out.text))
        if isinstance(out, OutFinish):
            return self._finish(out)
        return [out]

    def _record(self, event: tool_events.Event) -> OutContent | OutReasoning | OutToolCall:
        if isinstance(event, tool_events.SievedText):
            self._content.append(event.text)
            return OutContent(event.text)
        if isinstance(event, tool_events.SievedReasoning):
            self._reasoning.append(event.text)
            return OutReasoning(event.text)
        self._calls.append(event)
        return event

    def _visible(self, events: Iterable[tool_events.Event]) -> list[OutEvent]:
        """Record the sieve's events; the ones to emit now, as the runner's events."""
        out: list[OutEvent] = [self._record(event) for event in events]
        if self.buffered or not out:
            return []
        if self.hold:  # answer text and calls wait for the decision at the end; reasoning streams
            self._held += [event for event in out if not isinstance(event, OutReasoning)]
            out = [event for event in out if isinstance(event, OutReasoning)]
        if out:
            self.shown = True
        return out

    def _finish(self, finish: OutFinish) -> list[OutEvent]:
        shown = self.shown  # decisions depend on what the client saw before the end
        late: list[OutEvent] = [self._record(e) for e in self.tools.finish()] if self.tools is not None else []
        if self.tools is not None:
            decision = decide(call_names=[c.name for c in self._calls], problems=self.tools.problems,
                              choice=self.choice, retried=self.retried, client_saw_output=shown)
            if decision.outcome is Outcome.RETRY:
                self._ask_again(decision.correction or "")
                return []
            if decision.outcome is Outcome.ERROR:
                raise AnswerRejected(RejectKind.TOOL_CALL_REQUIRED, decision.message, emitted=shown)
        content = "".join(self._content)
        tail: list[OutEvent] = [*self._held, *late]
        if self.fmt is not None:
            if not self._calls:
                result = check_structured(content, self.fmt)
                if not result.ok and result.error is not StructuredError.BAD_SCHEMA:
                    if not self.retried and not shown:
                        self._ask_again(structured_correction(result, self.fmt))
                        return []
                    raise AnswerRejected(RejectKind.INVALID_STRUCTURED_OUTPUT,
                                         f"the answer did not satisfy response_format: {result.detail}",
                                         emitted=shown)
                content = result.text
            # The checked JSON goes out as one piece, after any reasoning and before any call.
            thoughts: list[OutEvent] = [e for e in tail if isinstance(e, OutReasoning)]
            answer: list[OutEvent] = [OutContent(content)] if content else []
            tail = thoughts + answer + [e for e in tail if isinstance(e, OutToolCall)]
        shaped = dataclasses.replace(
            finish, content_text=content, reasoning_text="".join(self._reasoning),
            tool_calls=tuple(self._calls),
            finish_reason="tool_calls" if self._calls else finish.finish_reason)
        if self.buffered:
            return [shaped]
        tail = _joined(tail) if self.hold else tail
        tail.append(shaped)
        return tail

    def _ask_again(self, correction: str) -> None:
        self.retry = correction
        self.answer = "".join(self._content)


def _joined(events: list[OutEvent]) -> list[OutEvent]:
    """Held text pieces that follow each other go out as one piece."""
    out: list[OutEvent] = []
    for event in events:
        if isinstance(event, OutContent) and out and isinstance(out[-1], OutContent):
            out[-1] = OutContent(out[-1].text + event.text)
        else:
            out.append(event)
    return out
