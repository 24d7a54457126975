"""What DeepSeek keeps per session: a turn sent with `parent_message_id` is answered with the whole chain
behind it, not only its own prompt.

The web chat stores every prompt and answer of a session; a follow-up turn carries only the new text,
and the model reads it after the history the session holds. The simulator answers from the same view:
the chain's prompts and answers flattened with DeepSeek's markers (`<｜User｜>` before every prompt but the
first, `<｜Assistant｜>answer<｜end▁of▁sentence｜>` after each), then the new prompt — so a tool catalog
sent in the first turn still applies to a continued one, and an echo quotes the new message.
"""

from __future__ import annotations

from .state import SimMessage, SimSession

USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
END_OF_SENTENCE = "<｜end▁of▁sentence｜>"


def chain(session: SimSession, parent: int | None) -> list[SimMessage]:
    """The messages from the session's first to `parent`, oldest first."""
    out: list[SimMessage] = []
    seen: set[int] = set()
    while parent is not None and parent not in seen:
        seen.add(parent)
        message = session.messages.get(parent)
        if message is None:
            break
        out.append(message)
        parent = message.parent_id
    out.reverse()
    return out


def _answer(message: SimMessage) -> str:
    turn = message.turn
    reply = getattr(turn, "reply", None)
    return str(getattr(reply, "content", "")) if reply is not None else ""


def held_prompt(session: SimSession, parent: int | None, prompt: str) -> str:
    """The conversation the model reads for a turn sent after `parent` (just `prompt` on a new session)."""
    history = chain(session, parent)
    if not history:
        return prompt
    parts: list[str] = []
    for message in history:
        if message.role == "USER":
            parts.append((USER if parts else "") + message.prompt)
        else:
            parts.append(ASSISTANT + _answer(message) + END_OF_SENTENCE)
    return "".join(parts) + USER + prompt
