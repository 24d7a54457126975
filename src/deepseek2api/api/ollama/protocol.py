"""Ollama API wire format, request side: `/api/chat` and `/api/generate` bodies → the surface-neutral `Turn`.

Model names are the gateway's (`deepseek-chat`, with or without Ollama's `:latest` tag). `images` are
base64 (the attachment path every surface uses), tool calls carry their arguments as objects,
`format` is `"json"` or a JSON schema (structured output), `think` switches DeepSeek's thinking, and
`options` are accepted (`num_predict` caps the answer, `stop` adds stop strings; sampling knobs have
no effect on the web chat). What cannot be honoured is refused with a clear 400: `raw` prompts,
`template`, `suffix` (fill-in-the-middle) and a generate `context` from an earlier answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...chat.attachments import Attachment, AttachmentError, AttachmentPolicy, from_block
from ...chat.stops import MAX_STOP_CHARS, MAX_STOP_SEQUENCES
from ...chat.tools.spec import AUTO, ResponseFormat, ToolCallRecord, ToolSpec
from ...chat.tools.structured import schema_error
from ...chat.turn import Message, ModelRegistry, ModelSpec, Turn
from ...jsontypes import json_type
from ..errors import RequestInvalid, from_attachment

_ROLES = ("system", "user", "assistant", "tool")


class ModelNotFound(RequestInvalid):
    """Ollama's 404 for a model it does not have."""

    def __init__(self, model: str) -> None:
        super().__init__(f"model '{model}' not found", "model", "model_not_found", status=404)


def resolve(registry: ModelRegistry, name: str) -> ModelSpec | None:
    """A gateway model id or alias, with or without the `:latest` tag Ollama clients add."""
    return registry.resolve(name.removesuffix(":latest"))


def _bad(message: str, param: str | None = None) -> RequestInvalid:
    return RequestInvalid(message, param)


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(f"{param}: expected {expected}, got {json_type(value)}", param, "invalid_type")


