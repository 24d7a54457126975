"""The tool prompt: a compact catalog, the call format with one real example, a reminder, history rendering.

The model is asked for ASCII-pipe DSML (`<|DSML|tool_calls>` …), the shape DeepSeek V3.2/V4 were
trained on, written with ASCII pipes: the web backend keeps them as text, and the models write
it reliably (docs/tools.md). One parameter element per argument keeps code bodies out of JSON
escaping; `string="true"` marks a raw value. The parser accepts this and every other variant.

The catalog is one line per parameter (type, required, allowed values, nested objects summarised),
never raw JSON Schema: agents declare dozens of tools and the prompt must stay small.

Everything returned here is TRUSTED prompt text: markup written by the gateway, with every piece
of client text inside it (descriptions, argument values, tool results, schemas) already passed
through `guard`, the same rule as `chat.prompt.neutralize` plus the `</|` closers and the key of the
whole-message JSON call (`"tool_calls"` gets a zero-width space). Insert it without neutralising it
again, or the markup is destroyed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .spec import (
    AUTO,
    ResponseFormat,
    ToolCallRecord,
    ToolChoice,
    ToolChoiceMode,
    ToolKind,
    ToolSpec,
)

OPEN_BLOCK = "<|DSML|tool_calls>"
CLOSE_BLOCK = "</|DSML|tool_calls>"
_FULLWIDTH_BAR = "\uff5c"
_ZWSP = "\u200b"
_UNSAFE = re.compile(r"<(?=[ \t]{0,3}/?[ \t]{0,3}(?:[|‖]|dsml)|/?think>|!\[CDATA\[)", re.IGNORECASE)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_MAX_DEPTH = 2
_JSON_CALLS_KEY = '"tool_calls"'  # what the sieve recognises at the start of an answer (sieve.py)
_JSON_CALLS_GUARDED = '"tool' + _ZWSP + '_calls"'


def guard(text: str) -> str:
    """Client text made unable to form DeepSeek control tokens or our markup (see the module doc)."""
    if _FULLWIDTH_BAR in text:
        text = text.replace(_FULLWIDTH_BAR, "|")
    if "<" in text:
        text = _UNSAFE.sub("<" + _ZWSP, text)
    if _JSON_CALLS_KEY in text:  # the whole-message JSON call spelling: a model repeating it makes no call
        text = text.replace(_JSON_CALLS_KEY, _JSON_CALLS_GUARDED)
    return text


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------- catalog

def _resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            return node
    return schema


def type_summary(schema: Any, root: Mapping[str, Any], depth: int = 0) -> str:
    """`string`, `integer | null`, `array of string`, `object {a: string, b?: integer}` …"""
    if depth > _MAX_DEPTH + 2:  # a recursive schema (a tree of arrays): stop describing
        return "any"
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return " | ".join(dict.fromkeys(type_summary(o, root, depth) for o in options))
    if "const" in schema:
        return _encode(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(type_summary({**schema, "type": k}, root, depth) for k in kind)
    if kind is None:
        kind = "object" if "properties" in schema else ("array" if "items" in schema else None)
    if kind is None and isinstance(schema.get("enum"), list):
        return "one of " + ", ".join(_encode(v) for v in schema["enum"])
    if kind == "array":
        items = schema.get("items")
        return "array of " + type_summary(items, root, depth + 1) if isinstance(items, Mapping) and items \
            else "array"
    if kind == "object":
        props = schema.get("properties")
        if isinstance(props, Mapping) and props and depth < _MAX_DEPTH:
            required = set(schema.get("required") or ())
            inner = ", ".join(f"{name}{'' if name in required else '?'}: {type_summary(sub, root, depth + 1)}"
                              for name, sub in props.items())
            return "object {" + inner + "}"
        return "object"
    text = str(kind) if kind else "any"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and depth > 0:
        text += " (" + "|".join(str(v) for v in enum) + ")"
    return text


def parameter_line(name: str, schema: Any, required: bool, root: Mapping[str, Any], limit: int) -> str:
    """`- name (type, required, one of: "a", "b", default: 3): description`"""
    resolved = _resolve(schema, root)
    flags = [type_summary(resolved, root)]
    if required:
        flags.append("required")
    enum = resolved.get("enum")
    if isinstance(enum, list) and enum and "one of" not in flags[0]:
        flags.append("one of: " + ", ".join(_encode(v) for v in enum))
    if "default" in resolved:
        flags.append("default: " + _encode(resolved["default"]))
    line = f"- {name} ({', '.join(flags)})"
    description = resolved.get("description")
    if isinstance(description, str) and description.strip():
        line += ": " + _one_line(description, limit)
    return guard(line)


def tool_entry(tool: ToolSpec, *, description_chars: int = 1024, parameter_chars: int = 200) -> str:
    """One tool of the catalog: heading, description, one line per parameter."""
    lines = [f"### {guard(tool.name)}" + (" (freeform)" if tool.kind is ToolKind.CUSTOM else "")]
    if tool.description.strip():
        lines.append(guard(_one_line(tool.description, description_chars)))
    if tool.kind is ToolKind.CUSTOM:
        lines.append("- input (raw text, required): the whole input, written exactly")
        return "\n".join(lines)
    params = tool.parameters
    props = params.get("properties")
    required = set(params.get("required") or ())
    if isinstance(props, Mapping) and props:
        for name, schema in props.items():
            lines.append(parameter_line(str(name), schema, name in required, params, parameter_chars))
    else:
        lines.append("- (no parameters)")
    return "\n".join(lines)


# ---------------------------------------------------------------- the example and history markup

def _example_value(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    schema = _resolve(schema, root)
    if "default" in schema:
        return schema["default"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example_value(schema[key][0], root, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        items = schema.get("items")
        return [_example_value(items, root, depth + 1)] if isinstance(items, Mapping) and depth < 3 else []
    if kind == "object":
        props = schema.get("properties")
        if isinstance(props, Mapping) and depth < 3:
            required = schema.get("required") or list(props)[:1]
            return {k: _example_value(props[k], root, depth + 1) for k in required if k in props}
        return {}
    return "example text"


def example_arguments(tool: ToolSpec) -> dict[str, Any]:
    """Arguments that fit the tool's schema: required parameters (or the first one) with plain values."""
    props = tool.parameters.get("properties")
    if not isinstance(props, Mapping) or not props:
        return {}
    names = [k for k in (tool.parameters.get("required") or ()) if k in props] or list(props)[:1]
    if all(_resolve(props[k], tool.parameters).get("type") == "string" for k in names):
        # show a string="false" value too, when the tool has one
        names += [k for k in props if _resolve(props[k], tool.parameters).get("type") not in ("string", None)][:1]
    return {name: _example_value(props[name], tool.parameters) for name in names}


