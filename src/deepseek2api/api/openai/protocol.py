"""OpenAI Chat Completions wire format, request side: models, validation, and the `Turn` they become.

Wire types stay at the edge: `to_turn` turns a validated request into the surface-neutral `Turn`
(content parts flattened, DeepSeek's override switches folded into the model, `stop` normalised);
render.py turns output back into OpenAI JSON. Rules followed (see docs/clients.md): unknown
request keys are accepted and ignored; only what would silently change semantics is rejected,
always as a 400 with a specific message and the OpenAI `param` path.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ...chat.attachments import Attachment, AttachmentError, AttachmentPolicy, from_block
from ...chat.prompt import content_text
from ...chat.stops import MAX_STOP_CHARS, MAX_STOP_SEQUENCES
from ...chat.tools.spec import ToolCallRecord
from ...chat.turn import Message, ModelRegistry, ModelSpec, Turn
from ...jsontypes import json_type
from ..errors import RequestInvalid, error_body, from_attachment
from .tool_params import history_calls, response_format, tool_params

ROLES = ("system", "developer", "user", "assistant", "tool", "function")

_UNSUPPORTED_PARTS = {
    "input_audio": "audio input",
}
_FILE_PARTS = ("image_url", "file")  # become attachments (`attachments_of`), user messages only


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)




# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ModelNotFound(RequestInvalid):
    """The requested model name is not served: 404 `model_not_found` (openai's NotFoundError).

    A `RequestInvalid` subclass so one `except RequestInvalid` maps both to the envelope; read
    `.status` for the HTTP status.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(
            f"The model '{model}' does not exist or you do not have access to it. "
            "GET /v1/models lists the available models.",
            "model",
            "model_not_found",
            status=404,
        )


# --------------------------------------------------------------------------------------------
# Request models
# --------------------------------------------------------------------------------------------


class ContentPart(BaseModel):
    """One element of a content array; only `text` parts reach the prompt."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`. Every field not named here is accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    thinking: dict[str, Any] | bool | None = None
    reasoning_effort: str | None = None
    web_search_options: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    tools: Any = None  # tool fields are read by tool_params.py (param paths in its 400s)
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: Any = None


# --------------------------------------------------------------------------------------------
# DeepSeek's switches and OpenAI's `stop`
# --------------------------------------------------------------------------------------------


def _thinking_switch(value: Any) -> bool | None:
    """DeepSeek's `thinking` switch: {"type": "enabled"|"disabled"} (also a bare bool)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        kind = value.get("type")
        if isinstance(kind, str):
            kind = kind.lower()
            if kind == "enabled":
                return True
            if kind == "disabled":
                return False
    return None


V4_EFFORTS = frozenset({"low", "medium", "high", "max", "xhigh"})


def _v4_name(name: Any) -> bool:
    """A model name of the official API since 2026 (`deepseek-v4-flash`, `deepseek-v4-pro` …)."""
    return isinstance(name, str) and name.strip().lower().startswith("deepseek-v4")


def apply_overrides(spec: ModelSpec, body: Mapping[str, Any]) -> ModelSpec:
    """Fold per-request switches into the model spec.

    Precedence: an explicit `thinking` object (DeepSeek's API, sent via the SDK's `extra_body`) wins;
    otherwise `reasoning_effort: "none"` (or "minimal") turns thinking off; with a V4 model name
    (`deepseek-v4-flash`, `deepseek-v4-pro`) low/medium/high/max turn it on, as on the official API;
    with the older names any other effort leaves the model's default alone (clients send efforts by
    habit; the web chat has no effort dial). A present,
    non-null `web_search_options` turns search on.
    """
    thinking = _thinking_switch(body.get("thinking"))
    if thinking is None:
        effort = body.get("reasoning_effort")
        effort = effort.strip().lower() if isinstance(effort, str) else None
        if effort in ("none", "minimal"):
            thinking = False
        elif effort in V4_EFFORTS and _v4_name(body.get("model")):
            thinking = True  # the official V4 API's efforts all mean thinking mode
    search = True if body.get("web_search_options") is not None else None
    thinking = spec.thinking if thinking is None else thinking
    search = spec.search if search is None else search
    if thinking == spec.thinking and search == spec.search:
        return spec
    return dataclasses.replace(spec, thinking=thinking, search=search)


def stop_sequences(stop: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalise OpenAI's `stop` (string or list) to a tuple; empty strings are dropped."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    return tuple(s for s in stop if isinstance(s, str) and s)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _json_type(value: Any) -> str:
    return json_type(value)


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
        "invalid_type",
    )


def _missing(param: str) -> RequestInvalid:
    return RequestInvalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _required_str(obj: Mapping[str, Any], key: str, at: str) -> str:
    """A required string field of a message or content part (`at` is its param path)."""
    value = obj.get(key)
    if value is None:
        raise _missing(f"{at}.{key}")
    if not isinstance(value, str):
        raise _wrong_type(f"{at}.{key}", "a string", value)
    return value


def _optional(body: Mapping[str, Any], key: str, kinds: tuple[type, ...], expected: str) -> Any:
    """Check an optional field's JSON type (bool is not an integer here)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise _wrong_type(key, expected, value)
    if not isinstance(value, kinds):
        raise _wrong_type(key, expected, value)
    return value


def _check_file_part(part: Mapping[str, Any], kind: str, at: str, role: str) -> None:
    """The shape of an `image_url` / `file` part (its bytes are checked by `attachments_of`)."""
    if role != "user":
        raise RequestInvalid(f"Content part type '{kind}' is only allowed in user messages.", f"{at}.type",
                             "invalid_value")
    inner = part.get(kind)
    if inner is None:
        raise _missing(f"{at}.{kind}")
    if not isinstance(inner, dict):
        raise _wrong_type(f"{at}.{kind}", "an object", inner)
    if kind == "image_url":
        _required_str(inner, "url", f"{at}.image_url")
        return
    if inner.get("file_id") is not None and inner.get("file_data") is None:
        raise RequestInvalid("'file_id' (OpenAI's Files API) is not supported: send the file inline as "
                             "'file_data' (base64 or a data: URL).", f"{at}.file.file_id", "unsupported_value")
    _required_str(inner, "file_data", f"{at}.file")
    if inner.get("filename") is not None and not isinstance(inner.get("filename"), str):
        raise _wrong_type(f"{at}.file.filename", "a string", inner.get("filename"))


def _check_content(content: Any, where: str, role: str = "user") -> bool:
    """Check a message's content; True when it carries a file or image part."""
    if content is None or isinstance(content, str):
        return False
    has_file = False
    if not isinstance(content, list):
        raise _wrong_type(where, "a string, an array of content parts or null", content)
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(at, "an object", part)
        kind = _required_str(part, "type", at)
        if kind == "text":
            _required_str(part, "text", at)
        elif kind == "refusal":
            continue  # an earlier assistant refusal: accepted, not part of the prompt
        elif kind in _FILE_PARTS:
            _check_file_part(part, kind, at, role)
            has_file = True
        elif kind in _UNSUPPORTED_PARTS:
            raise RequestInvalid(
                f"Content part type '{kind}' ({_UNSUPPORTED_PARTS[kind]}) is not supported: "
                "this gateway accepts text content only.",
                f"{at}.type",
                "unsupported_value",
            )
        else:
            raise RequestInvalid(
                f"Invalid value: '{kind}'. Supported content part types are: 'text', 'image_url', 'file' and "
                "'refusal'.",
                f"{at}.type",
                "invalid_value",
            )
    return has_file


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of messages", messages)
    if not messages:
        raise RequestInvalid(
            "Invalid 'messages': empty array. Expected at least one message.", "messages", "empty_array"
        )
    has_text = False
    for i, message in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(at, "an object", message)
        role = _required_str(message, "role", at)
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f" and '{ROLES[-1]}'"
            raise RequestInvalid(
                f"Invalid value: '{role}'. Supported values are: {supported}.", f"{at}.role", "invalid_value"
            )
        content = message.get("content")
        if _check_content(content, f"{at}.content", role):
            has_text = True  # an image or a file is something to send
        for key, expected, kinds in (
            ("name", "a string", (str,)),
            ("reasoning_content", "a string", (str,)),
            ("tool_call_id", "a string", (str,)),
            ("tool_calls", "an array", (list,)),
        ):
            value = message.get(key)
            if value is not None and not isinstance(value, kinds):
                raise _wrong_type(f"{at}.{key}", expected, value)
        if not has_text and content_text(content).strip():
            has_text = True
    if not has_text:
        raise RequestInvalid(
            "Invalid 'messages': no message contains any text, so there is nothing to send.",
            "messages",
            "invalid_value",
        )


def _check_fields(body: Mapping[str, Any]) -> None:
    _optional(body, "stream", (bool,), "a boolean")
    options = _optional(body, "stream_options", (dict,), "an object")
    if options is not None and options.get("include_usage") is not None \
            and not isinstance(options["include_usage"], bool):
            raise _wrong_type("stream_options.include_usage", "a boolean", options["include_usage"])

    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list):
            raise _wrong_type("stop", "a string, an array of strings or null", stop)
        if len(stop) > MAX_STOP_SEQUENCES:
            raise RequestInvalid(
                f"Invalid 'stop': array too long. Expected at most {MAX_STOP_SEQUENCES} stop sequences, "
                f"but got {len(stop)}.",
                "stop",
                "array_above_max_length",
            )
        for j, item in enumerate(stop):
            if not isinstance(item, str):
                raise _wrong_type(f"stop[{j}]", "a string", item)
    for j, item in enumerate([stop] if isinstance(stop, str) else stop or ()):
        if len(item) > MAX_STOP_CHARS:
            raise RequestInvalid(
                f"Invalid 'stop': a stop sequence is {len(item)} characters long; at most {MAX_STOP_CHARS} "
                "are allowed.",
                "stop" if isinstance(stop, str) else f"stop[{j}]",
                "string_above_max_length",
            )

    n = _optional(body, "n", (int,), "an integer")
    if n is not None:
        if n < 1:
            raise RequestInvalid(f"Invalid 'n': {n}. Expected a value of at least 1.", "n", "invalid_value")
        if n > 1:
            raise RequestInvalid(
                f"n={n} is not supported: this gateway returns exactly one choice per request.",
                "n",
                "unsupported_value",
            )

    if _optional(body, "logprobs", (bool,), "a boolean"):
        raise RequestInvalid(
            "logprobs are not supported: DeepSeek's web chat does not return token probabilities.",
            "logprobs",
            "unsupported_value",
        )
    top = _optional(body, "top_logprobs", (int,), "an integer")
    if top:
        raise RequestInvalid(
            "top_logprobs is not supported: DeepSeek's web chat does not return token probabilities.",
            "logprobs",
            "unsupported_value",
        )

    for key in ("max_tokens", "max_completion_tokens"):
        value = _optional(body, key, (int,), "an integer")
        if value is not None and value < 1:
            raise RequestInvalid(f"Invalid '{key}': {value}. Expected a value of at least 1.", key)

    modalities = _optional(body, "modalities", (list,), "an array of strings")
    if modalities is not None:
        for j, item in enumerate(modalities):
            if not isinstance(item, str):
                raise _wrong_type(f"modalities[{j}]", "a string", item)
        if "audio" in modalities:
            raise RequestInvalid(
                "Audio output is not supported: only the 'text' modality is available.",
                "modalities",
                "unsupported_value",
            )
    if _optional(body, "audio", (dict,), "an object") is not None:
        raise RequestInvalid(
            "Audio output is not supported: only text is returned.", "audio", "unsupported_value"
        )

    thinking = body.get("thinking")
    if thinking is not None and not isinstance(thinking, bool):
        if not isinstance(thinking, dict):
            raise _wrong_type("thinking", 'an object like {"type": "enabled"}', thinking)
        kind = thinking.get("type")
        if kind is not None and (not isinstance(kind, str) or kind.lower() not in ("enabled", "disabled")):
            raise RequestInvalid(
                f"Invalid value: {_dumps(kind)}. Supported values are: 'enabled' and 'disabled'.",
                "thinking.type",
                "invalid_value",
            )
    _optional(body, "reasoning_effort", (str,), "a string")
    _optional(body, "web_search_options", (dict,), "an object")


