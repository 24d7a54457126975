"""Conversations that continue upstream (`upstream.continue_sessions`): send only the new part of a turn
into the DeepSeek session that already holds the rest.

Agents send the whole history on every request; re-sending it costs a new session, its PoW, often a
history upload with its parse wait, and the account reads everything again. After a turn that finished
normally the gateway keeps the web session and records, under a hash of exactly what it sent and what it
answered (model switches, tool catalog, response format, every message and the answer; call ids are left
out: surfaces rename them), which account and session hold it. A later request whose history up to its
last assistant message hashes the same — nothing edited, same system prompt and tools — continues that
session with `parent_message_id` of the last answer and only the messages after it as the prompt
(`prompt.build_followup`). A client id is never trusted: only the hash matches.

Everything else falls back to today's full re-send, transparently: no match, the holding account busy or
cooling down (the lease came back with another account), an upstream error on the continued turn before
any output, attachments in the request, or a session past `continue_max_turns` / `continue_max_age` /
`continue_max_chars`. A session is taken out of the book while a turn continues it (two requests never
share one) and deleted when it is replaced, falls back, expires or is evicted — on the next turn that
holds a lease on its account (the only time the gateway has that account's token in hand).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .prompt import build_followup
from .tools.spec import ToolCallRecord
from .turn import Message, Turn
from .uploads import StagedTurn

_MAX_PENDING_DELETES = 256  # per account: beyond that the oldest are forgotten (the web chat keeps them)


@dataclass(frozen=True, slots=True)
class ContinueOptions:
    enabled: bool = False
    max_turns: int = 50  # continued turns per session, then a fresh re-send starts a new one
    max_age: float = 1800.0  # seconds since the session's first turn
    max_chars: int = 2_000_000  # prompt characters the session received in all
    max_sessions: int = 1024  # sessions held at once (least recently used deleted first)


@dataclass(frozen=True, slots=True)
class HeldSession:
    """A web session the gateway kept after a turn, and what it holds."""

    account_id: str
    session_id: str
    response_id: int  # the last answer's message id: the next turn's `parent_message_id`
    created: float
    turns: int
    chars: int


@dataclass(frozen=True, slots=True)
class Continuation:
    """The plan for one request: continue `held` with `staged` (the new part), if its account is leased."""

    held: HeldSession
    staged: StagedTurn


@dataclass(frozen=True, slots=True)
class ContinuedTurn(StagedTurn):
    """A staged follow-up whose usage still counts the whole conversation (`usage.prompt_tokens` is what
    the model reads, and agents size their context from it)."""

    full_text: str = ""

    @property
    def counted_text(self) -> str:
        return self.full_text


def _call(call: ToolCallRecord) -> list[str]:
    try:
        arguments = json.dumps(json.loads(call.arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        arguments = call.arguments
    return [call.name, arguments]


def _message(message: Message) -> list[Any]:
    role = "assistant" if message.role == "assistant" else message.role
    return [role, message.content.strip(), [_call(c) for c in message.tool_calls],
            bool(message.tool_call_id)]


def conversation_key(turn: Turn, messages: Sequence[Message]) -> str:
    """The hash of what a session holds: the turn's switches, tools, format and these messages."""
    spec = turn.model
    head = [spec.model_type, spec.thinking, spec.search, spec.tool_prompt,
            [[t.name, t.description, t.parameters, str(t.kind)] for t in turn.tools],
            [str(turn.tool_choice.mode), turn.tool_choice.name], turn.parallel_tool_calls,
            None if turn.response_format is None else [turn.response_format.kind, turn.response_format.schema]]
    raw = json.dumps([head, [_message(m) for m in messages]], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def answered(turn: Turn, content: str, calls: Sequence[ToolCallRecord]) -> str:
    """The key of the conversation once the gateway's answer is part of it."""
    return conversation_key(turn, (*turn.messages, Message("assistant", content, tool_calls=tuple(calls))))


def last_assistant(messages: Sequence[Message]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return index
    return None


class SessionBook:
    """The held sessions by conversation key, and the sessions waiting to be deleted per account."""

    def __init__(self, options: ContinueOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.clock = clock
        self._held: collections.OrderedDict[str, HeldSession] = collections.OrderedDict()
        self._doomed: dict[str, collections.deque[str]] = {}
        self.continued = 0  # turns that went out as a follow-up (for the bench and the log)

    def plan(self, turn: Turn, staged: StagedTurn) -> Continuation | None:
        """A follow-up for `turn` when a held session has exactly its history (see the module doc)."""
        if not self.options.enabled or turn.attachments:
            return None
        at = last_assistant(turn.messages)
        if at is None or at == len(turn.messages) - 1:
            return None
        held = self._held.pop(conversation_key(turn, turn.messages[:at + 1]), None)
        if held is None:
            return None
        limits = self.options
        if (held.turns >= limits.max_turns or self.clock() - held.created > limits.max_age
                or held.chars >= limits.max_chars):
            self.forget(held)
            return None
        followup = build_followup(turn, at + 1)
        staged_followup = ContinuedTurn(prompt=followup, model_type=staged.model_type, thinking=staged.thinking,
                                        full_text=staged.counted_text)
        return Continuation(held, staged_followup)

    def keep(self, key: str, held: HeldSession) -> None:
        """Hold a session after a turn that finished normally on it."""
        self._held[key] = held
        self._held.move_to_end(key)
        while len(self._held) > self.options.max_sessions:
            _, oldest = self._held.popitem(last=False)
            self.forget(oldest)

    def forget(self, held: HeldSession) -> None:
        """The session is no longer continued: delete it on its account's next turn."""
        doomed = self._doomed.setdefault(held.account_id, collections.deque(maxlen=_MAX_PENDING_DELETES))
        doomed.append(held.session_id)

    def doomed(self, account_id: str) -> list[str]:
        """The sessions of this account to delete now (the caller holds its lease); expired ones included."""
        now = self.clock()
        for key, held in list(self._held.items()):
            if held.account_id == account_id and now - held.created > self.options.max_age:
                del self._held[key]
                self.forget(held)
        queue = self._doomed.pop(account_id, None)
        return list(queue) if queue else []

    def held_count(self) -> int:
        return len(self._held)


def next_held(previous: HeldSession | None, account_id: str, session_id: str, response_id: int,
              sent_chars: int, now: float) -> HeldSession:
    """The record of a session after one more turn on it (a new session when `previous` is None)."""
    if previous is None:
        return HeldSession(account_id, session_id, response_id, now, 1, sent_chars)
    return dataclasses.replace(previous, response_id=response_id, turns=previous.turns + 1,
                               chars=previous.chars + sent_chars)
