"""Gemini API wire format, request side: `generateContent` bodies → the surface-neutral `Turn`.

What the google-genai SDKs and the Gemini CLI send is read as they send it: camelCase (the REST
form) or snake_case field names, `contents` with `user` / `model` roles, parts `text`, `inlineData`,
`fileData`, `functionCall` / `functionResponse`, `systemInstruction`, `generationConfig`, `tools`
and `toolConfig`. Sampling knobs (`temperature`, `topP`, `seed`…) and `safetySettings` are accepted
and have no effect (the web chat has no such switches). What would silently change the answer —
several candidates, code execution, URL context, cached content — is refused with a 400 naming it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...chat.attachments import Attachment, AttachmentError, AttachmentPolicy, BlockKind, from_block
from ...chat.stops import MAX_STOP_CHARS, MAX_STOP_SEQUENCES
from ...chat.tools.spec import AUTO, ResponseFormat, ToolCallRecord, ToolChoice, ToolChoiceMode, ToolSpec
from ...chat.tools.structured import schema_error
from ...chat.turn import Message, ModelRegistry, ModelSpec, Turn
from ...jsontypes import json_type
from ..errors import RequestInvalid, from_attachment

log = logging.getLogger(__name__)

_LEGACY_SEARCH = frozenset({"googleSearchRetrieval", "google_search_retrieval"})  # the 1.5-era search tool
_REFUSED_TOOLS = {"codeExecution": "code execution", "code_execution": "code execution",
                  "urlContext": "URL context", "url_context": "URL context", "computerUse": "computer use",
                  "computer_use": "computer use", "fileSearch": "file search", "file_search": "file search",
                  "googleMaps": "Google Maps", "google_maps": "Google Maps"}
_SEARCH_TOOLS = frozenset({"googleSearch", "google_search", *_LEGACY_SEARCH})


class ModelNotFound(RequestInvalid):
    """An unknown model: 404 NOT_FOUND, as Google answers it."""

    def __init__(self, model: str) -> None:
        super().__init__(f"models/{model} is not found, or is not supported for "
                         "generateContent. Call ListModels to see the available models.", "model",
                         "model_not_found", status=404)


class GeminiModels:
    """Gemini model names → DeepSeek models (`gemini.model_map`), so clients need no model setting.

    A DeepSeek id or alias works as it is. A map key matches the lower-cased name exactly or as a part
    of it (the longest key wins: `pro` → thinking, `flash` → chat); any other `gemini-*` name gets
    `default_model`."""

    def __init__(self, registry: ModelRegistry, model_map: Mapping[str, str], default_model: str) -> None:
        self.registry = registry
        self._map = sorted(((k.lower(), v) for k, v in model_map.items()), key=lambda kv: -len(kv[0]))
        self.default_model = default_model

    def resolve(self, name: str) -> ModelSpec | None:
        spec = self.registry.resolve(name)
        if spec is not None:
            return spec
        lowered = name.strip().lower()
        if not lowered.startswith(("gemini", "gemma", "learnlm")):
            return None
        for key, target in self._map:
            if key and key in lowered:
                return self.registry.resolve(target)
        return self.registry.resolve(self.default_model)


def model_name(path_name: str) -> str:
    """`models/gemini-2.5-pro` or `gemini-2.5-pro` → `gemini-2.5-pro`."""
    return path_name.removeprefix("models/").strip()


# --------------------------------------------------------------------------------------------
# Small helpers: both spellings, and 400s naming the field
# --------------------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], camel: str) -> Any:
    """A field in its camelCase (REST) or snake_case (proto) spelling."""
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(f"Invalid value at '{param}': expected {expected}, got {json_type(value)}.", param,
                          "invalid_type")


def _obj(value: Any, at: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong_type(at, "an object", value)
    return value


def _list(value: Any, at: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong_type(at, "an array", value)
    return value


def _text(value: Any, at: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong_type(at, "a string", value)
    return value


# --------------------------------------------------------------------------------------------
# Schemas: Google's OpenAPI subset → JSON Schema
# --------------------------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "any_of", "oneOf", "allOf", "prefixItems")
_DROPPED = frozenset({"propertyOrdering", "property_ordering", "nullable", "example"})


def json_schema(schema: Any) -> Any:
    """A `Schema` (types in upper case, `nullable`, `propertyOrdering`) as plain JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out["anyOf" if key == "any_of" else key] = [json_schema(sub) for sub in value]
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties") \
                and isinstance(value, str) and value.isdigit():
            out[key] = int(value)  # int64 fields arrive as strings in proto JSON
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --------------------------------------------------------------------------------------------
# Contents
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Conversation:
    """Builds `Message`s; pairs each `functionResponse` with the call it answers (by id, else by name)."""

    messages: list[Message] = dataclasses.field(default_factory=list)
    blocks: list[tuple[Mapping[str, Any], str]] = dataclasses.field(default_factory=list)  # inline/file parts
    open_calls: list[ToolCallRecord] = dataclasses.field(default_factory=list)  # calls not answered yet
    count: int = 0

    def add(self, content: Any, at: str) -> None:
        content = _obj(content, at)
        role = _text(content.get("role"), f"{at}.role") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise RequestInvalid(f"Invalid value at '{at}.role': please use a valid role: user, model.",
                                 f"{at}.role")
        parts = _list(content.get("parts"), f"{at}.parts")
        if role == "model":
            self._model(parts, f"{at}.parts")
        else:
            self._user(parts, f"{at}.parts")

    def _model(self, parts: list[Any], at: str) -> None:
        texts: list[str] = []
        calls: list[ToolCallRecord] = []
        for j, part in enumerate(parts):
            where = f"{at}[{j}]"
            part = _obj(part, where)
            call = _get(part, "functionCall")
            if call is not None:
                call = _obj(call, f"{where}.functionCall")
                name = _text(call.get("name"), f"{where}.functionCall.name")
                args = call.get("args") if call.get("args") is not None else {}
                if not isinstance(args, dict):
                    raise _wrong_type(f"{where}.functionCall.args", "an object", args)
                self.count += 1
                call_id = _text(call.get("id"), f"{where}.functionCall.id") or f"call_{self.count}"
                calls.append(ToolCallRecord(call_id, name, json.dumps(args, ensure_ascii=False)))
            elif "text" in part and part.get("thought") is not True:
                texts.append(_text(part.get("text"), f"{where}.text"))
            # thought parts, thought signatures and code parts of earlier answers are left out of the prompt
        self.open_calls.extend(calls)
        self.messages.append(Message(role="assistant", content="".join(texts), tool_calls=tuple(calls)))

    def _answered(self, name: str, call_id: str) -> str:
        """The id of the open call this response answers (by id, else the earliest of that name)."""
        for k, call in enumerate(self.open_calls):
            if (call_id and call.id == call_id) or (not call_id and call.name == name):
                return self.open_calls.pop(k).id
        return call_id or f"call_{name}"

    def _user(self, parts: list[Any], at: str) -> None:
        texts: list[str] = []
        for j, part in enumerate(parts):
            where = f"{at}[{j}]"
            part = _obj(part, where)
            response = _get(part, "functionResponse")
            if response is not None:
                response = _obj(response, f"{where}.functionResponse")
                name = _text(response.get("name"), f"{where}.functionResponse.name")
                call_id = self._answered(name, _text(response.get("id"), f"{where}.functionResponse.id"))
                self.messages.append(Message(role="tool", content=_result_text(response.get("response")),
                                             tool_call_id=call_id, name=name))
            elif "text" in part:
                texts.append(_text(part.get("text"), f"{where}.text"))
            elif _get(part, "inlineData") is not None or _get(part, "fileData") is not None:
                self.blocks.append((part, where))
        if texts:
            self.messages.append(Message(role="user", content="".join(texts)))