_UNION_TAGS = frozenset({"str", "int", "bool", "float", "dict", "list", "none", "null"})


def _param_from_loc(loc: Iterable[Any]) -> str | None:
    """("messages", 1, "content") → "messages[1].content", skipping pydantic's union-branch tags."""
    param = ""
    for item in loc:
        if isinstance(item, int):
            param += f"[{item}]"
        elif isinstance(item, str):
            if "[" in item or "(" in item or item in _UNION_TAGS or "-" in item:
                continue
            param += f".{item}" if param else item
    return param or None


def _from_validation_error(exc: ValidationError) -> RequestInvalid:
    error = exc.errors(include_url=False)[0]
    param = _param_from_loc(error.get("loc", ()))
    if error.get("type") == "missing" and param:
        return _missing(param)
    message = str(error.get("msg", "invalid value"))
    where = f"'{param}'" if param else "the request body"
    return RequestInvalid(f"Invalid value for {where}: {message}.", param, "invalid_value")


def validate_request(body: Any) -> ChatCompletionRequest:
    """Check a parsed JSON body; raise `RequestInvalid` with a specific message and `param`.

    The hand-written checks come first so that every likely mistake gets a clear message; pydantic
    then builds the typed model, and should it still object, only its first error is reported, in
    the same envelope (never its raw output).
    """
    if not isinstance(body, dict):
        raise RequestInvalid(
            f"The request body must be a JSON object, but got {_json_type(body)}.", None, "invalid_type"
        )
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    if not model.strip():
        raise RequestInvalid("Invalid 'model': empty string. Expected a model id.", "model", "invalid_value")
    _check_messages(body.get("messages"))
    _check_fields(body)
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


