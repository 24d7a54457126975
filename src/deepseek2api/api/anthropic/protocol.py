"""Anthropic Messages wire format, request side: validation and the surface-neutral `Turn` it becomes.

What Anthropic clients send (docs/clients.md) is accepted as it is: `system` as a string or text blocks,
`role: "system"` messages inside `messages`, `cache_control` anywhere, any `anthropic-beta` feature's
extra fields, sampling knobs and `max_tokens` of any size. Only what would silently change the answer
is refused, with a 400 naming the field. Tool calls of earlier turns become `Message.tool_calls`,
tool results become `tool` messages answering a call id, so the shared prompt builder renders them
the same way for every surface.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

from ...chat.attachments import Attachment, AttachmentError, AttachmentPolicy, BlockKind, from_block
from ...chat.stops import MAX_STOP_CHARS, MAX_STOP_SEQUENCES
from ...chat.tools.spec import (
    AUTO,
    ToolCallRecord,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from ...chat.turn import Message, ModelRegistry, ModelSpec, Turn
from ...chat.web_search import WebSearchTool, domains
from ...jsontypes import json_type
from ..errors import RequestInvalid, from_attachment
from .signature import ThinkingSigner

log = logging.getLogger(__name__)

_ROLES = ("user", "assistant", "system")
_IGNORED_BLOCKS = frozenset({"redacted_thinking", "server_tool_use", "web_search_tool_result", "search_result",
                             "container_upload", "web_fetch_tool_result", "code_execution_tool_result"})


class ModelNotFound(RequestInvalid):
    """An unknown model name: 404 `not_found_error` (the SDK's NotFoundError)."""

    def __init__(self, model: str) -> None:
        super().__init__(f"model: {model} is not served here. GET /v1/models lists the available models.",
                         "model", "model_not_found", status=404)


class ClaudeModels:
    """Claude model names → DeepSeek models (`anthropic.model_map`), so clients need no model setting.

    A map key matches the lower-cased name exactly or as a part of it; the longest matching key wins.
    Any other `claude-*` name gets `default_model`.
    """

    def __init__(self, registry: ModelRegistry, model_map: Mapping[str, str], default_model: str) -> None:
        self.registry = registry
        self._map = sorted(((k.lower(), v) for k, v in model_map.items()), key=lambda kv: -len(kv[0]))
        self.default_model = default_model

    def resolve(self, name: str) -> ModelSpec | None:
        spec = self.registry.resolve(name)
        if spec is not None:
            return spec
        lowered = name.strip().lower()
        for key, target in self._map:
            if key and key in lowered:
                return self.registry.resolve(target)
        if lowered.startswith(("claude", "anthropic")):
            return self.registry.resolve(self.default_model)
        return None


# --------------------------------------------------------------------------------------------
# Small validation helpers (every failure is a 400 naming the field)
# --------------------------------------------------------------------------------------------


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(f"{param}: expected {expected}, but got {json_type(value)}.", param, "invalid_type")


def _missing(param: str) -> RequestInvalid:
    return RequestInvalid(f"{param}: Field required", param, "missing_required_parameter")


def _str(obj: Mapping[str, Any], key: str, at: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise _missing(f"{at}.{key}")
        return ""
    if not isinstance(value, str):
        raise _wrong_type(f"{at}.{key}", "a string", value)
    return value


def attachment_text(block: Mapping[str, Any], at: str) -> str:
    """An `image` or `document` block adds no prompt text: it becomes an attachment (`attachments_of`,
    chat/attachments.py), uploaded with the turn. Only its shape is checked here (400 naming the field)."""
    _attachment_source(block, at)
    return ""


def _attachment_source(block: Mapping[str, Any], at: str) -> Mapping[str, Any]:
    source = block.get("source")
    if source is None:
        raise _missing(f"{at}.source")
    if not isinstance(source, dict):
        raise _wrong_type(f"{at}.source", "an object", source)
    kind = _str(source, "type", f"{at}.source")
    if kind == "file":
        raise RequestInvalid(f"{at}.source: 'file' sources (Anthropic's Files API) are not supported; send the file "
                             "as base64.", f"{at}.source.type", "unsupported_value")
    allowed = ("base64", "url") if block.get("type") == "image" else ("base64", "url", "text", "content")
    if kind not in allowed:
        raise RequestInvalid(f"{at}.source.type: Input should be {' or '.join(repr(k) for k in allowed)} "
                             f"(got '{kind}').", f"{at}.source.type", "invalid_value")
    if kind in ("base64", "text", "url"):
        _str(source, "url" if kind == "url" else "data", f"{at}.source")
    return source


async def _attachment(block: Mapping[str, Any], at: str, policy: AttachmentPolicy, index: int) -> Attachment:
    """One `image` / `document` block → a checked attachment (the one converter of chat/attachments.py)."""
    source = _attachment_source(block, at)
    kind = source["type"]
    block_kind: BlockKind = "image" if block.get("type") == "image" else "document"
    title = block.get("title") if isinstance(block.get("title"), str) else None
    where = f"{at}.source"
    if kind == "base64":
        media_type = source.get("media_type") if isinstance(source.get("media_type"), str) else None
        return await from_block(block_kind, part=where, policy=policy, media_type=media_type,
                                data=_str(source, "data", where), filename=title, index=index)
    if kind == "url":
        return await from_block(block_kind, part=where, policy=policy, url=_str(source, "url", where),
                                filename=title, index=index)
    if kind == "text":
        return await from_block("document", part=where, policy=policy, text=_str(source, "data", where),
                                filename=title, index=index)
    return await from_block("document", part=where, policy=policy, filename=title, index=index,
                            text=_text_of(source.get("content"), f"{where}.content"))


async def attachments_of(body: Mapping[str, Any], policy: AttachmentPolicy) -> tuple[Attachment, ...]:
    """The `image` and `document` blocks of the user messages (and of their tool results: a screenshot a
    tool returned) → checked attachments, in order. Call after `to_turn` validated the body. Raises
    a 400/413 `ApiError` naming the block, e.g. `messages.0.content.1.source`."""
    blocks: list[tuple[Mapping[str, Any], str]] = []
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or message.get("role") == "assistant":
            continue
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            if block.get("type") in ("image", "document"):
                blocks.append((block, f"messages.{i}.content.{j}"))
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                blocks.extend((inner, f"messages.{i}.content.{j}.content.{k}")
                              for k, inner in enumerate(block["content"])
                              if isinstance(inner, dict) and inner.get("type") in ("image", "document"))
    if len(blocks) > policy.max_files:
        raise RequestInvalid(f"messages: {len(blocks)} images and documents; at most {policy.max_files} per request "
                             "(files.max_files).", "messages", "too_many_files")
    try:
        return tuple([await _attachment(block, at, policy, n) for n, (block, at) in enumerate(blocks, 1)])
    except AttachmentError as exc:
        raise from_attachment(exc) from None


def _text_of(blocks: Any, at: str) -> str:
    """Text of a `tool_result` content or of `system`: a string, or text blocks joined by newlines."""
    if blocks is None:
        return ""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _wrong_type(at, "a string or an array of content blocks", blocks)
    texts: list[str] = []
    for j, block in enumerate(blocks):
        where = f"{at}.{j}"
        if not isinstance(block, dict):
            raise _wrong_type(where, "an object", block)
        kind = _str(block, "type", where)
        if kind == "text":
            texts.append(_str(block, "text", where))
        elif kind in ("image", "document"):
            texts.append(attachment_text(block, where))
        elif kind not in _IGNORED_BLOCKS:
            log.debug("ignoring a %r block at %s", kind, where)
    return "\n".join(texts)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


class _Conversation:
    """Builds `Message`s; remembers tool names by call id so results can name their tool."""

    def __init__(self, signer: ThinkingSigner) -> None:
        self.signer = signer
        self.messages: list[Message] = []
        self.tool_names: dict[str, str] = {}

    def add(self, message: Any, at: str) -> None:
        if not isinstance(message, dict):
            raise _wrong_type(at, "an object", message)
        role = _str(message, "role", at)
        if role not in _ROLES:
            raise RequestInvalid(f"{at}.role: Input should be 'user' or 'assistant'", f"{at}.role", "invalid_value")
        content = message.get("content")
        if content is None:
            raise _missing(f"{at}.content")
        if isinstance(content, str):
            self.messages.append(Message(role=role, content=content))
            return
        if not isinstance(content, list):
            raise _wrong_type(f"{at}.content", "a string or an array of content blocks", content)
        if role == "assistant":
            self._assistant(content, f"{at}.content")
        else:
            self._user(role, content, f"{at}.content")

    def _assistant(self, blocks: list[Any], at: str) -> None:
        texts: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCallRecord] = []
        for j, block in enumerate(blocks):
            where = f"{at}.{j}"
            if not isinstance(block, dict):
                raise _wrong_type(where, "an object", block)
            kind = _str(block, "type", where)
            if kind == "text":
                texts.append(_str(block, "text", where))
            elif kind == "thinking":
                thinking = _str(block, "thinking", where, required=False)
                if self.signer.verify(thinking, block.get("signature")):
                    reasoning.append(thinking)  # ours: kept; anything else is quietly left out
            elif kind == "tool_use":
                call_id, name = _str(block, "id", where), _str(block, "name", where)
                arguments = block.get("input", {})
                if not isinstance(arguments, dict):
                    raise _wrong_type(f"{where}.input", "an object", arguments)
                self.tool_names[call_id] = name
                calls.append(ToolCallRecord(call_id, name, json.dumps(arguments, ensure_ascii=False)))
            elif kind in ("image", "document"):
                texts.append(attachment_text(block, where))
            elif kind not in _IGNORED_BLOCKS:
                log.debug("ignoring a %r block at %s", kind, where)
        self.messages.append(Message(role="assistant", content="\n".join(texts),
                                     reasoning_content="\n".join(reasoning) or None, tool_calls=tuple(calls)))

    def _user(self, role: str, blocks: list[Any], at: str) -> None:
        texts: list[str] = []
        for j, block in enumerate(blocks):
            where = f"{at}.{j}"
            if not isinstance(block, dict):
                raise _wrong_type(where, "an object", block)
            kind = _str(block, "type", where)
            if kind == "text":
                texts.append(_str(block, "text", where))
            elif kind == "tool_result":
                call_id = _str(block, "tool_use_id", where)
                result = _text_of(block.get("content"), f"{where}.content")
                if block.get("is_error") is True:
                    result = f"Error: {result}" if result else "Error"
                self.messages.append(Message(role="tool", content=result, tool_call_id=call_id,
                                             name=self.tool_names.get(call_id)))
            elif kind in ("image", "document"):
                texts.append(attachment_text(block, where))
            elif kind not in _IGNORED_BLOCKS and kind not in ("thinking", "tool_use"):
                log.debug("ignoring a %r block at %s", kind, where)
        if texts:
            self.messages.append(Message(role=role, content="\n".join(texts)))


def _system(value: Any) -> str:
    return _text_of(value, "system")


# --------------------------------------------------------------------------------------------
# Tools, thinking, stops
# --------------------------------------------------------------------------------------------


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("tools", "an array", value)
    tools: list[ToolSpec] = []
    seen: set[str] = set()
    for i, tool in enumerate(value):
        at = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _wrong_type(at, "an object", tool)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            log.debug("ignoring Anthropic-hosted tool %r (%s)", tool.get("name"), kind)  # web_search_…, bash_…
            continue
        name = _str(tool, "name", at)
        if not name:
            raise RequestInvalid(f"{at}.name: String should have at least 1 character", f"{at}.name")
        if name in seen:
            raise RequestInvalid(f"tools: Tool names must be unique ('{name}' repeats).", "tools")
        seen.add(name)
        schema = tool.get("input_schema")
        if schema is None:
            raise _missing(f"{at}.input_schema")
        if not isinstance(schema, dict):
            raise _wrong_type(f"{at}.input_schema", "an object", schema)
        tools.append(ToolSpec(name=name, description=_str(tool, "description", at, required=False),
                              parameters=schema))
    return tuple(tools)


def web_search_of(body: Any) -> WebSearchTool | None:
    """The hosted `web_search_…` tool a request offers (any version: `web_search_20250305`,
    `web_search_20260209`, …), or None. Its limits are kept; `user_location` has no DeepSeek equivalent."""
    tools = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, dict) and str(tool.get("type") or "").startswith("web_search_"):
            uses = tool.get("max_uses")
            return WebSearchTool(max_uses=uses if isinstance(uses, int) and not isinstance(uses, bool) else None,
                                 allowed_domains=domains(tool.get("allowed_domains")),
                                 blocked_domains=domains(tool.get("blocked_domains")))
    return None


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...], hosted: bool = False) -> tuple[ToolChoice, bool]:
    """(choice, parallel_tool_calls). `hosted`: a web search tool is offered, which the server runs, so a
    choice of it (by name, or `any` with no other tool) asks for a search, not for a call."""
    if value is None:
        return AUTO, True
    if not isinstance(value, dict):
        raise _wrong_type("tool_choice", "an object", value)
    kind = _str(value, "type", "tool_choice")
    parallel = value.get("disable_parallel_tool_use") is not True
    if kind == "auto":
        return AUTO, parallel
    if kind == "any":
        return (AUTO if hosted and not tools else ToolChoice(ToolChoiceMode.REQUIRED)), parallel
    if kind == "none":
        return ToolChoice(ToolChoiceMode.NONE), parallel
    if kind == "tool":
        name = _str(value, "name", "tool_choice")
        if hosted and name == "web_search" and name not in {t.name for t in tools}:
            return AUTO, parallel
        if name not in {t.name for t in tools}:
            raise RequestInvalid(f"tool_choice.name: Tool '{name}' not found in tools.", "tool_choice.name")
        return ToolChoice(ToolChoiceMode.NAMED, name), parallel
    raise RequestInvalid(f"tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none' (got '{kind}').",
                         "tool_choice.type")


