"""Messages → the single web-chat prompt string (PROTOCOL.md §7.1).

The web chat takes one `prompt` per turn, so a whole conversation is flattened into DeepSeek's own
chat-template markers. Because those markers are real tokens of DeepSeek's vocabulary, text that a
client controls must never contain them, or a user could forge an assistant turn (or a system turn,
a tool result, the end of the conversation …). `neutralize` is that guard.

Neutralisation (decided, and tested against the tokenizer in tests/test_chat_prompt.py):

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

import re
from typing import Any, Iterable, Sequence

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


def neutralize(text: str) -> str:
    """Make client text unable to produce DeepSeek control tokens (see the module docstring)."""
    if _FULLWIDTH_BAR in text:
        text = text.replace(_FULLWIDTH_BAR, "|")
    if "<" in text:
        text = _MARKUP.sub("<" + _ZWSP, text)
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
    """Rewrite Markdown images to links (the web chat cannot fetch them), then neutralise."""
    if "![" in text:
        text = _IMAGE.sub(r"[\1](\2)", text)
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


def build_prompt(turn: Turn | Sequence[Message]) -> str:
    """The web prompt for a turn (a pure function of it): the seed's flattening, no marker on the
    first block, no trailing assistant cue.

    assistant → `<｜Assistant｜>text<｜end▁of▁sentence｜>`; user/system/developer → `<｜User｜>text`;
    tool/function (and anything else) → bare text. A lone user message is just its text.
    """
    messages = turn.messages if isinstance(turn, Turn) else turn
    parts: list[str] = []
    for index, (role, text) in enumerate(_blocks(messages)):
        text = _clean(text)
        if role == "assistant":
            parts.append(ASSISTANT + text + END_OF_SENTENCE)
        elif role in ("user", "system") and index > 0:
            parts.append(USER + text)
        else:
            parts.append(text)
    return "".join(parts)