async def attachments_of(req: ChatCompletionRequest, policy: AttachmentPolicy) -> tuple[Attachment, ...]:
    """The `image_url` and `file` parts of the messages → checked attachments, in order (a remote
    image is fetched here, only when `files.fetch_remote` is on). Raises a 400/413 `ApiError` naming
    the part, e.g. `messages[1].content[0].image_url`."""
    found: list[Attachment] = []
    try:
        for i, message in enumerate(req.messages):
            if not isinstance(message.content, list):
                continue
            for j, part in enumerate(message.content):
                extra = part.model_extra or {}
                inner = extra.get(part.type)
                if part.type not in _FILE_PARTS or not isinstance(inner, dict):
                    continue
                at = f"messages[{i}].content[{j}].{part.type}"
                index = len(found) + 1
                if len(found) >= policy.max_files:
                    raise RequestInvalid(f"More than {policy.max_files} files or images in one request "
                                         "(files.max_files).", at, "too_many_files")
                if part.type == "image_url":
                    found.append(await from_block("image", part=at, policy=policy, url=inner["url"], index=index))
                    continue
                file_data, filename = inner["file_data"], inner.get("filename")
                if file_data[:5].lower() == "data:":
                    found.append(await from_block("document", part=at, policy=policy, url=file_data,
                                                  filename=filename, index=index))
                else:
                    found.append(await from_block("document", part=at, policy=policy, data=file_data,
                                                  filename=filename, index=index))
    except AttachmentError as exc:
        raise from_attachment(exc) from None
    return tuple(found)


