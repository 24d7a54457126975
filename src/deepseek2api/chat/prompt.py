"""Messages → the single web-chat prompt string (docs/protocol.md).

The web chat takes one `prompt` per turn, so a whole conversation is flattened into DeepSeek's own
chat-template markers. Because those markers are real tokens of DeepSeek's vocabulary, text that a
client controls must never contain them, or a user could forge an assistant turn (or a system turn,
a tool result, the end of the conversation …). `neutralize` is that guard.

Neutralisation (decided, and tested against the tokenizer in tests/chat/test_chat_prompt.py):

1. Every U+FF5C FULLWIDTH VERTICAL LINE becomes an ASCII "|". In DeepSeek's vocabulary that
   character only occurs inside control tokens (`<｜User｜>`, `<｜Assistant｜>`, `<｜end▁of▁sentence｜>`,
   `｜DSML｜` …), so after this step none of them can form — robustly, even if something downstream
   strips invisible characters. Cost: a CJK separator "｜" in prose reads as "|" (same meaning).
2. A U+200B ZERO WIDTH SPACE goes between "<" and the rest of anything shaped like control markup:
   `<|` (the ASCII look-alikes `<|User|>`, `<|EOT|>`, `<|DSML|…`, including those produced by
   step 1), `<think>`, `</think>`, `<dsml:` and `</dsml:` (these are tokens too). The text looks the
   same to a reader but is no longer markup to the tokenizer or the model.

Earlier assistant `reasoning_content` is accepted and dropped: the web chat shows the model its own
prior answers only, DeepSeek's chat template drops prior reasoning too, and it would cost tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .tools.prompt import (
    guard,
    reminder,
    render_calls,
    render_result,
    response_format_prompt,
    tools_prompt,
)
from .turn import Message, Turn

USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
END_OF_SENTENCE = "<｜end▁of▁sentence｜>"

_FULLWIDTH_BAR = "\uff5c"
_ZWSP = "\u200b"
_MARKUP = re.compile(r"<(?=\||/?think>|/?dsml:)")
# Neither part may contain its own opening delimiter, and both are bounded: every match attempt stops at
# the next "[" / "(", so a long line of "![" or "![a](" costs linear time, not quadratic (that froze the loop).
_IMAGE = re.compile(r"!\[([^\[\]\n]{0,1000})\]\(([^()\n]{0,4000})\)")

_SYSTEM_ROLES = frozenset({"system", "developer"})
_RESULT_ROLES = frozenset({"tool", "function"})  # with a tool_call_id: a result, rendered as one


_MARKUP_STARTS = ("<|", "<think>", "</think>", "<dsml:", "</dsml:")  # what `_MARKUP` matches, as literals


def neutralize(text: str) -> str:
    """Make client text unable to produce DeepSeek control tokens (see the module docstring).

    Plain `str.replace`s, the same as `_MARKUP.sub` (no two of the literals start alike after "<"),
    but linear and fast on a 10 MB prompt of markup."""
    if _FULLWIDTH_BAR in text:
        text = text.replace(_FULLWIDTH_BAR, "|")
    if "<" in text:
        for start in _MARKUP_STARTS:
            if start in text:
                text = text.replace(start, "<" + _ZWSP + start[1:])
    return text


def content_text(content: Any) -> str:
    """Flatten OpenAI message content: a string as is, text parts joined with "\\n", None → ""."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                kind, text = part.get("type"), part.get("text")
            else:  # a pydantic part model
                kind, text = getattr(part, "type", None), getattr(part, "text", None)
            if kind == "text" and isinstance(text, str):
                texts.append(text)
        return "\n".join(texts)
    return str(content)


def _clean(text: str) -> str:
    """Rewrite Markdown images to links (the web chat cannot fetch them), then neutralise.

    The rewrite only drops each image's "!". Done match by match (not one `re.sub` call), so a worker
    thread building a 10 MB prompt of `![a](b)` lets go of the GIL between matches: one `sub` call
    held it for ~2.6 s, and the event loop with it."""
    if "![" in text:
        pieces: list[str] = []
        last = 0
        for match in _IMAGE.finditer(text):
            pieces.append(text[last:match.start()])
            last = match.start() + 1
        pieces.append(text[last:])
        text = "".join(pieces)
    return neutralize(text)


def _blocks(messages: Iterable[Message]) -> list[tuple[str, str]]:
    """(role, text) blocks with consecutive same-role messages merged by a blank line."""
    blocks: list[tuple[str, list[str]]] = []
    for message in messages:
        role = "system" if message.role in _SYSTEM_ROLES else message.role
        text = content_text(message.content)
        if blocks and blocks[-1][0] == role:
            blocks[-1][1].append(text)
        else:
            blocks.append((role, [text]))
    return [(role, "\n\n".join(texts)) for role, texts in blocks]


def _tooled(turn: Turn) -> bool:
    """The turn declares tools, asks for JSON or carries tool history: render it the tool way."""
    if turn.tools or turn.response_format is not None:
        return True
    return any(m.tool_calls or (m.role in _RESULT_ROLES and m.tool_call_id) for m in turn.messages)


