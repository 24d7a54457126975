"""Tool-call markup → validated calls: invoke bodies, value typing, schema coercion, declared names only.

The marker grammar is in `grammar.py`; finding blocks in a stream is the sieve's job (`sieve.py`).
This module turns one captured invoke (DSML or V3) or one whole-message JSON object into calls and
checks them against the declared tools. `parse_answer` runs the sieve over a complete answer, so the
non-streaming result is by construction the streaming one.

Values: `string="true"` → the raw text, every character kept (a file body arrives byte for byte);
`string="false"` → JSON; no attribute → typed by the parameter's schema ("3" → 3 for an integer,
JSON-looking text for objects and arrays). CDATA sections are unwrapped. A call to a tool that was
not declared, with a required key missing, or with arguments that do not validate, is rejected with
a `ProblemKind` (repair decides what happens next).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .grammar import CDATA_CLOSE, CDATA_OPEN, Tag, TagKind, scan_tag
from .jsonfix import loads_lenient, strip_fence
from .schemas import first_error
from .schemas import validator as compiled_validator
from .spec import ToolKind, ToolSpec

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ProblemKind(enum.StrEnum):
    UNDECLARED = "undeclared"              # the name is not one of the declared tools
    MISSING_REQUIRED = "missing_required"  # a required parameter is absent
    INVALID_ARGUMENTS = "invalid_arguments"  # arguments are not JSON / do not validate against the schema
    NO_NAME = "no_name"                    # an invoke without a usable name


@dataclass(frozen=True, slots=True)
class ParsedCall:
    """A call that passed every check. `arguments`: compact JSON object text, or raw text (custom tool)."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A call the model tried to make that cannot be returned as is."""

    kind: ProblemKind
    name: str
    detail: str
    raw: str  # the captured markup body (for the correction prompt and logs)


class ToolSet:
    """The declared tools of one turn, looked up by name, with their validators built once (lazily)."""

    def __init__(self, tools: Iterable[ToolSpec]) -> None:
        self.tools: tuple[ToolSpec, ...] = tuple(tools)
        self.by_name: dict[str, ToolSpec] = {tool.name: tool for tool in self.tools}
        self._folded = {tool.name.lower(): tool for tool in self.tools}
        self._validators: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self.tools)

    def resolve(self, name: str) -> ToolSpec | None:
        """The declared tool a model meant by `name` (exact, then `functions.` prefix or case dropped)."""
        name = name.strip()
        tool = self.by_name.get(name)
        if tool is None:
            for prefix in ("functions.", "function.", "tools."):
                if name.startswith(prefix):
                    tool = self.by_name.get(name[len(prefix):])
                    break
        if tool is None:
            tool = self._folded.get(name.lower())
        return tool

    def validator(self, tool: ToolSpec) -> Any:
        """A jsonschema validator for the tool's parameters, or None when the schema itself is invalid."""
        if tool.name not in self._validators:
            self._validators[tool.name] = compiled_validator(tool.parameters)  # made once per process
        return self._validators[tool.name]


# ---------------------------------------------------------------- invoke bodies

@dataclass(frozen=True, slots=True)
class RawParam:
    name: str
    value: str
    string: bool | None  # the `string=` attribute, None when absent


def unwrap_cdata(value: str) -> str:
    """The content of CDATA sections when the value consists of them (and whitespace); else `value`."""
    stripped = value.strip()
    if not stripped.startswith(CDATA_OPEN):
        return value
    parts: list[str] = []
    i = value.index(CDATA_OPEN)
    rest_ok = not value[:i].strip()
    while rest_ok:
        start = i + len(CDATA_OPEN)
        end = value.find(CDATA_CLOSE, start)
        if end < 0:
            parts.append(value[start:])
            break
        parts.append(value[start:end])
        i = value.find(CDATA_OPEN, end + 3)
        if i < 0:
            if value[end + 3:].strip():
                return value
            break
        if value[end + 3:i].strip():
            return value
    return "".join(parts) if rest_ok else value