def to_turn(req: ChatCompletionRequest, registry: ModelRegistry, request_id: str,
            attachments: tuple[Attachment, ...] = ()) -> Turn:
    """Validated wire request → surface-neutral `Turn` (raises `ModelNotFound`)."""
    spec = registry.resolve(req.model)
    if spec is None:
        raise ModelNotFound(req.model)
    spec = apply_overrides(
        spec,
        {
            "thinking": req.thinking,
            "reasoning_effort": req.reasoning_effort,
            "web_search_options": req.web_search_options,
            "model": req.model,
        },
    )
    declared = tool_params(req.model_dump(include={"tools", "tool_choice", "parallel_tool_calls", "functions",
                                                   "function_call"}))
    fmt = response_format(req.response_format)
    messages = tuple(_messages(req.messages))
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    return Turn(
        request_id=request_id,
        model=spec,
        model_name=req.model,
        messages=messages,
        stream=bool(req.stream),
        stop=stop_sequences(req.stop),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        max_tokens=max_tokens,
        tools=declared.tools,
        tool_choice=declared.choice,
        parallel_tool_calls=declared.parallel,
        response_format=fmt,
        attachments=attachments,
    )


def uses_legacy_functions(req: ChatCompletionRequest) -> bool:
    """The request declared `functions` (not `tools`): answer with `function_call` as that API did."""
    return req.tools is None and req.functions is not None


def _messages(messages: Iterable[ChatMessage]) -> Iterable[Message]:
    """Wire messages → `Message`s, with tool calls and results linked by call id.

    Legacy `function` results answer the latest earlier call of that name; results whose call is
    missing or out of order are kept as they are (the prompt tags each with its id and name).
    """
    legacy_ids: dict[str, str] = {}
    for i, m in enumerate(messages):
        calls: tuple[ToolCallRecord, ...] = ()
        if m.role == "assistant" and (m.tool_calls or (m.model_extra or {}).get("function_call")):
            calls = history_calls({"tool_calls": m.tool_calls,
                                   "function_call": (m.model_extra or {}).get("function_call")}, f"messages[{i}]")
            legacy_ids.update((call.name, call.id) for call in calls)
        call_id = m.tool_call_id
        if m.role == "function" and m.name:
            call_id = legacy_ids.get(m.name)
        yield Message(role=m.role, content=content_text(m.content), reasoning_content=m.reasoning_content,
                      name=m.name, tool_calls=calls, tool_call_id=call_id)


__all__ = ["ChatCompletionRequest", "ModelNotFound", "RequestInvalid", "apply_overrides", "attachments_of",
           "error_body", "stop_sequences", "to_turn", "uses_legacy_functions", "validate_request"]