def render_invoke(name: str, arguments: Mapping[str, Any] | str, kind: ToolKind = ToolKind.FUNCTION) -> str:
    """One `invoke` in the markup the prompt asks for (raw strings, JSON for everything else)."""
    lines = [f'<|DSML|invoke name="{guard(name)}">']
    if isinstance(arguments, str):
        key = "input" if kind is ToolKind.CUSTOM else "arguments"
        flag = "true" if kind is ToolKind.CUSTOM else "false"
        lines.append(f'<|DSML|parameter name="{key}" string="{flag}">{guard(arguments)}</|DSML|parameter>')
    else:
        for key, value in arguments.items():
            if isinstance(value, str):
                lines.append(f'<|DSML|parameter name="{guard(key)}" string="true">{guard(value)}</|DSML|parameter>')
            else:
                lines.append(f'<|DSML|parameter name="{guard(key)}" string="false">{guard(_encode(value))}'
                             "</|DSML|parameter>")
    lines.append("</|DSML|invoke>")
    return "\n".join(lines)


def render_calls(calls: Sequence[ToolCallRecord], tools: Sequence[ToolSpec] = ()) -> str:
    """Past calls of an assistant message, re-rendered in the prompt's markup (one block)."""
    kinds = {tool.name: tool.kind for tool in tools}
    invokes: list[str] = []
    for call in calls:
        kind = kinds.get(call.name, ToolKind.FUNCTION)
        arguments: Mapping[str, Any] | str = call.arguments
        if kind is ToolKind.FUNCTION:
            try:
                decoded = json.loads(call.arguments) if call.arguments.strip() else {}
            except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
                decoded = None
            if isinstance(decoded, dict):
                arguments = decoded
        invokes.append(render_invoke(call.name, arguments, kind))
    return "\n".join([OPEN_BLOCK, *invokes, CLOSE_BLOCK])


