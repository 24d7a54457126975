"""History as a file: when a turn's prompt is too long to send inline, attach the bulk as text files.

The web chat refuses prompts over its input limit (`input_exceeds_limit`) and follows a long
flattened transcript worse than an attached one. So, over `upstream.inline_prompt_limit` tokens,
the earlier transcript goes into `conversation_history.txt` (the tool catalog into
`tool_catalog.txt` when it is large, and as a last resort the system prompt into
`instructions.txt`), and the prompt keeps the live turn plus one line that points at the files.
The live turn itself never moves: if it alone is over the limit, `PromptTooLong` (the surface's
"too long" error).

The planner is pure: it takes the flattened parts (which concatenate to the inline prompt) and a
token counter, and returns what to send. The real tokenizer is slow on long text (hundreds of
milliseconds for 200k characters), so a caller with long prompts runs `plan_prompt` in a worker
thread, and the planner counts as little as it can: nothing when the UTF-8 size is under the limit (a
token is at least one byte), not the transcript when the prompt is far over it, and the system prompt
and tool catalog (the same every turn of an agent) through a small cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from .attachments import Attachment, from_text
from .prompt import ASSISTANT, END_OF_SENTENCE, USER
from .usage import count_tokens

DEFAULT_INLINE_PROMPT_LIMIT = 24_000
"""Tokens. Conservative on purpose (settings.upstream.inline_prompt_limit): the web chat's real limit is
not published, and a long inline transcript is followed worse than an attached one."""

HISTORY_FILE = "conversation_history.txt"
TOOLS_FILE = "tool_catalog.txt"
INSTRUCTIONS_FILE = "instructions.txt"

_HISTORY_HEADER = ("Earlier turns of this conversation, oldest first. The conversation continues with the "
                   "message that came with this file.\n")
_TOOLS_HEADER = "The tools available in this conversation and how to call them.\n"
_INSTRUCTIONS_HEADER = "Instructions for this conversation (the system prompt).\n"
_PARTS = ("system", "tools", "history", "live")
# Over this many UTF-8 bytes per token of the limit a prompt is over it whatever the tokenizer says
# (prose and code average 3–4 bytes per token); a wrong guess only attaches what could have been inline.
_MAX_BYTES_PER_TOKEN = 6
_CACHED_MAX_CHARS = 131_072  # longer texts are counted but not kept: 32 of them could pin hundreds of MB
_count_small = functools.lru_cache(maxsize=32)(count_tokens)
_LABELS = ((USER, "\n\n### User\n"), (ASSISTANT, "\n\n### Assistant\n"), (END_OF_SENTENCE, ""))


@dataclass(frozen=True, slots=True)
class PromptParts:
    """The flattened prompt in four pieces; `system + tools + history + live` is the inline prompt."""

    system: str = ""
    tools: str = ""
    history: str = ""
    live: str = ""

    @property
    def inline(self) -> str:
        return self.system + self.tools + self.history + self.live


@dataclass(frozen=True, slots=True)
class TextFile:
    """A text file the plan attaches."""

    name: str
    text: str

    def attachment(self, *, max_bytes: int) -> Attachment:
        """As an upload (raises `AttachmentError` TOO_LARGE when over `max_bytes`)."""
        return from_text(self.text, part=self.name, filename=self.name, max_bytes=max_bytes)


@dataclass(frozen=True, slots=True)
class PromptPlan:
    """What to send: `prompt` inline, `files` uploaded first and passed as `ref_file_ids`."""

    prompt: str
    files: tuple[TextFile, ...] = ()

    @property
    def inline(self) -> bool:
        return not self.files

    @property
    def attached_text(self) -> str:
        """All file text, for usage counting (prompt tokens = prompt + attached text)."""
        return "".join(f.text for f in self.files)


class PromptTooLong(ValueError):
    """Even with everything else attached, the live turn is over the limit."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"the prompt needs {tokens} tokens inline; the limit is {limit}")
        self.tokens = tokens
        self.limit = limit


def transcript_text(flattened: str) -> str:
    """Chat-template markers → readable headings: a file is text to read, not turns to continue."""
    for marker, label in _LABELS:
        flattened = flattened.replace(marker, label)
    return flattened.strip("\n") + "\n"


