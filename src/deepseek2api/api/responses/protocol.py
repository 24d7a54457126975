"""OpenAI Responses wire format, request side: validation, input items, tools, and the `Turn` they become.

What clients send is in docs/clients.md (Codex: `store:false`, two developer messages, a `namespace`
tool, a hosted `web_search` tool, `custom` tools, the whole history on every turn). The rules are
those of the chat surface: unknown fields are accepted and ignored, and only what would silently
change the meaning of a request is refused, as a 400 with the OpenAI `param` path.

Decisions (README "OpenAI Responses API"):
- `reasoning.effort` "none" or "minimal" turns DeepSeek's thinking off; other efforts keep the
  model's default (the web chat has no effort dial, and a non-thinking model is not switched on).
- Hosted tools (`web_search`, `file_search`, …) are accepted and not offered to the model.
- `reasoning` items sent back are kept (they are listed in input_items) but not re-sent upstream, as
  the chat surface drops earlier `reasoning_content`. Unknown item types are accepted and skipped the
  same way, each type logged once (`items_to_messages`).
- `item_reference` items (`{"type": "item_reference", "id": …}`, or only `{"id": …}`) name an item the
  store keeps; serving.py looks them up (`referenced_ids`) and `resolve_references` puts each in place.
  An id the store does not have for this key is a 404 `item_not_found` with `param: input`.
- What is stored of an input (`stored_form`) leaves out what never goes upstream: a reasoning item keeps
  its id, not its summary or encrypted content; an unknown item keeps its type and id.
- `namespace` tools are flattened to `namespace.name` for the prompt (`flat_name`); calls are
  restored to `namespace` + `name` by render.py from the turn's `ToolSpec`s.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...chat.attachments import Attachment, AttachmentError, AttachmentPolicy, from_block
from ...chat.tools.declared import check_declared
from ...chat.tools.spec import (
    AUTO,
    ResponseFormat,
    ToolCallRecord,
    ToolChoice,
    ToolChoiceMode,
    ToolKind,
    ToolSpec,
)
from ...chat.tools.structured import schema_error
from ...chat.turn import Message, ModelRegistry, ModelSpec, Turn
from ...jsontypes import json_type
from ..errors import RequestInvalid, from_attachment

MESSAGE_ROLES = ("user", "system", "developer", "assistant")
HOSTED_TOOL_CHOICES = frozenset({
    "file_search", "web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
    "computer_use_preview", "computer", "code_interpreter", "image_generation", "mcp", "shell", "apply_patch",
    "local_shell",
})
_THINKING_OFF_EFFORTS = frozenset({"none", "minimal"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
_EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}
ITEM_REFERENCE = "item_reference"
_UPSTREAM_ITEMS = frozenset({"message", "function_call", "custom_tool_call", "function_call_output",
                             "custom_tool_call_output", ITEM_REFERENCE})
_KNOWN_SKIPPED = frozenset({"reasoning", ITEM_REFERENCE})  # known items deliberately not sent upstream
_logged_unknown: set[str] = set()  # unknown item types already logged (once per type per process)
log = logging.getLogger(__name__)


class ItemNotFound(RequestInvalid):
    """An `item_reference` to an item this key has not stored: 404, as OpenAI answers it."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"Item with id '{item_id}' not found (unknown, expired, deleted, or stored with "
                         "store=false).", "input", "item_not_found", status=404)


class ModelNotFound(RequestInvalid):
    """The requested model is not served: 404 `model_not_found`, as on the chat surface."""

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist or you do not have access to it. "
                         "GET /v1/models lists the available models.", "model", "model_not_found", status=404)