def render_result(call_id: str, name: str, content: str, *, is_error: bool = False) -> str:
    """A tool result for the history, tagged with the call id and the tool name."""
    error = ' error="true"' if is_error else ""
    return (f'<|DSML|tool_result id="{guard(call_id)}" name="{guard(name)}"{error}>\n'
            f"{guard(content)}\n</|DSML|tool_result>")


# ---------------------------------------------------------------- the instructions

def _offered(tools: Sequence[ToolSpec], choice: ToolChoice) -> list[ToolSpec]:
    if choice.mode is ToolChoiceMode.NAMED and choice.name:
        named = [tool for tool in tools if tool.name == choice.name]
        return named or list(tools)
    return list(tools)


def _example_tool(tools: Sequence[ToolSpec]) -> ToolSpec:
    for tool in tools:
        if tool.kind is ToolKind.FUNCTION and example_arguments(tool):
            return tool
    return tools[0]


def tools_prompt(tools: Sequence[ToolSpec], choice: ToolChoice = AUTO, *, parallel: bool = True,
                 description_chars: int = 1024, parameter_chars: int = 200) -> str | None:
    """The system-side tool instructions, or None when nothing is to be injected (no tools, choice none)."""
    if not tools or choice.mode is ToolChoiceMode.NONE:
        return None
    offered = _offered(tools, choice)
    example = _example_tool(offered)
    if example.kind is ToolKind.CUSTOM:
        example_block = render_invoke(example.name, "example input", ToolKind.CUSTOM)
    else:
        example_block = render_invoke(example.name, example_arguments(example))
    rules = [
        ("- One invoke per call, one parameter element per argument. string=\"true\": the value is raw text, "
        "written exactly as it must arrive (no quotes, no escaping; code and file contents verbatim). "
        "string=\"false\": the value is JSON (number, boolean, null, array or object)."),
        "- Several invokes in one block run in parallel." if parallel
        else "- Call one tool at a time: exactly one invoke per block.",
        ("- After the block, stop: the results come back in the next message. Never write a tool result "
        "yourself, never put the block in a code fence. Only the tools listed below exist."),
    ]
    if choice.mode is ToolChoiceMode.REQUIRED:
        rules.append("- You must call at least one tool in this answer.")
    elif choice.mode is ToolChoiceMode.NAMED and choice.name:
        rules.append(f'- You must call the tool "{guard(choice.name)}" in this answer.')
    else:
        rules.append("- If no tool is needed, answer normally without a block.")
    catalog = "\n\n".join(tool_entry(tool, description_chars=description_chars,
                                     parameter_chars=parameter_chars) for tool in offered)
    return ("# Tools\n"
            "You can call tools. To call tools, end your answer with a block in exactly this format "
            "(ASCII | pipes), for example:\n\n"
            f"{OPEN_BLOCK}\n{example_block}\n{CLOSE_BLOCK}\n\n"
            "Rules:\n" + "\n".join(rules) + "\n\n## Available tools\n\n" + catalog)


def reminder(tools: Sequence[ToolSpec], choice: ToolChoice = AUTO) -> str | None:
    """A short line for the end of the last user turn (None when no tool prompt is injected)."""
    if not tools or choice.mode is ToolChoiceMode.NONE:
        return None
    if choice.mode is ToolChoiceMode.REQUIRED:
        return f"(Call a tool now: answer with a {OPEN_BLOCK} block.)"
    if choice.mode is ToolChoiceMode.NAMED and choice.name:
        return f'(Call the tool "{guard(choice.name)}" now: answer with a {OPEN_BLOCK} block.)'
    return f"(Answer directly, or call tools with a {OPEN_BLOCK} block at the end.)"


def response_format_prompt(fmt: ResponseFormat | None) -> str | None:
    """The instruction for `response_format` json_object / json_schema (None for text)."""
    if fmt is None or fmt.kind == "text":
        return None
    head = "Answer with one JSON object and nothing else: no prose before or after it, no code fence."
    if fmt.kind == "json_object" or fmt.schema is None:
        return head
    name = f' "{guard(fmt.name)}"' if fmt.name else ""
    return (f"{head} The object must be valid against this JSON Schema{name}"
            + (" (strictly: every required property, no other properties)" if fmt.strict else "")
            + ":\n" + guard(_encode(dict(fmt.schema))))