def _result_text(response: Any) -> str:
    """A function's `response` object as the tool result's text (`{"output": "…"}` as its plain text)."""
    if isinstance(response, dict) and set(response) <= {"output", "content"} and len(response) == 1:
        value = next(iter(response.values()))
        if isinstance(value, str):
            return value
    return json.dumps(response, ensure_ascii=False)


def _system(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts = _list(_obj(value, "systemInstruction").get("parts"), "systemInstruction.parts")
    return "\n".join(_text(_obj(p, f"systemInstruction.parts[{j}]").get("text"), f"systemInstruction.parts[{j}]")
                     for j, p in enumerate(parts))


async def _attachment(part: Mapping[str, Any], at: str, policy: AttachmentPolicy, index: int) -> Attachment:
    inline = _get(part, "inlineData")
    if inline is not None:
        inline = _obj(inline, f"{at}.inlineData")
        mime = _text(_get(inline, "mimeType"), f"{at}.inlineData.mimeType") or None
        kind: BlockKind = "image" if mime and mime.startswith("image/") else "document"
        return await from_block(kind, part=f"{at}.inlineData", policy=policy, media_type=mime,
                                data=_text(inline.get("data"), f"{at}.inlineData.data"),
                                filename=_text(_get(inline, "displayName"), f"{at}.inlineData") or None,
                                index=index)
    file = _obj(_get(part, "fileData"), f"{at}.fileData")
    mime = _text(_get(file, "mimeType"), f"{at}.fileData.mimeType") or None
    uri = _text(_get(file, "fileUri"), f"{at}.fileData.fileUri")
    file_kind: BlockKind = "document" if mime and not mime.startswith("image/") else "image"
    return await from_block(file_kind, part=f"{at}.fileData", policy=policy, media_type=mime, url=uri, index=index)


# --------------------------------------------------------------------------------------------
# Tools, generation config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeminiOptions:
    """What the answer's rendering needs besides the turn."""

    include_thoughts: bool = False  # reasoning goes out as `thought: true` parts (else only counted)
    search: bool = False  # googleSearch was asked for: the answer carries `groundingMetadata`


def _tools(value: Any) -> tuple[tuple[ToolSpec, ...], bool]:
    """(function tools, googleSearch asked for)."""
    tools: list[ToolSpec] = []
    search = False
    seen: set[str] = set()
    for i, tool in enumerate(_list(value, "tools")):
        at = f"tools[{i}]"
        tool = _obj(tool, at)
        for key in tool:
            if key in _SEARCH_TOOLS:
                search = True
            elif key in _REFUSED_TOOLS:
                raise RequestInvalid(f"Invalid value at '{at}.{key}': {_REFUSED_TOOLS[key]} is not available on "
                                     "this gateway (DeepSeek's web chat has no such tool).", f"{at}.{key}",
                                     "unsupported_value")
        for j, decl in enumerate(_list(_get(tool, "functionDeclarations"), f"{at}.functionDeclarations")):
            where = f"{at}.functionDeclarations[{j}]"
            decl = _obj(decl, where)
            name = _text(decl.get("name"), f"{where}.name")
            if not name:
                raise RequestInvalid(f"Invalid value at '{where}.name': a function needs a name.", f"{where}.name")
            if name in seen:
                raise RequestInvalid(f"Invalid value at 'tools': duplicate function name '{name}'.", "tools")
            seen.add(name)
            raw = _get(decl, "parametersJsonSchema")
            schema = raw if raw is not None else json_schema(decl.get("parameters"))
            if schema is None:
                schema = {"type": "object", "properties": {}}
            if not isinstance(schema, dict):
                raise _wrong_type(f"{where}.parameters", "a schema object", schema)
            tools.append(ToolSpec(name=name, description=_text(decl.get("description"), f"{where}.description"),
                                  parameters=schema))
    return tuple(tools), search


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice, tuple[ToolSpec, ...]]:
    """`toolConfig.functionCallingConfig` → (choice, the tools it allows)."""
    config = _obj(_get(_obj(value, "toolConfig"), "functionCallingConfig"), "toolConfig.functionCallingConfig")
    at = "toolConfig.functionCallingConfig"
    mode = (_text(config.get("mode"), f"{at}.mode") or "AUTO").upper()
    allowed = [_text(n, f"{at}.allowedFunctionNames") for n in _list(_get(config, "allowedFunctionNames"),
                                                                      f"{at}.allowedFunctionNames")]
    if allowed:
        known = {t.name for t in tools}
        missing = [n for n in allowed if n not in known]
        if missing:
            raise RequestInvalid(f"Invalid value at '{at}.allowedFunctionNames': '{missing[0]}' is not a declared "
                                 "function.", f"{at}.allowedFunctionNames")
        if mode not in ("ANY", "VALIDATED"):
            raise RequestInvalid(f"Invalid value at '{at}.allowedFunctionNames': only allowed with mode ANY.",
                                 f"{at}.allowedFunctionNames")
        tools = tuple(t for t in tools if t.name in allowed)
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return AUTO, tools
    if mode == "NONE":
        return ToolChoice(ToolChoiceMode.NONE), tools
    if mode == "ANY":
        if not tools:
            raise RequestInvalid(f"Invalid value at '{at}.mode': ANY needs function declarations.", f"{at}.mode")
        if len(tools) == 1:
            return ToolChoice(ToolChoiceMode.NAMED, tools[0].name), tools
        return ToolChoice(ToolChoiceMode.REQUIRED), tools
    raise RequestInvalid(f"Invalid value at '{at}.mode': should be AUTO, ANY or NONE (got '{mode}').", f"{at}.mode")