def _find_param_close(body: str, start: int) -> tuple[int, int]:
    """(value end, resume index) of a parameter value starting at `start`; CDATA sections are opaque."""
    i = start
    n = len(body)
    while True:
        lt = body.find("<", i)
        if lt < 0:
            return _cut_partial_closer(body, start), n
        if body.startswith(CDATA_OPEN, lt):
            end = body.find(CDATA_CLOSE, lt + len(CDATA_OPEN))
            if end < 0:
                return n, n
            i = end + len(CDATA_CLOSE)
            continue
        tag = scan_tag(body, lt, final=True)
        if isinstance(tag, Tag):
            if tag.kind is TagKind.PARAM_CLOSE:
                return lt, tag.end
            if tag.kind in (TagKind.PARAM_OPEN, TagKind.INVOKE_CLOSE, TagKind.WRAP_CLOSE, TagKind.INVOKE_OPEN):
                # a closer went missing: the value ends before the next structural tag
                end = lt
                while end > start and body[end - 1] in " \t\r\n":
                    end -= 1
                return end, lt
        i = lt + 1


def _cut_partial_closer(body: str, start: int) -> int:
    """End of an unclosed value: before a closer the stream cut short (`</|DSML|para`), if any."""
    last = body.rfind("<", start)
    if last >= 0:
        tag = scan_tag(body, last, final=True)
        if isinstance(tag, Tag) and tag.end == len(body) and tag.kind in (
                TagKind.PARAM_CLOSE, TagKind.INVOKE_CLOSE, TagKind.WRAP_CLOSE, TagKind.OTHER):
            return last
    return len(body)


def dsml_params(body: str) -> tuple[list[RawParam], str]:
    """The parameters of a DSML invoke body, and the text outside any parameter (for a JSON fallback)."""
    params: list[RawParam] = []
    outside: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        lt = body.find("<", i)
        if lt < 0:
            outside.append(body[i:])
            break
        tag = scan_tag(body, lt, final=True)
        if not isinstance(tag, Tag):
            outside.append(body[i:lt + 1])
            i = lt + 1
            continue
        outside.append(body[i:lt])
        if tag.kind is TagKind.PARAM_OPEN:
            end, resume = _find_param_close(body, tag.end)
            string_attr = tag.attrs.get("string")
            flag = None if string_attr is None else string_attr.strip().lower() != "false"
            params.append(RawParam(tag.attrs.get("name", "").strip(), unwrap_cdata(body[tag.end:end]), flag))
            i = resume
        else:
            i = tag.end
    return params, "".join(outside)


# ---------------------------------------------------------------- values