def _note(names: list[str]) -> str:
    listed = " and ".join(names)
    noun = "file" if len(names) == 1 else "files"
    return (f"[Context attached as the {noun} {listed}: read {'it' if len(names) == 1 else 'them'} first, then "
            "answer the latest message below.]\n\n")


def _cached_count(text: str) -> int:
    """`count_tokens` through the cache, for texts short enough to keep (a system prompt, a tool catalog)."""
    return _count_small(text) if len(text) <= _CACHED_MAX_CHARS else count_tokens(text)


def plan_prompt(parts: PromptParts, *, limit: int = DEFAULT_INLINE_PROMPT_LIMIT,
                count: Callable[[str], int] | None = None, allow_files: bool = True) -> PromptPlan:
    """Decide what goes inline and what is attached (see the module doc).

    Order of moves: the earlier transcript first (and with it the tool catalog when the catalog alone
    takes over a quarter of the limit), then the tool catalog, then the system prompt. `count` defaults
    to DeepSeek's tokenizer (chat/usage.py) with a small cache: an agent resends the same system prompt
    and tool catalog every turn. Only what decides the plan is counted — a transcript that is attached
    anyway is not (counting 200k characters takes the tokenizer over half a second). Raises `PromptTooLong`.
    """
    inline = parts.inline
    inline_bytes = len(inline.encode("utf-8"))
    if inline_bytes <= limit:  # a token is at least one byte
        return PromptPlan(inline)
    counter = count if count is not None else _cached_count
    sizes: dict[str, int] = {}

    def size(name: str) -> int:
        if name not in sizes:
            sizes[name] = counter(getattr(parts, name))
        return sizes[name]

    certainly_over = inline_bytes > limit * _MAX_BYTES_PER_TOKEN
    if not certainly_over:
        total = sum(size(name) for name in _PARTS)
        if total <= limit:
            return PromptPlan(inline)
        if not allow_files:
            raise PromptTooLong(total, limit)
    elif not allow_files:
        raise PromptTooLong(inline_bytes // _MAX_BYTES_PER_TOKEN, limit)
    moved: list[str] = []
    if parts.history:
        moved.append("history")
        if parts.tools and size("tools") > limit // 4:
            moved.append("tools")
    candidates = [name for name in ("history", "tools", "system") if getattr(parts, name)]
    while True:
        plan = _build(parts, moved)
        note_tokens = counter(_note([f.name for f in plan.files])) if plan.files else 0
        needed = sum(size(name) for name in _PARTS if name not in moved) + note_tokens
        if needed <= limit:
            return plan
        rest = [name for name in candidates if name not in moved]
        if not rest:
            raise PromptTooLong(needed, limit)
        moved.append(rest[0])


def _build(parts: PromptParts, moved: list[str]) -> PromptPlan:
    files: list[TextFile] = []
    if "system" in moved:
        files.append(TextFile(INSTRUCTIONS_FILE, _INSTRUCTIONS_HEADER + "\n" + transcript_text(parts.system)))
    if "tools" in moved:
        files.append(TextFile(TOOLS_FILE, _TOOLS_HEADER + "\n" + parts.tools.strip("\n") + "\n"))
    if "history" in moved:
        files.append(TextFile(HISTORY_FILE, _HISTORY_HEADER + "\n" + transcript_text(parts.history)))
    if not files:
        return PromptPlan(parts.inline)
    kept = "".join(getattr(parts, name) for name in ("system", "tools") if name not in moved)
    live = parts.live
    if not kept and live.startswith(USER):  # no block before it: the live turn needs no marker
        live = live[len(USER):]
    prompt = kept + ("\n\n" if kept else "") + _note([f.name for f in files]) + live
    return PromptPlan(prompt, tuple(files))


__all__ = [
    "DEFAULT_INLINE_PROMPT_LIMIT",
    "HISTORY_FILE",
    "INSTRUCTIONS_FILE",
    "TOOLS_FILE",
    "PromptParts",
    "PromptPlan",
    "PromptTooLong",
    "TextFile",
    "plan_prompt",
    "transcript_text",
]