def _response_format(config: Mapping[str, Any]) -> ResponseFormat | None:
    mime = _text(_get(config, "responseMimeType"), "generationConfig.responseMimeType")
    raw = _get(config, "responseJsonSchema")
    schema = raw if raw is not None else json_schema(_get(config, "responseSchema"))
    if mime in ("", "text/plain") and schema is None:
        return None
    if mime not in ("application/json", ""):
        raise RequestInvalid(f"Invalid value at 'generationConfig.responseMimeType': '{mime}' is not supported; use "
                             "text/plain or application/json.", "generationConfig.responseMimeType",
                             "unsupported_value")
    if schema is None:
        return ResponseFormat("json_object")
    if not isinstance(schema, dict):
        raise _wrong_type("generationConfig.responseSchema", "a schema object", schema)
    problem = schema_error(schema)
    if problem is not None:
        raise RequestInvalid(f"Invalid value at 'generationConfig.responseSchema': {problem}.",
                             "generationConfig.responseSchema")
    return ResponseFormat("json_schema", schema, "response", True)


def _thinking(config: Mapping[str, Any]) -> tuple[bool | None, bool]:
    """(thinking on / off / the model's default, show the thoughts).

    `thinkingBudget` 0 turns thinking off and a positive budget on; -1 (dynamic, what the Gemini CLI sends)
    and `thinkingLevel` keep the model's default, so `flash` stays the chat model. `includeThoughts` only
    decides whether the reasoning is shown as `thought: true` parts (it is always counted)."""
    thinking = _obj(_get(config, "thinkingConfig"), "generationConfig.thinkingConfig")
    include = _get(thinking, "includeThoughts") is True
    budget = _get(thinking, "thinkingBudget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise _wrong_type("generationConfig.thinkingConfig.thinkingBudget", "an integer", budget)
    if budget == 0:
        return False, False
    return (True if budget is not None and budget > 0 else None), include


def _stops(value: Any) -> tuple[str, ...]:
    stops = _list(value, "generationConfig.stopSequences")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise RequestInvalid(f"Invalid value at 'generationConfig.stopSequences': at most {MAX_STOP_SEQUENCES}.",
                             "generationConfig.stopSequences")
    out = []
    for j, stop in enumerate(stops):
        stop = _text(stop, f"generationConfig.stopSequences[{j}]")
        if len(stop) > MAX_STOP_CHARS:
            raise RequestInvalid(f"Invalid value at 'generationConfig.stopSequences[{j}]': at most {MAX_STOP_CHARS} "
                                 "characters.", f"generationConfig.stopSequences[{j}]")
        if stop:
            out.append(stop)
    return tuple(out)


def _max_tokens(config: Mapping[str, Any]) -> int | None:
    value = _get(config, "maxOutputTokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestInvalid("Invalid value at 'generationConfig.maxOutputTokens': expected a positive integer.",
                             "generationConfig.maxOutputTokens")
    return value


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    turn: Turn
    options: GeminiOptions
    blocks: tuple[tuple[Mapping[str, Any], str], ...]  # inlineData / fileData parts, for `attachments_of`


def to_turn(body: Any, name: str, models: GeminiModels, request_id: str, *, stream: bool) -> ParsedRequest:
    """A `generateContent` body for model `name` → `Turn`; raises `RequestInvalid` (400) or `ModelNotFound`."""
    if not isinstance(body, dict):
        raise RequestInvalid(f"Invalid JSON payload: expected an object, got {json_type(body)}.", None,
                             "invalid_type")
    if "generateContentRequest" in body or "generate_content_request" in body:  # countTokens' wrapped form
        inner = _obj(_get(body, "generateContentRequest"), "generateContentRequest")
        body = {**inner, "contents": inner.get("contents", body.get("contents"))}
    spec = models.resolve(name)
    if spec is None:
        raise ModelNotFound(name)
    if _get(body, "cachedContent"):
        raise RequestInvalid("Invalid value at 'cachedContent': cached contents are not stored by this gateway; send "
                             "the contents.", "cachedContent", "unsupported_value")
    conversation = _Conversation()
    system = _system(_get(body, "systemInstruction"))
    if system:
        conversation.messages.append(Message(role="system", content=system))
    contents = _list(body.get("contents"), "contents")
    if not contents:
        raise RequestInvalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    for i, content in enumerate(contents):
        conversation.add(content, f"contents[{i}]")
    config = _obj(_get(body, "generationConfig"), "generationConfig")
    count = _get(config, "candidateCount")
    if count not in (None, 1):
        raise RequestInvalid("Invalid value at 'generationConfig.candidateCount': only 1 candidate is served.",
                             "generationConfig.candidateCount", "unsupported_value")
    tools, search = _tools(body.get("tools"))
    choice, tools = _tool_choice(_get(body, "toolConfig"), tools)
    thinking, include = _thinking(config)
    if thinking is not None and thinking != spec.thinking:
        spec = dataclasses.replace(spec, thinking=thinking)
    if search and not spec.search:
        spec = dataclasses.replace(spec, search=True)
    turn = Turn(request_id=request_id, model=spec, model_name=name, messages=tuple(conversation.messages),
                stream=stream, stop=_stops(_get(config, "stopSequences")), max_tokens=_max_tokens(config),
                tools=tools, tool_choice=choice, response_format=_response_format(config))
    return ParsedRequest(turn, GeminiOptions(include_thoughts=include, search=search), tuple(conversation.blocks))


async def attachments_of(blocks: tuple[tuple[Mapping[str, Any], str], ...],
                         policy: AttachmentPolicy) -> tuple[Attachment, ...]:
    """The `inlineData` / `fileData` parts → checked attachments (400/413 naming the part)."""
    if len(blocks) > policy.max_files:
        raise RequestInvalid(f"contents: {len(blocks)} files; at most {policy.max_files} per request "
                             "(files.max_files).", "contents", "too_many_files")
    try:
        return tuple([await _attachment(part, at, policy, n) for n, (part, at) in enumerate(blocks, 1)])
    except AttachmentError as exc:
        raise from_attachment(exc) from None
