"""The surface-neutral turn and the model registry.

Every API surface (OpenAI chat, Anthropic Messages, Responses) parses its own wire format and hands
the rest of the gateway one `Turn` (docs/architecture.md). Model names map to the web chat's three switches
(`model_type`, DeepThink, web search), so the runner never needs to know what the client typed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .attachments import Attachment
from .tools.spec import AUTO, ResponseFormat, ToolCallRecord, ToolChoice, ToolSpec


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model id and the web-chat switches it stands for."""

    id: str
    model_type: str = "default"  # "default" (Instant) | "expert" | "vision" — docs/protocol.md
    thinking: bool = False
    search: bool = False
    aliases: tuple[str, ...] = ()
    tool_prompt: bool = True  # inject the tool catalog and format rules when tools are declared


def _spec(id: str, model_type: str, thinking: bool, search: bool, *aliases: str) -> ModelSpec:
    return ModelSpec(id=id, model_type=model_type, thinking=thinking, search=search, aliases=aliases)


# The official API's V4 names (2026) map to the web chat's modes: flash = default (Instant), pro = expert
# (falls back to default where an account's settings disable expert, chat/modes.py). With a V4 name a
# `reasoning_effort` of low/medium/high/max turns thinking on, as it means on the official API.
BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    # The 2025 names stay first: Cline, Roo and LiteLLM presets still use them (docs/clients.md).
    _spec("deepseek-chat", "default", False, False, "deepseek-v3", "deepseek-v4-flash", "deepseek-flash"),
    _spec("deepseek-reasoner", "default", True, False, "deepseek-r1"),
    _spec("deepseek-chat-search", "default", False, True, "deepseek-v3-search"),
    _spec("deepseek-reasoner-search", "default", True, True, "deepseek-r1-search"),
    _spec("deepseek-expert-chat", "expert", False, False, "deepseek-v4-pro"),
    _spec("deepseek-expert-reasoner", "expert", True, False),
    _spec("deepseek-expert-chat-search", "expert", False, True),
    _spec("deepseek-expert-reasoner-search", "expert", True, True),
    # the official API's August 2026 vision name; with vision disabled upstream it falls back (chat/modes.py)
    _spec("deepseek-vision", "vision", False, False, "deepseek-v4-flash-vision-exp"),
)
_log = logging.getLogger(__name__)


def _field(entry: Any, name: str, default: Any) -> Any:
    """Read a config entry given as a dict or as a (pydantic) object."""
    if isinstance(entry, Mapping):
        value = entry.get(name, default)
    else:
        value = getattr(entry, name, default)
    return default if value is None else value


class ModelRegistry:
    """Built-in models plus the operator's `models` config section, looked up case-insensitively.

    A config entry whose id equals a built-in id or alias replaces that meaning of the name.
    """

    def __init__(self, extra: Mapping[str, Any] | None = None) -> None:
        specs: dict[str, ModelSpec] = {spec.id: spec for spec in BUILTIN_MODELS}
        for model_id, entry in (extra or {}).items():
            aliases = _field(entry, "aliases", ())
            if isinstance(aliases, str):
                aliases = (aliases,)
            specs[str(model_id)] = ModelSpec(
                id=str(model_id),
                model_type=str(_field(entry, "model_type", "default")),
                thinking=bool(_field(entry, "thinking", False)),
                search=bool(_field(entry, "search", False)),
                aliases=tuple(str(a) for a in aliases),
                tool_prompt=bool(_field(entry, "tool_prompt", True)),
            )
        self._specs = specs
        by_name: dict[str, ModelSpec] = {}
        # Aliases first, ids second: an explicit id always wins over someone else's alias.
        for spec in specs.values():
            for alias in spec.aliases:
                by_name[alias.lower()] = spec
        for spec in specs.values():
            by_name[spec.id.lower()] = spec
        self._by_name = by_name

    def resolve(self, name: str) -> ModelSpec | None:
        """The spec behind an id or alias (any case); None for an unknown name.

        The caller keeps the name the client sent: responses echo it (`Turn.model_name`).
        """
        if not isinstance(name, str):
            return None
        return self._by_name.get(name.strip().lower())

    def listed(self) -> list[ModelSpec]:
        """Canonical specs in display order; `/v1/models` shows each id followed by its aliases."""
        return list(self._specs.values())

    def names(self) -> list[tuple[str, ModelSpec]]:
        """Every servable name (ids and aliases) with its spec, in display order."""
        out: list[tuple[str, ModelSpec]] = []
        for spec in self._specs.values():
            if self._by_name.get(spec.id.lower()) is spec:
                out.append((spec.id, spec))
            for alias in spec.aliases:
                if self._by_name.get(alias.lower()) is spec:
                    out.append((alias, spec))
        return out


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation message, content already flattened to text.

    `reasoning_content` of earlier assistant turns is kept for surfaces that need it, but the prompt
    drops it (chat/prompt.py explains why).
    """

    role: str
    content: str
    reasoning_content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCallRecord, ...] = ()  # calls an earlier assistant message made
    tool_call_id: str | None = None  # the call a tool message answers


@dataclass(frozen=True, slots=True)
class Turn:
    """One surface-neutral request for an assistant turn.

    Thinking/search overrides are already folded into `model`; `tools`, `tool_choice`,
    `parallel_tool_calls` and `response_format` say what the answer may or must be (empty: plain text).
    `attachments` are the images and documents of the request's messages, in order, already checked
    (chat/attachments.py); the runner uploads them with the turn (chat/uploads.py).
    """

    request_id: str
    model: ModelSpec
    model_name: str  # as the client sent it; echoed in responses
    messages: tuple[Message, ...]
    stream: bool = False
    stop: tuple[str, ...] = ()
    include_usage: bool = False
    max_tokens: int | None = None  # cap on reasoning + answer tokens (chat/token_cap.py); None: no cap
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = AUTO
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    attachments: tuple[Attachment, ...] = ()


KNOWN_MODEL_TYPES = frozenset(spec.model_type for spec in BUILTIN_MODELS)  # what the web chat takes today


def model_config_problems(settings: Any) -> list[str]:
    """Config that parses but cannot work, naming the field: an `anthropic.model_map` entry or
    `anthropic.default_model` naming no model (every Claude request it covers would be a 404).
    An unknown `models.<id>.model_type` is only logged (DeepSeek may add types before we know them)."""
    registry = ModelRegistry(settings.models)
    problems: list[str] = []
    known = ", ".join(spec.id for spec in registry.listed())
    claude = settings.anthropic
    for key, target in claude.model_map.items():
        if registry.resolve(target) is None:
            problems.append(f"anthropic.model_map.{key}: no model named {target!r} (models: {known})")
    if registry.resolve(claude.default_model) is None:
        problems.append(f"anthropic.default_model: no model named {claude.default_model!r} (models: {known})")
    for model_id, entry in settings.models.items():
        model_type = _field(entry, "model_type", "default")
        if model_type not in KNOWN_MODEL_TYPES:
            _log.warning("models.%s.model_type: %r is not a model type the web chat is known to take (%s); "
                         "requests for it may fail upstream", model_id, model_type,
                         ", ".join(sorted(KNOWN_MODEL_TYPES)))
    return problems