def _thinking(value: Any) -> bool | None:
    """`enabled` and `adaptive` turn DeepSeek's thinking on, `disabled` off; absent: the model's default."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong_type("thinking", "an object", value)
    kind = value.get("type")
    if kind in ("enabled", "adaptive"):
        return True
    if kind == "disabled":
        return False
    raise RequestInvalid(f"thinking.type: Input should be 'enabled', 'adaptive' or 'disabled' (got {kind!r}).",
                         "thinking.type")


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("stop_sequences", "an array of strings", value)
    if len(value) > MAX_STOP_SEQUENCES:
        raise RequestInvalid(f"stop_sequences: at most {MAX_STOP_SEQUENCES} stop sequences are supported.",
                             "stop_sequences")
    out: list[str] = []
    for j, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong_type(f"stop_sequences.{j}", "a string", item)
        if len(item) > MAX_STOP_CHARS:
            raise RequestInvalid(f"stop_sequences.{j}: at most {MAX_STOP_CHARS} characters.", f"stop_sequences.{j}")
        if item:
            out.append(item)
    return tuple(out)


def _max_tokens(body: Mapping[str, Any], required: bool) -> int | None:
    value = body.get("max_tokens")
    if value is None:
        if required:
            raise _missing("max_tokens")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("max_tokens", "an integer", value)
    if value < 1:
        raise RequestInvalid("max_tokens: Input should be greater than or equal to 1", "max_tokens")
    return value  # any size: the web chat has no such limit, so it is accepted and not enforced


def session_key(body: Mapping[str, Any]) -> str | None:
    """`metadata.user_id` (Claude Code puts its session in it): the fallback session key."""
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        user = metadata.get("user_id")
        if isinstance(user, str) and user:
            return user
    return None


def to_turn(body: Any, models: ClaudeModels, signer: ThinkingSigner, request_id: str, *,
            count_only: bool = False) -> Turn:
    """A parsed JSON body → `Turn`; raises `RequestInvalid` (400) or `ModelNotFound` (404).

    `count_only`: for count_tokens, where `max_tokens` and `stream` are not part of the body."""
    if not isinstance(body, dict):
        raise RequestInvalid(f"The request body must be a JSON object, but got {json_type(body)}.", None,
                             "invalid_type")
    name = body.get("model")
    if name is None:
        raise _missing("model")
    if not isinstance(name, str):
        raise _wrong_type("model", "a string", name)
    if not name.strip():
        raise RequestInvalid("model: String should have at least 1 character", "model")
    spec = models.resolve(name)
    if spec is None:
        raise ModelNotFound(name)
    max_tokens = _max_tokens(body, required=not count_only)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of messages", messages)
    if not messages:
        raise RequestInvalid("messages: at least one message is required", "messages", "empty_array")
    conversation = _Conversation(signer)
    system = _system(body.get("system"))
    if system:
        conversation.messages.append(Message(role="system", content=system))
    for i, message in enumerate(messages):
        conversation.add(message, f"messages.{i}")
    tools = _tools(body.get("tools"))
    choice, parallel = _tool_choice(body.get("tool_choice"), tools, hosted=web_search_of(body) is not None)
    thinking = _thinking(body.get("thinking"))
    if thinking is not None and thinking != spec.thinking:
        spec = dataclasses.replace(spec, thinking=thinking)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    return Turn(request_id=request_id, model=spec, model_name=name, messages=tuple(conversation.messages),
                stream=bool(stream) and not count_only, stop=_stops(body.get("stop_sequences")),
                max_tokens=max_tokens, tools=tools, tool_choice=choice, parallel_tool_calls=parallel)
