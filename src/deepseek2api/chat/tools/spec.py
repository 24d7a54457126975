"""Surface-neutral tool vocabulary: what a client declared, what it forced, what was called before.

Each API surface (OpenAI chat, Anthropic Messages, Responses) parses its own wire shapes into these
values; the prompt builder, parser, sieve and renderers only ever see these.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


class ToolKind(enum.StrEnum):
    FUNCTION = "function"  # arguments are a JSON object valid against `parameters`
    CUSTOM = "custom"      # freeform text input (Responses `custom` tools such as apply_patch)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One declared tool. `name` is unique within a turn (namespaced tools are flattened into it)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    kind: ToolKind = ToolKind.FUNCTION
    namespace: str | None = None  # Responses `namespace` tool this came from (restored on the way out)
    original_name: str | None = None  # the name inside its namespace, when flattened


class ToolChoiceMode(enum.StrEnum):
    NONE = "none"          # tools are not offered to the model at all
    AUTO = "auto"          # the model may call tools or answer in text
    REQUIRED = "required"  # the model must call at least one tool (Anthropic "any")
    NAMED = "named"        # the model must call `ToolChoice.name`


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None  # only with NAMED

    @property
    def forces_call(self) -> bool:
        return self.mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.NAMED)


AUTO = ToolChoice()


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A call the assistant made earlier in the conversation (history), or one it makes now."""

    id: str
    name: str
    arguments: str  # JSON text for function tools; raw text for custom tools


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: `json_object` (any JSON object) or `json_schema` (valid against `schema`)."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool = False
