"""Chat-completions tool parameters → the surface-neutral tool vocabulary (chat/tools/spec.py).

`tools` / `tool_choice` / `parallel_tool_calls`, the legacy `functions` / `function_call`, assistant
`tool_calls` history and `response_format`. Every mistake is a 400 naming the OpenAI `param` path
(`tools[2].function.name`, `tool_choice`, `response_format.json_schema.schema`); the rules on names
and schemas are the shared ones of chat/tools/declared.py, so every surface judges alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...chat.tools.declared import check_declared
from ...chat.tools.spec import (
    AUTO,
    ResponseFormat,
    ToolCallRecord,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from ...chat.tools.structured import schema_error
from ...jsontypes import json_type
from ..errors import RequestInvalid

_EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}
_CHOICES = {"none": ToolChoiceMode.NONE, "auto": ToolChoiceMode.AUTO, "required": ToolChoiceMode.REQUIRED}


@dataclass(frozen=True, slots=True)
class ToolParams:
    """What the request declared about tools. `legacy`: it used `functions`, so the answer uses
    `function_call` (one call, finish_reason "function_call") as the legacy API did."""

    tools: tuple[ToolSpec, ...] = ()
    choice: ToolChoice = AUTO
    parallel: bool = True
    legacy: bool = False


def _wrong_type(param: str, expected: str, value: Any) -> RequestInvalid:
    return RequestInvalid(f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
                          param, "invalid_type")


def _function_spec(function: Any, at: str) -> ToolSpec:
    """`{name, description?, parameters?, strict?}` (a tool's `function`, or a legacy `functions[i]`)."""
    if not isinstance(function, Mapping):
        raise _wrong_type(at, "an object", function)
    name = function.get("name")
    if name is not None and not isinstance(name, str):
        raise _wrong_type(f"{at}.name", "a string", name)
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise _wrong_type(f"{at}.description", "a string", description)
    parameters = function.get("parameters")
    if parameters is None:
        parameters = _EMPTY_SCHEMA
    elif not isinstance(parameters, Mapping):
        raise _wrong_type(f"{at}.parameters", "a JSON Schema object", parameters)
    return ToolSpec(name=name or "", description=description or "", parameters=parameters)


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("tools", "an array of tools", value)
    specs: list[ToolSpec] = []
    for i, tool in enumerate(value):
        at = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise _wrong_type(at, "an object", tool)
        kind = tool.get("type", "function")
        if kind != "function":
            raise RequestInvalid(f"Invalid value: {json.dumps(kind)}. Only 'function' tools are supported here.",
                                 f"{at}.type", "invalid_value")
        if "function" not in tool:
            raise RequestInvalid(f"Missing required parameter: '{at}.function'.", f"{at}.function",
                                 "missing_required_parameter")
        specs.append(_function_spec(tool["function"], f"{at}.function"))
    return tuple(specs)


def _functions(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("functions", "an array of functions", value)
    return tuple(_function_spec(function, f"functions[{i}]") for i, function in enumerate(value))


def _named(function: Any, param: str) -> ToolChoice:
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise RequestInvalid(f"Invalid '{param}': a named choice needs the function's name.", param,
                             "invalid_value")
    return ToolChoice(ToolChoiceMode.NAMED, name)


def _choice(value: Any, param: str, tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice, tuple[ToolSpec, ...]]:
    """`none|auto|required`, `{type:"function", function:{name}}`, or `{type:"allowed_tools", …}`
    (which narrows the tools). The legacy `function_call` is `none|auto|{name}`."""
    if value is None:
        return AUTO, tools
    if isinstance(value, str):
        mode = _CHOICES.get(value)
        if mode is None or (param == "function_call" and mode is ToolChoiceMode.REQUIRED):
            allowed = "'none', 'auto'" + ("" if param == "function_call" else ", 'required'")
            raise RequestInvalid(f"Invalid value: {json.dumps(value)}. Supported values are: {allowed} or a "
                                 "named function.", param, "invalid_value")
        return ToolChoice(mode), tools
    if not isinstance(value, Mapping):
        raise _wrong_type(param, "a string or an object", value)
    if param == "function_call":
        return _named(value, param), tools
    kind = value.get("type", "function")
    if kind == "function":
        return _named(value.get("function"), f"{param}.function.name"), tools
    if kind == "allowed_tools":
        narrowed = value.get("allowed_tools")
        if not isinstance(narrowed, Mapping) or not isinstance(narrowed.get("tools"), list):
            raise RequestInvalid("Invalid 'tool_choice.allowed_tools': expected {mode, tools}.",
                                 f"{param}.allowed_tools", "invalid_value")
        names = {str(_named(t.get("function") if isinstance(t, Mapping) else None,
                            f"{param}.allowed_tools.tools").name) for t in narrowed["tools"]}
        mode = _CHOICES.get(str(narrowed.get("mode", "auto")), ToolChoiceMode.AUTO)
        return ToolChoice(mode), tuple(t for t in tools if t.name in names)
    raise RequestInvalid(f"Invalid value: {json.dumps(kind)}. Supported tool_choice types are 'function' and "
                         "'allowed_tools'.", f"{param}.type", "invalid_value")


def tool_params(body: Mapping[str, Any]) -> ToolParams:
    """Read and check the request's tool fields (raises `RequestInvalid`)."""
    legacy = body.get("tools") is None and body.get("functions") is not None
    if legacy:
        tools = _functions(body.get("functions"))
        choice, tools = _choice(body.get("function_call"), "function_call", tools)
        names, choice_param = "functions[{i}].name", "function_call"
        schemas = "functions[{i}].parameters"
    else:
        tools = _tools(body.get("tools"))
        choice, tools = _choice(body.get("tool_choice"), "tool_choice", tools)
        names, choice_param = "tools[{i}].function.name", "tool_choice"
        schemas = "tools[{i}].function.parameters"
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _wrong_type("parallel_tool_calls", "a boolean", parallel)
    problem = check_declared(tools, choice)
    if problem is not None:
        if problem.about_choice:
            param = choice_param
        else:
            param = (schemas if problem.about_schema else names).format(i=problem.index)
        raise RequestInvalid(f"Invalid '{param}': {problem.message}.", param, "invalid_value")
    return ToolParams(tools, choice, parallel is not False and not legacy, legacy)


def response_format(value: Any) -> ResponseFormat | None:
    """`{type: text | json_object | json_schema {name, schema, strict}}` (raises `RequestInvalid`)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _wrong_type("response_format", "an object", value)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise RequestInvalid(f"Invalid value: {json.dumps(kind)}. Supported values are: 'text', 'json_object' and "
                             "'json_schema'.", "response_format.type", "invalid_value")
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping):
        raise RequestInvalid("Missing required parameter: 'response_format.json_schema'.",
                             "response_format.json_schema", "missing_required_parameter")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise _wrong_type("response_format.json_schema.name", "a string", name)
    schema = spec.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise _wrong_type("response_format.json_schema.schema", "a JSON Schema object", schema)
        problem = schema_error(schema)
        if problem is not None:
            raise RequestInvalid(f"Invalid 'response_format.json_schema.schema': {problem}.",
                                 "response_format.json_schema.schema", "invalid_value")
    strict = spec.get("strict")
    return ResponseFormat("json_schema" if schema is not None else "json_object", schema, name, strict is True)


def history_calls(message: Mapping[str, Any], at: str) -> tuple[ToolCallRecord, ...]:
    """An assistant message's `tool_calls` (or legacy `function_call`) as records for the prompt.

    A call without an id gets one made from its position, so its result can still be matched.
    """
    calls: list[ToolCallRecord] = []
    raw = message.get("tool_calls")
    entries: Sequence[Any] = raw if isinstance(raw, list) else ()
    legacy = message.get("function_call")
    if not entries and isinstance(legacy, Mapping):
        entries = [{"function": legacy}]
    for j, entry in enumerate(entries):
        where = f"{at}.tool_calls[{j}]"
        if not isinstance(entry, Mapping):
            raise _wrong_type(where, "an object", entry)
        function = entry.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise RequestInvalid(f"Missing required parameter: '{where}.function.name'.", f"{where}.function.name",
                                 "missing_required_parameter")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        call_id = entry.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = synthetic_call_id(at, j)
        calls.append(ToolCallRecord(call_id, function["name"], arguments))
    return tuple(calls)


def synthetic_call_id(at: str, j: int = 0) -> str:
    """The id of a history call that came without one (`messages[3]`, 0 → `call_m3_0`)."""
    return "call_m" + "".join(ch for ch in at if ch.isdigit()) + f"_{j}"