def _schema_types(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    if not isinstance(schema, Mapping):
        return ()
    kind = schema.get("type")
    if isinstance(kind, str):
        return (kind,)
    if isinstance(kind, list):
        return tuple(k for k in kind if isinstance(k, str))
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            found: list[str] = []
            for option in options:
                found.extend(_schema_types(option))
            return tuple(found)
    if "properties" in schema:
        return ("object",)
    if isinstance(schema.get("enum"), list):
        return tuple({_json_type(v) for v in schema["enum"]})
    return ()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(value: Any, types: tuple[str, ...]) -> Any:
    """`value` converted to one of `types` when it fits (an integral float for "integer"), else a miss."""
    kind = _json_type(value)
    if kind in types:
        return value
    if kind == "integer" and "number" in types:
        return value
    if kind == "number" and "integer" in types and float(value).is_integer():
        return int(value)
    return _MISS


_MISS = object()
_WORDS = {"true": True, "false": False, "null": None, "none": None}


def _decode(text: str) -> tuple[bool, Any]:
    stripped = text.strip()
    if not stripped:
        return False, None
    try:
        return True, json.loads(stripped)
    except (ValueError, RecursionError):
        pass
    lowered = stripped.lower()
    if lowered in _WORDS:
        return True, _WORDS[lowered]
    if stripped[0] in "{[`":
        return loads_lenient(stripped)
    return False, None


def type_value(raw: str, string: bool | None, schema: Mapping[str, Any] | None) -> Any:
    """The typed value of one parameter (see the module docstring for the rules)."""
    types = _schema_types(schema)
    if string is True and (not types or "string" in types):
        return raw
    if not types:
        if string is False or raw.strip()[:1] in ("{", "["):
            ok, value = _decode(raw)
            return value if ok else raw
        return raw
    if types == ("string",) and string is None:
        return raw
    ok, value = _decode(raw)
    if ok:
        if "string" in types and isinstance(value, str):
            return value
        fitted = _fits(value, types)
        if fitted is not _MISS:
            return fitted
    return raw


def _property_schema(tool: ToolSpec, name: str) -> Mapping[str, Any] | None:
    props = tool.parameters.get("properties")
    if isinstance(props, Mapping):
        schema = props.get(name)
        if isinstance(schema, Mapping):
            return schema
    return None


def arguments_from_params(tool: ToolSpec, params: Sequence[RawParam]) -> dict[str, Any]:
    """Typed arguments; a repeated name collects into a list when the schema says array."""
    args: dict[str, Any] = {}
    for param in params:
        if not param.name:
            continue
        schema = _property_schema(tool, param.name)
        types = _schema_types(schema)
        if param.name in args and "array" in types:
            items = schema.get("items") if schema else None
            item = type_value(param.value, param.string, items if isinstance(items, Mapping) else None)
            previous = args[param.name]
            args[param.name] = (previous if isinstance(previous, list) else [previous]) + [item]
            continue
        value = type_value(param.value, param.string, schema)
        if "array" in types and not isinstance(value, list) and "string" not in types:
            items = schema.get("items") if schema else None
            value = [type_value(param.value, param.string, items if isinstance(items, Mapping) else None)]
        args[param.name] = value
    return args


def check_call(tools: ToolSet, name: str, args: Any, raw: str) -> ParsedCall | Problem:
    """Resolve the name, check the arguments (object, required keys, schema) and encode them."""
    if not name.strip():
        return Problem(ProblemKind.NO_NAME, "", "the invoke has no tool name", raw)
    tool = tools.resolve(name)
    if tool is None:
        return Problem(ProblemKind.UNDECLARED, name, f"no tool named {name!r} was declared", raw)
    if tool.kind is ToolKind.CUSTOM:
        text = args if isinstance(args, str) else _encode(args)
        return ParsedCall(tool.name, text)
    if not isinstance(args, dict):
        return Problem(ProblemKind.INVALID_ARGUMENTS, tool.name, "the arguments are not a JSON object", raw)
    required = tool.parameters.get("required")
    if isinstance(required, list):
        missing = [key for key in required if isinstance(key, str) and key not in args]
        if missing:
            return Problem(ProblemKind.MISSING_REQUIRED, tool.name,
                           "missing required parameter(s): " + ", ".join(missing), raw)
    validator = tools.validator(tool)
    if validator is not None:
        error = first_error(validator, args)
        if error is not None:
            return Problem(ProblemKind.INVALID_ARGUMENTS, tool.name, f"{error[0]}: {error[1]}"[:300], raw)
    return ParsedCall(tool.name, _encode(args))


def parse_dsml_invoke(tools: ToolSet, attrs: Mapping[str, str], body: str) -> ParsedCall | Problem:
    """One DSML `invoke` (attributes of its open tag, text up to its closer)."""
    name = attrs.get("name", "").strip()
    tool = tools.resolve(name) if name else None
    params, outside = dsml_params(body)
    if tool is not None and tool.kind is ToolKind.CUSTOM:
        if params:
            chosen = next((p for p in params if p.name == "input"), params[0])
            return check_call(tools, name, chosen.value, body)
        return check_call(tools, name, unwrap_cdata(body.strip("\n")), body)
    if tool is None:
        return check_call(tools, name, {}, body)
    if not params and outside.strip():
        ok, value = _decode(strip_fence(outside.strip()))
        if ok and isinstance(value, dict):
            return check_call(tools, name, value, body)
    return check_call(tools, name, arguments_from_params(tool, params), body)


def parse_v3_invoke(tools: ToolSet, body: str) -> ParsedCall | Problem:
    """One V3 call: `function<｜tool▁sep｜>NAME\\n```json {…}```` or V3.1 `NAME<｜tool▁sep｜>{…}`."""
    sep_at, sep_end = -1, -1
    i = 0
    while True:
        lt = body.find("<", i)
        if lt < 0:
            break
        tag = scan_tag(body, lt, final=True)
        if isinstance(tag, Tag) and tag.kind is TagKind.TOOL_SEP:
            sep_at, sep_end = lt, tag.end
            break
        i = lt + 1
    if sep_at < 0:
        head, rest = "", body
        line, _, rest = body.strip().partition("\n")
        head = line
    else:
        head, rest = body[:sep_at].strip(), body[sep_end:]
    if head in ("", "function") and sep_at >= 0:
        line, _, rest = rest.lstrip().partition("\n")
        if line.rstrip().endswith("{") or line.strip().startswith("{"):
            name, rest = line.split("{", 1)[0], "{" + line.split("{", 1)[1] + "\n" + rest
        else:
            name = line
    else:
        name = head
    name = name.strip()
    tool = tools.resolve(name) if name else None
    text = strip_fence(rest.strip())
    if tool is not None and tool.kind is ToolKind.CUSTOM:
        return check_call(tools, name, text, body)
    ok, value = _decode(text) if text.strip() else (True, {})
    return check_call(tools, name, value if ok else text, body)


def parse_json_calls(tools: ToolSet, text: str) -> list[ParsedCall | Problem]:
    """The seed's whole-message `{"tool_calls":[{"name", "input"|"arguments"}]}` (OpenAI's shape too)."""
    ok, value = loads_lenient(strip_fence(text.strip()))
    if not ok or not isinstance(value, dict) or not isinstance(value.get("tool_calls"), list):
        return [Problem(ProblemKind.INVALID_ARGUMENTS, "", "the tool_calls JSON could not be read", text)]
    out: list[ParsedCall | Problem] = []
    for item in value["tool_calls"]:
        if not isinstance(item, dict):
            continue
        function = item.get("function")
        if isinstance(function, dict):
            item = function
        name = item.get("name")
        args: Any = {}
        for key in ("input", "arguments", "parameters", "args"):
            if key in item:
                args = item[key]
                break
        tool = tools.resolve(name) if isinstance(name, str) else None
        if isinstance(args, str) and not (tool is not None and tool.kind is ToolKind.CUSTOM):
            decoded_ok, decoded = _decode(args) if args.strip() else (True, {})
            args = decoded if decoded_ok else args
        raw = _encode(item)
        if tool is not None and tool.kind is ToolKind.FUNCTION and isinstance(args, dict):
            args = {key: _coerce_loose(val, _property_schema(tool, key)) for key, val in args.items()}
        out.append(check_call(tools, name if isinstance(name, str) else "", args, raw))
    return out


def _coerce_loose(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """A JSON value whose type is off ("3" for an integer) typed by the schema; other values unchanged."""
    types = _schema_types(schema)
    if not types or not isinstance(value, str) or "string" in types:
        return value
    ok, decoded = _decode(value)
    if ok:
        fitted = _fits(decoded, types)
        if fitted is not _MISS:
            return fitted
    return value


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """A complete answer: the visible text, the calls (in order), and what was rejected."""

    text: str
    calls: tuple[ParsedCall, ...]
    problems: tuple[Problem, ...]


def parse_answer(text: str, tools: ToolSet | Iterable[ToolSpec], *, parallel: bool = True) -> ParsedAnswer:
    """Non-streaming parse: exactly what the sieve yields when the whole answer arrives as one piece."""
    from .sieve import Sieve  # the sieve imports this module

    sieve = Sieve(tools if isinstance(tools, ToolSet) else ToolSet(tools), parallel=parallel)
    items = sieve.feed(text) + sieve.finish()
    texts = [item for item in items if isinstance(item, str)]
    return ParsedAnswer("".join(texts), tuple(sieve.calls), tuple(sieve.problems))
