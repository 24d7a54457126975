"""Checks on what a client declared (tools, tool_choice) — the same rules for every surface.

A surface parses its wire shapes into `ToolSpec`s and a `ToolChoice`, then asks `check_declared`;
a problem comes back as a value with a kind and the index of the tool, and the surface turns it into
its own 400 with its own `param` path (`tools[2].function.name`, `tools[2].name` …).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .schemas import schema_problem
from .spec import ToolChoice, ToolChoiceMode, ToolKind, ToolSpec

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class DeclaredProblem(enum.StrEnum):
    NO_NAME = "no_name"                    # param: the tool's name
    BAD_NAME = "bad_name"                  # characters outside [A-Za-z0-9_.:-] or longer than 128
    DUPLICATE_NAME = "duplicate_name"
    SCHEMA_NOT_OBJECT = "schema_not_object"  # param: the tool's parameters / input_schema
    INVALID_SCHEMA = "invalid_schema"
    UNKNOWN_CHOICE = "unknown_choice"      # param: tool_choice (index is None)
    CHOICE_WITHOUT_TOOLS = "choice_without_tools"


@dataclass(frozen=True, slots=True)
class DeclaredError:
    kind: DeclaredProblem
    index: int | None  # which tool (None: tool_choice)
    message: str

    @property
    def about_schema(self) -> bool:
        return self.kind in (DeclaredProblem.SCHEMA_NOT_OBJECT, DeclaredProblem.INVALID_SCHEMA)

    @property
    def about_choice(self) -> bool:
        return self.index is None


def check_declared(tools: Sequence[ToolSpec], choice: ToolChoice) -> DeclaredError | None:
    """The first problem with the declared tools and tool_choice, or None."""
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        if not tool.name.strip():
            return DeclaredError(DeclaredProblem.NO_NAME, index, "a tool needs a non-empty name")
        if not _NAME.match(tool.name):
            return DeclaredError(DeclaredProblem.BAD_NAME, index,
                                 f"tool name {tool.name[:80]!r} must match [A-Za-z0-9_.:-]{{1,128}}")
        if tool.name in seen:
            return DeclaredError(DeclaredProblem.DUPLICATE_NAME, index, f"tool name {tool.name!r} is declared twice")
        seen.add(tool.name)
        if tool.kind is ToolKind.CUSTOM:
            continue
        schema = dict(tool.parameters) if isinstance(tool.parameters, Mapping) else None
        kind = schema.get("type", "object") if schema is not None else None
        if schema is None or (kind != "object" and not (isinstance(kind, list) and "object" in kind)):
            return DeclaredError(DeclaredProblem.SCHEMA_NOT_OBJECT, index,
                                 f"the parameters of {tool.name!r} must be a JSON Schema of type object")
        problem = schema_problem(schema)
        if problem is not None:
            return DeclaredError(DeclaredProblem.INVALID_SCHEMA, index,
                                 f"the parameters of {tool.name!r} are not a valid JSON Schema: {problem}"[:300])
    if choice.mode is ToolChoiceMode.NAMED:
        if not tools:
            return DeclaredError(DeclaredProblem.CHOICE_WITHOUT_TOOLS, None,
                                 "tool_choice names a tool but no tools are declared")
        if choice.name not in seen:
            return DeclaredError(DeclaredProblem.UNKNOWN_CHOICE, None,
                                 f"tool_choice names {str(choice.name)[:80]!r}, which is not a declared tool")
    elif choice.mode is ToolChoiceMode.REQUIRED and not tools:
        return DeclaredError(DeclaredProblem.CHOICE_WITHOUT_TOOLS, None,
                             "tool_choice requires a tool but no tools are declared")
    return None
