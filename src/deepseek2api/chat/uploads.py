"""The file step of a turn: what to upload and what to send inline, then the uploads on one account.

Two halves, because they have different lifetimes. `TurnUploads.stage` runs once per turn, before
any account is leased (it needs none, and tokenizing a long prompt should not hold one): it splits
the flattened prompt into system / history / live parts, asks chat/history_file.py whether the
earlier transcript must go into a file (over `upstream.inline_prompt_limit`), decides the
`model_type` (vision when images come along) and refuses what no account could serve (too many
files, images for a text-only model). `TurnUploads.upload` runs on the leased account inside the
runner, before the completion: uploads belong to one account, so a failover uploads again on the
next one. Files are never deleted one by one upstream: they go with the chat session that
referenced them, which the runner deletes (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..deepseek.files import PollPolicy
from ..settings import Settings
from .attachments import (
    DEFAULT_MAX_BYTES,
    Attachment,
    AttachmentError,
    AttachmentKind,
    AttachmentProblem,
    check_count,
    needs_vision,
    prepare_attachments,
)
from .history_file import (
    DEFAULT_INLINE_PROMPT_LIMIT,
    PromptParts,
    PromptPlan,
    plan_prompt,
)
from .prompt import ASSISTANT, END_OF_SENTENCE, USER
from .turn import Turn

if TYPE_CHECKING:
    from ..deepseek.client import DeepSeekClient

log = logging.getLogger(__name__)

VISION = "vision"
_SYSTEM_ROLES = frozenset({"system", "developer"})
_FILES_ONLY = "(The message is the attached file.)"
_TOOLS_HEADING = "# Tools\nYou can call tools."  # how chat/tools/prompt.py's catalog starts


@dataclass(frozen=True, slots=True)
class StagedTurn:
    """What one turn sends, whichever account runs it."""

    prompt: str  # the completion's `prompt`
    uploads: tuple[Attachment, ...] = ()  # history files first, then the client's attachments
    model_type: str = "default"
    attached_text: str = ""  # the text of the history and text files
    thinking: bool = False  # uploads say it too (`x-thinking-enabled`), as the web client does

    @property
    def counted_text(self) -> str:
        """What `usage.prompt_tokens` counts: the prompt actually sent plus the attached text."""
        return self.prompt + self.attached_text

    def with_prompt(self, prompt: str) -> StagedTurn:
        """The same files with another prompt (the runner's repair round extends the prompt)."""
        return dataclasses.replace(self, prompt=prompt)


@dataclass(frozen=True, slots=True)
class UploadOptions:
    inline_prompt_limit: int = DEFAULT_INLINE_PROMPT_LIMIT
    history_as_file: bool = True
    auto_vision: bool = True
    max_files: int = 10
    max_bytes: int = DEFAULT_MAX_BYTES
    parse_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadOptions:
        files = settings.files
        return cls(inline_prompt_limit=settings.upstream.inline_prompt_limit, history_as_file=files.history_as_file,
                   auto_vision=files.auto_vision, max_files=files.max_files, max_bytes=files.max_bytes,
                   parse_timeout=files.parse_timeout)


def split_prompt(turn: Turn, prompt: str) -> PromptParts:
    """The flattened prompt cut at its markers: `system` (the leading system block: the client's system
    text and the instructions the gateway adds there), `tools` (the tool catalog inside that block,
    when there is one), `history` (up to the end of the last assistant message) and `live` (the rest:
    the latest user message or tool results). The markers only come from the gateway (client text is
    neutralised, chat/prompt.py), so the cuts are exact, and `system + tools + history + live == prompt`
    always."""
    end = prompt.rfind(END_OF_SENTENCE)
    live_start = end + len(END_OF_SENTENCE) if end >= 0 else 0
    system_end = 0
    leading_system = bool(turn.messages) and turn.messages[0].role in _SYSTEM_ROLES
    if leading_system or turn.tools or turn.response_format is not None:  # the gateway's block comes first
        firsts = [i for i in (prompt.find(USER), prompt.find(ASSISTANT)) if i >= 0]
        system_end = min(firsts) if firsts else len(prompt)
    if end < 0:  # no assistant message: nothing earlier to attach
        live_start = system_end
    system_end = min(system_end, live_start)
    system, tools = prompt[:system_end], ""
    catalog = system.rfind(_TOOLS_HEADING)
    if catalog >= 0:
        system, tools = system[:catalog], system[catalog:]
    return PromptParts(system=system, tools=tools, history=prompt[system_end:live_start], live=prompt[live_start:])


class TurnUploads:
    """Plans a turn's files (once) and uploads them on an account (once per account tried)."""

    # A prompt up to this many UTF-8 bytes is planned on the event loop: plan_prompt returns without
    # counting anything when the bytes are under the limit. Longer ones are tokenized in a thread.
    def __init__(self, options: UploadOptions | None = None) -> None:
        self.options = options or UploadOptions()

    async def stage(self, turn: Turn, prompt: str) -> StagedTurn:
        """Decide what goes inline and what is uploaded. Raises `AttachmentError` (400/413) for what
        no account could serve, and `PromptTooLong` when the live turn alone is over the inline limit
        (the surface's "too long" error; sending it anyway would leave its uploads orphaned upstream
        when DeepSeek refuses the prompt, since files only go with a session that used them)."""
        options = self.options
        attachments = tuple(turn.attachments)
        model_type = turn.model.model_type
        if needs_vision(attachments) and model_type != VISION:
            if not options.auto_vision:
                part = next(a.filename for a in attachments if a.kind is AttachmentKind.IMAGE)
                raise AttachmentError(AttachmentProblem.UNSUPPORTED, "messages",
                                      f"model '{turn.model_name}' does not take images ({part}); use a vision "
                                      "model such as deepseek-vision (files.auto_vision is off)")
            model_type = VISION
        plan = PromptPlan(prompt)
        if options.history_as_file and len(prompt) * 4 > options.inline_prompt_limit:  # ≤ 4 bytes a character
            parts = split_prompt(turn, prompt)
            if len(prompt.encode("utf-8")) <= options.inline_prompt_limit:
                plan = plan_prompt(parts, limit=options.inline_prompt_limit)
            else:
                plan = await asyncio.to_thread(functools.partial(plan_prompt, parts, limit=options.inline_prompt_limit))
        history = tuple(f.attachment(max_bytes=options.max_bytes) for f in plan.files)
        uploads = history + attachments
        check_count(uploads, options.max_files)
        if not uploads:
            return StagedTurn(prompt, (), model_type, thinking=turn.model.thinking)
        if not plan.prompt.strip():  # an image or a file sent without a word: the web chat wants some prompt
            plan = PromptPlan(_FILES_ONLY, plan.files)
        attached = plan.attached_text + "".join(
            a.data.decode("utf-8") for a in attachments if a.kind is AttachmentKind.TEXT)
        if plan.files:
            log.info("request %s: %d history file(s) attached, prompt %d → %d characters", turn.request_id,
                     len(plan.files), len(prompt), len(plan.prompt))
        return StagedTurn(plan.prompt, uploads, model_type, attached, thinking=turn.model.thinking)

    async def upload(self, client: DeepSeekClient, staged: StagedTurn, token: str, proxy: str | None) -> list[str]:
        """Upload the staged files on this account and wait until parsed → `ref_file_ids`. Raises
        `UpstreamFailure` (deepseek/files.py says which kinds another account could fix)."""
        if not staged.uploads:
            return []
        policy = PollPolicy(timeout=self.options.parse_timeout)
        return await prepare_attachments(client, token, proxy, staged.uploads, model_type=staged.model_type,
                                         thinking=staged.thinking, policy=policy)


__all__ = ["StagedTurn", "TurnUploads", "UploadOptions", "split_prompt"]
