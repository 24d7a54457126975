"""What to do when the answer has no usable call: the repair policy (docs/tools.md).

1. Deterministic repair happens while parsing (`jsonfix`: fences, stray text, raw newlines, bad escapes,
   trailing commas, missing closers; `parser`: separator noise, missing wrappers and closers, typing
   by the schema). A call that still fails comes back as a `Problem`.
2. Then at most ONE upstream retry with a short correction — only while nothing has reached the client.
3. Then plain text when no call was required, or a clear error when `tool_choice` demanded a call.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .jsonfix import loads_lenient, repair_json_text, strip_fence
from .parser import Problem, ProblemKind
from .prompt import OPEN_BLOCK, guard
from .spec import ToolChoice, ToolChoiceMode

__all__ = ["Decision", "Outcome", "ToolErrorKind", "correction_text", "decide", "loads_lenient",
           "repair_json_text", "strip_fence"]


class Outcome(enum.StrEnum):
    CALLS = "calls"  # return the calls (finish_reason tool_calls / stop_reason tool_use)
    TEXT = "text"    # return the answer as plain text
    RETRY = "retry"  # ask upstream once more with `Decision.correction` appended
    ERROR = "error"  # fail the request with `Decision.error`


class ToolErrorKind(enum.StrEnum):
    CALL_REQUIRED = "tool_call_required"  # tool_choice required/named, and no (matching) call came

    @property
    def http_status(self) -> int:
        """A client-side 4xx: the request was valid, the model did not honour its tool_choice."""
        return 422


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    correction: str | None = None   # with RETRY: the short text to append as a new user turn
    error: ToolErrorKind | None = None
    message: str = ""               # with ERROR: a human-readable message for the error body


def _honours(choice: ToolChoice, call_names: Sequence[str]) -> bool:
    if choice.mode is ToolChoiceMode.NAMED and choice.name:
        return choice.name in call_names
    return bool(call_names)


def correction_text(problems: Sequence[Problem], choice: ToolChoice) -> str:
    """The short correction for the single retry: what was wrong and the format to use."""
    lines: list[str] = []
    for problem in problems[:3]:
        if problem.kind is ProblemKind.UNDECLARED:
            lines.append(f'There is no tool named "{guard(problem.name)}".')
        elif problem.kind is ProblemKind.NO_NAME:
            lines.append("Your invoke had no tool name.")
        else:
            lines.append(f'Your call to "{guard(problem.name)}" was invalid: {guard(problem.detail)}.')
    if choice.mode is ToolChoiceMode.NAMED and choice.name:
        lines.append(f'You must call the tool "{guard(choice.name)}" now.')
    elif choice.mode is ToolChoiceMode.REQUIRED:
        lines.append("You must call a tool now.")
    lines.append(f"Answer with only a {OPEN_BLOCK} block in the format given above, using only the listed "
                 "tools and every required parameter.")
    return " ".join(lines)


def decide(*, call_names: Sequence[str], problems: Sequence[Problem], choice: ToolChoice, retried: bool,
           client_saw_output: bool) -> Decision:
    """The next step after an answer ended (see the module docstring).

    `call_names`: names of the valid calls returned; `problems`: rejected attempts; `retried`: the one
    retry was already used; `client_saw_output`: any text, reasoning or call already reached the client.
    """
    if _honours(choice, call_names):
        return Decision(Outcome.CALLS)
    if call_names and not choice.forces_call:
        return Decision(Outcome.CALLS)
    wanted = bool(problems) or choice.forces_call
    if wanted and not retried and not client_saw_output:
        return Decision(Outcome.RETRY, correction=correction_text(problems, choice))
    if choice.forces_call:
        what = f'the tool "{choice.name}"' if choice.mode is ToolChoiceMode.NAMED else "a tool"
        detail = f" ({problems[0].detail})" if problems else ""
        return Decision(Outcome.ERROR, error=ToolErrorKind.CALL_REQUIRED,
                        message=f"tool_choice required the model to call {what}, but it did not{detail}")
    return Decision(Outcome.TEXT)