def _safe_blocks(turn: Turn) -> list[tuple[str, str]]:
    """Like `_blocks`, but the texts are final prompt text: client text cleaned and guarded, past calls
    and tool results rendered in the tool markup (trusted, not neutralised again: docs/tools.md)."""
    names = {call.id: call.name for m in turn.messages for call in m.tool_calls}
    blocks: list[tuple[str, list[str]]] = []
    for message in turn.messages:
        role = "system" if message.role in _SYSTEM_ROLES else message.role
        text = content_text(message.content)
        if role in _RESULT_ROLES and message.tool_call_id:
            # A result goes back as the next user turn, tagged with its call; the name comes from the call
            # (a result whose call is missing or out of order still goes in, under the name it gave).
            role = "user"
            name = names.get(message.tool_call_id) or message.name or "tool"
            safe = render_result(message.tool_call_id, name, text)
        else:
            safe = guard(_clean(text)) if text else ""
            if message.tool_calls:
                calls = render_calls(message.tool_calls, turn.tools)
                safe = f"{safe}\n\n{calls}" if safe else calls
        if blocks and blocks[-1][0] == role:
            blocks[-1][1].append(safe)
        else:
            blocks.append((role, [safe]))
    return [(role, "\n\n".join(t for t in texts if t)) for role, texts in blocks]


def _instructions(turn: Turn) -> tuple[str | None, str | None]:
    """(system-side text, reminder for the last user turn) the gateway adds; trusted prompt text."""
    parts: list[str] = []
    remind: str | None = None
    if turn.tools and turn.model.tool_prompt:
        catalog = tools_prompt(turn.tools, turn.tool_choice, parallel=turn.parallel_tool_calls)
        if catalog is not None:
            parts.append(catalog)
            remind = reminder(turn.tools, turn.tool_choice)
    fmt = response_format_prompt(turn.response_format)
    if fmt is not None:
        parts.append(fmt)
    return ("\n\n".join(parts) or None), remind


def _tool_prompt(turn: Turn) -> str:
    blocks = _safe_blocks(turn)
    system_extra, remind = _instructions(turn)
    if system_extra is not None:
        if blocks and blocks[0][0] == "system":  # the client's system text first, then ours
            first = blocks[0][1]
            blocks[0] = ("system", f"{first}\n\n{system_extra}" if first else system_extra)
        else:
            blocks.insert(0, ("system", system_extra))
    if remind is not None:
        for at in range(len(blocks) - 1, -1, -1):
            if blocks[at][0] == "user":
                role, text = blocks[at]
                blocks[at] = (role, f"{text}\n\n{remind}" if text else remind)
                break
    return _join(blocks, clean=False)


def _join(blocks: Sequence[tuple[str, str]], *, clean: bool) -> str:
    parts: list[str] = []
    for index, (role, text) in enumerate(blocks):
        if clean:
            text = _clean(text)
        if role == "assistant":
            parts.append(ASSISTANT + text + END_OF_SENTENCE)
        elif role in ("user", "system") and index > 0:
            parts.append(USER + text)
        else:
            parts.append(text)
    return "".join(parts)


OFF_LOOP_CHARS = 256 * 1024  # of message text, over which the prompt is built in a worker thread


def turn_chars(turn: Turn) -> int:
    """Characters of client text in the turn (a cheap measure of what building its prompt costs)."""
    return sum(len(content_text(m.content)) + len(m.reasoning_content or "")
               + sum(len(c.arguments) for c in m.tool_calls) for m in turn.messages)


async def build_prompt_async(turn: Turn) -> str:
    """`build_prompt`, in a worker thread for a large turn: its clean-up of a 10 MB prompt would otherwise
    hold the event loop for a second."""
    if turn_chars(turn) <= OFF_LOOP_CHARS:
        return build_prompt(turn)
    return await asyncio.to_thread(build_prompt, turn)


def build_prompt(turn: Turn | Sequence[Message]) -> str:
    """The web prompt for a turn (a pure function of it): the seed's flattening, no marker on the
    first block, no trailing assistant cue.

    assistant → `<｜Assistant｜>text<｜end▁of▁sentence｜>`; user/system/developer → `<｜User｜>text`;
    tool/function (and anything else) → bare text. A lone user message is just its text.

    A turn with tools, `response_format` or tool history also gets (docs/tools.md): the tool prompt
    and the JSON instruction after the client's system text (or as the first block), past calls
    re-rendered in the tool markup, each tool result as a user turn tagged with its call, and a
    reminder at the end of the last user turn. Plain turns take the path above, unchanged.
    """
    if isinstance(turn, Turn):
        if _tooled(turn):
            return _tool_prompt(turn)
        messages: Sequence[Message] = turn.messages
    else:
        messages = turn
    return _join(_blocks(messages), clean=True)


def build_followup(turn: Turn, start: int) -> str:
    """The prompt for `turn.messages[start:]` sent into an upstream session that already holds the
    messages before `start` (chat/continuation.py): the same rendering as `build_prompt` — results tagged
    with their calls, the tool reminder on the last user turn — but no catalog or JSON instruction (the
    session has them) and no marker on the first block (the web chat adds the user turn itself)."""
    if not _tooled(turn):
        return _join(_blocks(turn.messages[start:]), clean=True)
    blocks = _safe_blocks(turn)  # all of them: a result's call name comes from an earlier message
    kept = len(_safe_blocks(dataclasses.replace(turn, messages=turn.messages[:start])))
    blocks = blocks[kept:]
    _, remind = _instructions(turn)
    if remind is not None:
        for at in range(len(blocks) - 1, -1, -1):
            if blocks[at][0] == "user":
                role, text = blocks[at]
                blocks[at] = (role, f"{text}\n\n{remind}" if text else remind)
                break
    return _join(blocks, clean=False)