def _str(obj: Mapping[str, Any], key: str, at: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong_type(f"{at}{key}", "a string", value)
    return value


def _list(obj: Mapping[str, Any], key: str, at: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong_type(f"{at}{key}", "an array", value)
    return value


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request's turn, the base64 images to attach (with where they were), and the model it asked for."""

    turn: Turn
    images: tuple[tuple[str, str], ...]
    empty: bool  # no messages / no prompt: Ollama's "load the model" request, answered at once


def _model(body: Mapping[str, Any], registry: ModelRegistry) -> tuple[str, ModelSpec]:
    name = _str(body, "model", "") or _str(body, "name", "")
    if not name:
        raise _bad("model is required", "model")
    spec = resolve(registry, name)
    if spec is None:
        raise ModelNotFound(name)
    return name, spec


def _format(value: Any) -> ResponseFormat | None:
    if value is None or value == "":
        return None
    if value == "json":
        return ResponseFormat("json_object")
    if not isinstance(value, dict):
        raise _bad(f"format: expected \"json\" or a JSON schema object, got {json_type(value)}", "format")
    problem = schema_error(value)
    if problem is not None:
        raise _bad(f"format: invalid JSON schema: {problem}", "format")
    return ResponseFormat("json_schema", value, "response", True)


def _options(body: Mapping[str, Any]) -> tuple[int | None, tuple[str, ...]]:
    """(num_predict, stop) of `options`; the rest has no counterpart upstream."""
    options = body.get("options")
    if options is None:
        return None, ()
    if not isinstance(options, dict):
        raise _wrong_type("options", "an object", options)
    limit = options.get("num_predict")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise _wrong_type("options.num_predict", "an integer", limit)
    stops = options.get("stop") or []
    if isinstance(stops, str):
        stops = [stops]
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _wrong_type("options.stop", "an array of strings", stops)
    if len(stops) > MAX_STOP_SEQUENCES or any(len(s) > MAX_STOP_CHARS for s in stops):
        raise _bad(f"options.stop: at most {MAX_STOP_SEQUENCES} stop strings of {MAX_STOP_CHARS} characters",
                   "options.stop")
    return (limit if limit is not None and limit > 0 else None), tuple(s for s in stops if s)


def _think(spec: ModelSpec, value: Any) -> ModelSpec:
    """`think`: true (or a level "low" / "medium" / "high") turns thinking on, false off."""
    if value is None:
        return spec
    if isinstance(value, str) and value in ("low", "medium", "high"):
        value = True
    if not isinstance(value, bool):
        raise _wrong_type("think", "a boolean or \"low\" / \"medium\" / \"high\"", value)
    return spec if value == spec.thinking else dataclasses.replace(spec, thinking=value)


def _images(message: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    out = []
    for k, image in enumerate(_list(message, "images", at)):
        if not isinstance(image, str):
            raise _wrong_type(f"{at}images[{k}]", "a base64 string", image)
        out.append((image, f"{at}images[{k}]"))
    return out


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("tools", "an array", value)
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise _bad(f"tools[{i}]: expected {{\"type\": \"function\", \"function\": {{...}}}}", f"tools[{i}]")
        function = tool["function"]
        name = _str(function, "name", f"tools[{i}].function.")
        if not name:
            raise _bad(f"tools[{i}].function.name is required", f"tools[{i}].function.name")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise _wrong_type(f"tools[{i}].function.parameters", "an object", parameters)
        tools.append(ToolSpec(name=name, description=_str(function, "description", f"tools[{i}].function."),
                              parameters=parameters))
    return tuple(tools)


def _calls(message: Mapping[str, Any], at: str, first: int) -> tuple[ToolCallRecord, ...]:
    calls = []
    for k, call in enumerate(_list(message, "tool_calls", at)):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _bad(f"{at}tool_calls[{k}]: expected {{\"function\": {{\"name\", \"arguments\"}}}}",
                       f"{at}tool_calls[{k}]")
        arguments = function.get("arguments") if function.get("arguments") is not None else {}
        if isinstance(arguments, str):
            text = arguments
        elif isinstance(arguments, dict):
            text = json.dumps(arguments, ensure_ascii=False)
        else:
            raise _wrong_type(f"{at}tool_calls[{k}].function.arguments", "an object", arguments)
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else f"call_{first + k}"
        calls.append(ToolCallRecord(call_id, _str(function, "name", f"{at}tool_calls[{k}].function."), text))
    return tuple(calls)


def chat_turn(body: Any, registry: ModelRegistry, request_id: str) -> Parsed:
    """An `/api/chat` body → `Turn`; raises `RequestInvalid` (400) or `ModelNotFound` (404)."""
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {json_type(body)}")
    name, spec = _model(body, registry)
    messages: list[Message] = []
    images: list[tuple[str, str]] = []
    open_calls: list[ToolCallRecord] = []
    for i, message in enumerate(_list(body, "messages", "")):
        at = f"messages[{i}]."
        if not isinstance(message, dict):
            raise _wrong_type(f"messages[{i}]", "an object", message)
        role = _str(message, "role", at)
        if role not in _ROLES:
            raise _bad(f"{at}role: expected system, user, assistant or tool (got '{role}')", f"{at}role")
        content = _str(message, "content", at)
        if role == "assistant":
            calls = _calls(message, at, sum(len(m.tool_calls) for m in messages) + 1)
            open_calls.extend(calls)
            messages.append(Message(role="assistant", content=content, tool_calls=calls))
        elif role == "tool":
            tool = _str(message, "tool_name", at) or _str(message, "name", at)
            answered = next((c for c in open_calls if not tool or c.name == tool), None)
            if answered is not None:
                open_calls.remove(answered)
            messages.append(Message(role="tool", content=content, name=tool or (answered.name if answered else None),
                                    tool_call_id=answered.id if answered else _str(message, "tool_call_id", at)))
        else:
            images += _images(message, at)
            messages.append(Message(role=role, content=content))
    limit, stops = _options(body)
    turn = Turn(request_id=request_id, model=_think(spec, body.get("think")), model_name=name,
                messages=tuple(messages), stream=_stream(body), stop=stops, max_tokens=limit,
                tools=_tools(body.get("tools")), tool_choice=AUTO, response_format=_format(body.get("format")))
    return Parsed(turn, tuple(images), empty=not messages)


def generate_turn(body: Any, registry: ModelRegistry, request_id: str) -> Parsed:
    """An `/api/generate` body → `Turn` (`system` + `prompt` as one user turn)."""
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {json_type(body)}")
    name, spec = _model(body, registry)
    if body.get("raw") is True:
        raise _bad("raw prompts are not supported by this gateway: DeepSeek's web chat applies its own template. "
                   "Send the prompt without raw, or use /api/chat.", "raw")
    for key, why in (("template", "prompt templates"), ("suffix", "fill-in-the-middle (suffix)")):
        if body.get(key):
            raise _bad(f"{key}: {why} are not supported by this gateway", key)
    if body.get("context"):
        raise _bad("context: earlier answers' contexts are not kept by this gateway; use /api/chat with the "
                   "conversation's messages", "context")
    system, prompt = _str(body, "system", ""), _str(body, "prompt", "")
    messages = ([Message(role="system", content=system)] if system else []) + \
        ([Message(role="user", content=prompt)] if prompt else [])
    images = _images(body, "")
    if images and not prompt:
        messages.append(Message(role="user", content=""))
    limit, stops = _options(body)
    turn = Turn(request_id=request_id, model=_think(spec, body.get("think")), model_name=name,
                messages=tuple(messages), stream=_stream(body), stop=stops, max_tokens=limit,
                response_format=_format(body.get("format")))
    return Parsed(turn, tuple(images), empty=not prompt and not images)


def _stream(body: Mapping[str, Any]) -> bool:
    value = body.get("stream")
    if value is not None and not isinstance(value, bool):
        raise _wrong_type("stream", "a boolean", value)
    return value is not False  # Ollama streams unless told not to


def model_of(body: Any, registry: ModelRegistry) -> tuple[str, ModelSpec]:
    """The model of an `/api/show` body (`model`, or the older `name`)."""
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {json_type(body)}")
    return _model(body, registry)


async def attachments_of(images: tuple[tuple[str, str], ...], policy: AttachmentPolicy) -> tuple[Attachment, ...]:
    """The base64 `images` → checked attachments (400/413 naming the image)."""
    if len(images) > policy.max_files:
        raise _bad(f"{len(images)} images; at most {policy.max_files} per request (files.max_files)", "images")
    try:
        return tuple([await from_block("image", part=at, policy=policy, data=data, index=n)
                      for n, (data, at) in enumerate(images, 1)])
    except AttachmentError as exc:
        raise from_attachment(exc) from None