# --------------------------------------------------------------------------------------------
# The parsed request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A validated `POST /v1/responses` body. `items` are this request's own input items, normalised
    (content as part lists, every item with an id): what `GET …/input_items` lists later."""

    model: str
    items: tuple[dict[str, Any], ...]
    instructions: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = AUTO
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    effort: str | None = None
    summary: str | None = None
    response_format: ResponseFormat | None = None
    max_output_tokens: int | None = None
    echo: dict[str, Any] = field(default_factory=dict)  # fields a Response object repeats as sent


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def flat_name(namespace: str, name: str) -> str:
    """The one name a namespaced tool has in the prompt and the parser."""
    return f"{namespace}.{name}"


# --------------------------------------------------------------------------------------------
# Small validation helpers (messages worded as OpenAI words them)
# --------------------------------------------------------------------------------------------


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
                          param, "invalid_type")


def _missing(param: str) -> RequestInvalid:
    return RequestInvalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _string(obj: Mapping[str, Any], key: str, at: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _missing(f"{at}.{key}" if at else key)
        return None
    if not isinstance(value, str):
        raise _wrong_type(f"{at}.{key}" if at else key, "a string", value)
    return value


def _optional(body: Mapping[str, Any], key: str, kinds: tuple[type, ...], expected: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise _wrong_type(key, expected, value)
    return value


def image_part(part: Mapping[str, Any], at: str) -> str | None:
    """An `input_image` or `input_file` part adds no prompt text: it becomes an attachment
    (`attachments_of`, chat/attachments.py), uploaded with the turn. Only its shape is checked here."""
    if part.get("file_id") is not None and part.get("image_url" if part.get("type") == "input_image"
                                                     else "file_data") is None:
        raise RequestInvalid("'file_id' (OpenAI's Files API) is not supported: send the file inline "
                             "(a data: URL or base64).", f"{at}.file_id", "unsupported_value")
    if part.get("type") == "input_image":
        _string(part, "image_url", at)
        return None
    if part.get("file_url") is not None and part.get("file_data") is None:
        raise RequestInvalid("'file_url' is not fetched by this gateway: send the file as 'file_data' (base64 or a "
                             "data: URL).", f"{at}.file_url", "unsupported_value")
    _string(part, "file_data", at)
    _string(part, "filename", at, required=False)
    return None


async def attachments_of(items: Sequence[Mapping[str, Any]], policy: AttachmentPolicy,
                         param: str = "input") -> tuple[Attachment, ...]:
    """The `input_image` / `input_file` parts of user message items → checked attachments, in order
    (the one converter of chat/attachments.py). Raises a 400/413 `ApiError` naming the part, e.g.
    `input[0].content[1]`."""
    parts: list[tuple[Mapping[str, Any], str]] = []
    for i, item in enumerate(items):
        if item.get("type") != "message" or item.get("role") == "assistant":
            continue
        content = item.get("content")
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") in ("input_image", "input_file"):
                parts.append((part, f"{param}[{i}].content[{j}]"))
    if len(parts) > policy.max_files:
        raise RequestInvalid(f"{len(parts)} images and files in one request; at most {policy.max_files} "
                             "(files.max_files).", param, "too_many_files")
    found: list[Attachment] = []
    try:
        for n, (part, at) in enumerate(parts, 1):
            if part.get("type") == "input_image":
                found.append(await from_block("image", part=f"{at}.image_url", policy=policy,
                                              url=str(part.get("image_url")), index=n))
                continue
            data, name = str(part.get("file_data")), part.get("filename")
            filename = name if isinstance(name, str) else None
            if data[:5].lower() == "data:":
                found.append(await from_block("document", part=f"{at}.file_data", policy=policy, url=data,
                                              filename=filename, index=n))
            else:
                found.append(await from_block("document", part=f"{at}.file_data", policy=policy, data=data,
                                              filename=filename, index=n))
    except AttachmentError as exc:
        raise from_attachment(exc) from None
    return tuple(found)


def _part_text(part: Any, at: str) -> str | None:
    """The text of one content part; None for parts that carry nothing for the prompt (refusals)."""
    if not isinstance(part, dict):
        raise _wrong_type(at, "an object", part)
    kind = _string(part, "type", at)
    if kind in _TEXT_PARTS:
        return _string(part, "text", at)
    if kind == "refusal":
        return None
    if kind in ("input_image", "input_file"):
        return image_part(part, at)
    if kind == "input_audio":
        raise RequestInvalid(f"Content part type '{kind}' is not supported on /v1/responses: this gateway accepts "
                             "text, image and file input here.", f"{at}.type", "unsupported_value")
    raise RequestInvalid(f"Invalid value: '{kind}'. Supported content part types are: 'input_text', 'output_text', "
                         "'input_image' and 'input_file'.", f"{at}.type", "invalid_value")


def _content_parts(content: Any, at: str, role: str) -> list[dict[str, Any]]:
    """Message content normalised to a part list (a string becomes one text part)."""
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        part: dict[str, Any] = {"type": text_type, "text": content}
        if role == "assistant":
            part["annotations"] = []
        return [part]
    if not isinstance(content, list):
        raise _wrong_type(at, "a string or an array of content parts", content)
    for j, part in enumerate(content):
        _part_text(part, f"{at}[{j}]")
    return [dict(p) for p in content]


def _joined(parts: Sequence[Mapping[str, Any]], at: str) -> str:
    texts = [t for j, p in enumerate(parts) if (t := _part_text(p, f"{at}[{j}]")) is not None]
    return "\n".join(texts)


def _output_text(output: Any, at: str) -> str:
    """A tool output: a string, or content parts (their text joined)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _joined(output, at)
    if output is None:
        return ""
    raise _wrong_type(at, "a string or an array of content parts", output)


# --------------------------------------------------------------------------------------------
# Input items
# --------------------------------------------------------------------------------------------


_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "custom_tool_call": "ctc",
              "custom_tool_call_output": "ctco", "reasoning": "rs"}


def normalise_items(raw: Any, param: str = "input") -> list[dict[str, Any]]:
    """`input` (a string or an item list) → validated items with ids and part-list content."""
    if isinstance(raw, str):
        return [{"type": "message", "id": new_item_id("msg"), "role": "user", "status": "completed",
                 "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise _wrong_type(param, "a string or an array of input items", raw)
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        at = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise _wrong_type(at, "an object", item)
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # the easy message form {role, content}
        elif kind is None and "id" in item:
            kind = ITEM_REFERENCE  # OpenAI's item reference may leave its type out
        if not isinstance(kind, str):
            raise _missing(f"{at}.type")
        out = dict(item)
        out["type"] = kind
        if kind == "message":
            role = _string(item, "role", at)
            if role not in MESSAGE_ROLES:
                raise RequestInvalid(f"Invalid value: '{role}'. Supported values are: 'user', 'system', "
                                     "'developer' and 'assistant'.", f"{at}.role", "invalid_value")
            if item.get("content") is None:
                raise _missing(f"{at}.content")
            out["content"] = _content_parts(item["content"], f"{at}.content", str(role))
            out.setdefault("status", "completed")
        elif kind in ("function_call", "custom_tool_call"):
            _string(item, "call_id", at)
            _string(item, "name", at)
            _string(item, "namespace", at, required=False)
            if kind == "function_call":
                out["arguments"] = _string(item, "arguments", at, required=False) or "{}"
            else:
                out["input"] = _string(item, "input", at, required=False) or ""
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _string(item, "call_id", at)
            _output_text(item.get("output"), f"{at}.output")
        elif kind == ITEM_REFERENCE:
            _string(item, "id", at)
            out = {"type": ITEM_REFERENCE, "id": item["id"]}
        if kind in _ID_PREFIX and not isinstance(out.get("id"), str):
            out["id"] = new_item_id(_ID_PREFIX[kind])
        items.append(out)
    return items


def referenced_ids(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ids the `item_reference` items among `items` name, in order."""
    return [str(item["id"]) for item in items if item.get("type") == ITEM_REFERENCE]


def resolve_references(items: Sequence[Mapping[str, Any]], found: Mapping[str, Mapping[str, Any]],
                       ) -> list[dict[str, Any]]:
    """`items` with every `item_reference` replaced by the stored item it names, in place; raises
    `ItemNotFound` for the first id `found` does not hold."""
    resolved: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") != ITEM_REFERENCE:
            resolved.append(dict(item))
            continue
        target = found.get(str(item["id"]))
        if target is None or target.get("type") == ITEM_REFERENCE:
            raise ItemNotFound(str(item["id"]))
        resolved.append(dict(target))
    return resolved


def stored_form(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Input items as the store keeps them: what never goes upstream is cut to its type and id."""
    kept: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind in _UPSTREAM_ITEMS:
            kept.append(dict(item))
        elif kind == "reasoning":
            kept.append({"type": "reasoning", "id": item.get("id"), "summary": []})
        else:
            kept.append({"type": kind, "id": item.get("id")} if "id" in item else {"type": kind})
    return kept


def _note_unknown(kind: Any) -> None:
    name = str(kind)[:64]
    if name not in _logged_unknown and len(_logged_unknown) < 256:
        _logged_unknown.add(name)
        log.info("input items of type %r are accepted and not sent upstream (logged once per type)", name)


def _call_name(item: Mapping[str, Any]) -> str:
    name = str(item["name"])
    namespace = item.get("namespace")
    return flat_name(namespace, name) if isinstance(namespace, str) and namespace else name


def items_to_messages(items: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Normalised items → conversation messages (calls join the assistant message before them)."""
    messages: list[Message] = []
    names: dict[str, str] = {}
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role = str(item["role"])
            messages.append(Message(role=role, content=_joined(item["content"], "input")))
        elif kind in ("function_call", "custom_tool_call"):
            name = _call_name(item)
            call_id = str(item["call_id"])
            names[call_id] = name
            arguments = str(item.get("arguments", "{}") if kind == "function_call" else item.get("input", ""))
            record = ToolCallRecord(id=call_id, name=name, arguments=arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = dataclasses.replace(last, tool_calls=(*last.tool_calls, record))
            else:
                messages.append(Message(role="assistant", content="", tool_calls=(record,)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = str(item["call_id"])
            messages.append(Message(role="tool", content=_output_text(item.get("output"), "input"),
                                    name=names.get(call_id), tool_call_id=call_id))
        elif kind not in _KNOWN_SKIPPED:
            _note_unknown(kind)  # newer item types: accepted, not sent upstream, logged once per type
    return messages


# --------------------------------------------------------------------------------------------
# Tools and tool_choice
# --------------------------------------------------------------------------------------------


def _tool(entry: Mapping[str, Any], at: str, namespace: str | None) -> ToolSpec:
    kind = entry.get("type")
    name = _string(entry, "name", at)
    assert name is not None
    if not name.strip():
        raise RequestInvalid(f"Invalid '{at}.name': empty string.", f"{at}.name", "invalid_value")
    description = _string(entry, "description", at, required=False) or ""
    flat = flat_name(namespace, name) if namespace else name
    original = name if namespace else None
    if kind == "custom":
        return ToolSpec(name=flat, description=description, kind=ToolKind.CUSTOM, namespace=namespace,
                        original_name=original)
    parameters = entry.get("parameters")
    if parameters is None:
        parameters = _EMPTY_PARAMETERS
    elif not isinstance(parameters, dict):
        raise _wrong_type(f"{at}.parameters", "an object", parameters)
    return ToolSpec(name=flat, description=description, parameters=parameters, namespace=namespace,
                    original_name=original)


def parse_tools(raw: Any) -> tuple[tuple[ToolSpec, ...], tuple[str, ...]]:
    """Function, custom and namespace tools (hosted tools are accepted and left out), with the wire
    path of each (`tools[3].tools[0]`) for error messages."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise _wrong_type("tools", "an array of tools", raw)
    specs: list[ToolSpec] = []
    paths: list[str] = []
    for i, entry in enumerate(raw):
        at = f"tools[{i}]"
        if not isinstance(entry, dict):
            raise _wrong_type(at, "an object", entry)
        kind = _string(entry, "type", at)
        if kind in ("function", "custom"):
            specs.append(_tool(entry, at, None))
            paths.append(at)
        elif kind == "namespace":
            namespace = _string(entry, "name", at)
            inner = entry.get("tools")
            if not isinstance(inner, list):
                raise _wrong_type(f"{at}.tools", "an array of tools", inner)
            for j, sub in enumerate(inner):
                if not isinstance(sub, dict):
                    raise _wrong_type(f"{at}.tools[{j}]", "an object", sub)
                if sub.get("type") in ("function", "custom"):
                    specs.append(_tool(sub, f"{at}.tools[{j}]", namespace))
                    paths.append(f"{at}.tools[{j}]")
        # hosted tools (web_search, file_search, mcp, …): accepted, not offered to the model
    return tuple(specs), tuple(paths)


def check_tools(tools: tuple[ToolSpec, ...], paths: tuple[str, ...], choice: ToolChoice) -> None:
    """The shared rules on declared tools (chat/tools/declared.py), as a 400 with the Responses path."""
    problem = check_declared(tools, choice)
    if problem is None:
        return
    if problem.about_choice:
        param = "tool_choice"
    else:
        at = paths[problem.index] if problem.index is not None and problem.index < len(paths) else "tools"
        param = f"{at}.parameters" if problem.about_schema else f"{at}.name"
    raise RequestInvalid(f"Invalid '{param}': {problem.message}.", param, "invalid_value")


def _echo_tool(tool: Any) -> Any:
    """A declared tool as a Response repeats it: function tools always carry `parameters` and `strict`."""
    if isinstance(tool, dict) and tool.get("type") == "function":
        return {"strict": None, **tool, "parameters": tool.get("parameters") or dict(_EMPTY_PARAMETERS)}
    if isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
        return {**tool, "tools": [_echo_tool(inner) for inner in tool["tools"]]}
    return tool


def parse_tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice, tuple[ToolSpec, ...]]:
    """`tool_choice` → the neutral choice, and the tools it leaves offered (allowed_tools narrows them)."""
    if raw is None or raw == "auto":
        return AUTO, tools
    if raw == "none":
        return ToolChoice(ToolChoiceMode.NONE), tools
    if raw == "required":
        return ToolChoice(ToolChoiceMode.REQUIRED), tools
    if isinstance(raw, str):
        raise RequestInvalid(f"Invalid value: '{raw}'. Supported values are: 'none', 'auto' and 'required'.",
                             "tool_choice", "invalid_value")
    if not isinstance(raw, dict):
        raise _wrong_type("tool_choice", "a string or an object", raw)
    kind = _string(raw, "type", "tool_choice")
    names = {tool.name for tool in tools}
    if kind in ("function", "custom"):
        name = _string(raw, "name", "tool_choice")
        assert name is not None
        namespace = raw.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = flat_name(namespace, name)
        if name not in names:
            raise RequestInvalid(f"Invalid 'tool_choice': no tool named '{name}' is declared in 'tools'.",
                                 "tool_choice.name", "invalid_value")
        return ToolChoice(ToolChoiceMode.NAMED, name), tools
    if kind == "allowed_tools":
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise RequestInvalid(f"Invalid value: '{mode}'. Supported values are: 'auto' and 'required'.",
                                 "tool_choice.mode", "invalid_value")
        allowed_raw = raw.get("tools")
        if not isinstance(allowed_raw, list):
            raise _wrong_type("tool_choice.tools", "an array of tools", allowed_raw)
        allowed = set()
        for entry in allowed_raw:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                namespace = entry.get("namespace")
                allowed.add(flat_name(namespace, entry["name"]) if isinstance(namespace, str) and namespace
                            else entry["name"])
        kept = tuple(tool for tool in tools if tool.name in allowed)
        choice = ToolChoice(ToolChoiceMode.REQUIRED) if mode == "required" else AUTO
        return choice, kept
    if kind in HOSTED_TOOL_CHOICES:
        return AUTO, tools
    raise RequestInvalid(f"Invalid value: '{kind}'. Supported tool_choice types are: 'function', 'custom' and "
                         "'allowed_tools'.", "tool_choice.type", "invalid_value")


# --------------------------------------------------------------------------------------------
# text.format, reasoning
# --------------------------------------------------------------------------------------------


def parse_text_format(text: Any) -> ResponseFormat | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _wrong_type("text", "an object", text)
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _wrong_type("text.format", "an object", fmt)
    kind = _string(fmt, "type", "text.format")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(kind="json_object")
    if kind == "json_schema":
        name = _string(fmt, "name", "text.format")
        schema = fmt.get("schema")
        if schema is None:
            raise _missing("text.format.schema")
        if not isinstance(schema, dict):
            raise _wrong_type("text.format.schema", "an object", schema)
        problem = schema_error(schema)
        if problem is not None:
            raise RequestInvalid(f"Invalid schema for 'text.format': {problem}", "text.format.schema",
                                 "invalid_value")
        return ResponseFormat(kind="json_schema", schema=schema, name=name, strict=bool(fmt.get("strict")))
    raise RequestInvalid(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'.",
                         "text.format.type", "invalid_value")


def apply_effort(spec: ModelSpec, effort: str | None) -> ModelSpec:
    """`reasoning.effort` "none"/"minimal" turns thinking off; other efforts keep the model's default."""
    if effort is not None and effort.lower() in _THINKING_OFF_EFFORTS and spec.thinking:
        return dataclasses.replace(spec, thinking=False)
    return spec


# --------------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------------


def validate_request(body: Any) -> ResponsesRequest:
    """A parsed JSON body → `ResponsesRequest`; raises `RequestInvalid` with a specific `param`."""
    if not isinstance(body, dict):
        raise RequestInvalid(f"The request body must be a JSON object, but got {json_type(body)}.", None,
                             "invalid_type")
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    if not model.strip():
        raise RequestInvalid("Invalid 'model': empty string. Expected a model id.", "model", "invalid_value")
    raw_input = body.get("input")
    items = normalise_items(raw_input) if raw_input is not None else []

    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        if not isinstance(instructions, list):
            raise _wrong_type("instructions", "a string or an array of input items", instructions)
        instructions = "\n\n".join(m.content for m in items_to_messages(normalise_items(instructions,
                                                                                          "instructions")))
    stream = _optional(body, "stream", (bool,), "a boolean")
    store = _optional(body, "store", (bool,), "a boolean")
    parallel = _optional(body, "parallel_tool_calls", (bool,), "a boolean")
    previous = _optional(body, "previous_response_id", (str,), "a string")
    if _optional(body, "background", (bool,), "a boolean"):
        raise RequestInvalid("background=true is not supported: this gateway answers while the request is open.",
                             "background", "unsupported_value")
    if body.get("conversation") is not None:
        raise RequestInvalid("'conversation' is not supported: chain responses with 'previous_response_id'.",
                             "conversation", "unsupported_value")
    max_output = _optional(body, "max_output_tokens", (int,), "an integer")
    if max_output is not None and max_output < 1:
        raise RequestInvalid(f"Invalid 'max_output_tokens': {max_output}. Expected a value of at least 1.",
                             "max_output_tokens", "invalid_value")
    metadata = _optional(body, "metadata", (dict,), "an object")
    include = _optional(body, "include", (list,), "an array of strings")
    for key in ("prompt_cache_key", "user", "safety_identifier", "service_tier", "truncation"):
        _optional(body, key, (str,), "a string")
    for key in ("temperature", "top_p"):
        _optional(body, key, (int, float), "a number")

    reasoning = _optional(body, "reasoning", (dict,), "an object") or {}
    effort = reasoning.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise _wrong_type("reasoning.effort", "a string", effort)
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None and not isinstance(summary, str):
        raise _wrong_type("reasoning.summary", "a string", summary)

    tools, paths = parse_tools(body.get("tools"))
    choice, offered = parse_tool_choice(body.get("tool_choice"), tools)
    check_tools(tools, paths, choice)
    response_format = parse_text_format(body.get("text"))
    text_echo = body.get("text") if isinstance(body.get("text"), dict) else {"format": {"type": "text"}}
    echo: dict[str, Any] = {
        "instructions": body.get("instructions"),
        "tools": [_echo_tool(tool) for tool in body.get("tools") or ()],
        "tool_choice": body.get("tool_choice") or "auto",
        "text": text_echo,
        "metadata": metadata or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "user": body.get("user"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "include": include or [],
        "truncation": body.get("truncation") or "disabled",
        "service_tier": body.get("service_tier") or "default",
    }
    return ResponsesRequest(
        model=model, items=tuple(items), instructions=instructions, tools=offered, tool_choice=choice,
        parallel_tool_calls=True if parallel is None else parallel, previous_response_id=previous,
        store=True if store is None else store, stream=bool(stream), effort=effort, summary=summary,
        response_format=response_format, max_output_tokens=max_output, echo=echo,
    )


def to_turn(req: ResponsesRequest, context: Sequence[Mapping[str, Any]], registry: ModelRegistry,
            request_id: str, attachments: tuple[Attachment, ...] = ()) -> Turn:
    """The surface-neutral turn: instructions, then the chain's earlier items, then this input."""
    spec = registry.resolve(req.model)
    if spec is None:
        raise ModelNotFound(req.model)
    messages: list[Message] = []
    if req.instructions:
        messages.append(Message(role="system", content=req.instructions))
    messages.extend(items_to_messages([*context, *req.items]))
    if not attachments and not any(m.content.strip() or m.tool_calls for m in messages):
        raise RequestInvalid("Invalid 'input': no input item contains any text, so there is nothing to send.",
                             "input", "invalid_value")
    return Turn(
        request_id=request_id, model=apply_effort(spec, req.effort), model_name=req.model, messages=tuple(messages),
        stream=req.stream, max_tokens=req.max_output_tokens, tools=req.tools, tool_choice=req.tool_choice,
        parallel_tool_calls=req.parallel_tool_calls, response_format=req.response_format, attachments=attachments,
    )


__all__ = [
    "ITEM_REFERENCE",
    "ItemNotFound",
    "ModelNotFound",
    "ResponsesRequest",
    "attachments_of",
    "check_tools",
    "flat_name",
    "image_part",
    "items_to_messages",
    "new_item_id",
    "normalise_items",
    "parse_text_format",
    "parse_tool_choice",
    "parse_tools",
    "referenced_ids",
    "resolve_references",
    "stored_form",
    "to_turn",
    "validate_request",
]
