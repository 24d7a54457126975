"""Tool-call answers: the simulator writes calls the way DeepSeek's models do, in every markup variant.

Written independently of the gateway (the simulator imports nothing of it): the tool catalog is read
back from the prompt text itself (`## Available tools`, one `### name` heading per tool, one
`- param (type, required, one of: …)` line per parameter), and arguments are synthesised from those
lines so they fit the declared schema.

When it answers with a call:
- a `[sim:tool=NAME[,NAME2] args={…} markup=M]` directive (after the last tool result, if any), or
- the last user message names a catalogued tool.
After a tool result (`|DSML|tool_result` in the prompt's last turn) it answers in prose that quotes
the result, so a client's tool loop reaches a final answer — unless `[sim:afterN=NAME args={…}]` asks
for another call once the prompt holds N tool results. Markups M: v4 (full-width DSML, default
of the real model), v32 (`function_calls` wrapper), ascii (the gateway prompt's own format, default),
cdata, legacy (V3 `tool▁calls▁begin`), json (the seed's whole-message JSON), unclosed (no closers),
fenced (a fenced example first, then the real call), trailing (an invented result after the block).
`[sim:tool_in=reasoning]`
puts the call in the reasoning of a thinking model and leaves the answer empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .demo_answers import best_tool, proper_noun

MARKUPS = ("v4", "v32", "ascii", "cdata", "legacy", "json", "unclosed", "fenced", "trailing")
_CATALOG_HEAD = "## Available tools"
_RESULT = re.compile(r"<\s*[|｜]DSML[|｜]tool_result([^>]*)>(.*?)(?:<\s*/\s*[|｜]DSML[|｜]tool_result>|\Z)", re.DOTALL)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_END_OF_TURN = "<｜end▁of▁sentence｜>"
_PARAM = re.compile(r"^- (\S+) \((.*)$")
_WORD = re.compile(r"[A-Za-z0-9_.\-]+")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class CatalogTool:
    name: str
    params: dict[str, tuple[str, bool, list[Any]]]  # name → (type summary, required, enum values)
    freeform: bool = False


@dataclass(frozen=True)
class ToolPlan:
    """What the simulator answers instead of its echo: text before/after, and where it goes."""

    reasoning: str
    content: str
    calls: list[tuple[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- reading the prompt

def read_catalog(prompt: str) -> dict[str, CatalogTool]:
    """The tools listed in the prompt's catalog (empty when the prompt carries none)."""
    start = prompt.rfind(_CATALOG_HEAD)
    if start < 0:
        return {}
    section = prompt[start + len(_CATALOG_HEAD):]
    cut = section.find("<｜")
    if cut >= 0:
        section = section[:cut]
    tools: dict[str, CatalogTool] = {}
    for chunk in re.split(r"(?m)^### ", section)[1:]:
        lines = chunk.splitlines()
        head = lines[0].strip()
        freeform = head.endswith("(freeform)")
        name = head.split()[0] if head else ""
        params: dict[str, tuple[str, bool, list[Any]]] = {}
        for line in lines[1:]:
            match = _PARAM.match(line)
            if match:
                params[match.group(1)] = _param_flags(match.group(2))
        if name:
            tools[name] = CatalogTool(name, params, freeform)
    return tools


def _param_flags(rest: str) -> tuple[str, bool, list[Any]]:
    depth, end = 1, len(rest)
    for i, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                end = i
                break
    items = _top_level_split(rest[:end])
    kind = items[0] if items else "string"
    required = "required" in items
    enum: list[Any] = []
    for i, item in enumerate(items):
        if item.startswith("one of: "):
            values = [item[len("one of: "):]]
            for more in items[i + 1:]:
                if more == "required" or more.startswith("default: "):
                    break
                values.append(more)
            try:
                enum = json.loads("[" + ", ".join(values) + "]")
            except ValueError:
                enum = []
    return kind, required, enum


def _top_level_split(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def synthesize(kind: str, enum: list[Any] | None = None) -> Any:
    """A value of the summarised type (`string`, `array of integer`, `object {a: string, b?: …}` …)."""
    if enum:
        return enum[0]
    kind = kind.strip()
    if " | " in kind and not kind.startswith("object {"):
        options = [k for k in kind.split(" | ") if k.strip() != "null"]
        return synthesize(options[0] if options else "null")
    if kind.startswith("array of "):
        return [synthesize(kind[len("array of "):])]
    if kind == "array":
        return []
    if kind.startswith("object {") and kind.endswith("}"):
        out: dict[str, Any] = {}
        for item in _top_level_split(kind[len("object {"):-1]):
            key, _, sub = item.partition(": ")
            if not key.endswith("?"):
                out[key] = synthesize(sub)
        return out
    if kind == "object":
        return {}
    enum_match = re.match(r"^\w+ \(([^)]*)\)$", kind)
    if enum_match:
        first = enum_match.group(1).split("|")[0]
        return synthesize(kind.split(" ")[0]) if not first else _typed(kind.split(" ")[0], first)
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "simulated value")


def _typed(kind: str, text: str) -> Any:
    try:
        return {"integer": int, "number": float}.get(kind, str)(text)
    except ValueError:
        return text


def arguments_for(tool: CatalogTool) -> dict[str, Any]:
    """Values for every required parameter of a catalogued tool."""
    return {name: synthesize(kind, enum) for name, (kind, required, enum) in tool.params.items() if required}


def last_result(prompt: str) -> tuple[dict[str, str], str, int] | None:
    """(attributes, content, end index) of the last tool result in the prompt's last turn."""
    turn_start = prompt.rfind(_END_OF_TURN)
    found = None
    for match in _RESULT.finditer(prompt, max(turn_start, 0)):
        found = match
    if found is None:
        return None
    return dict(_ATTR.findall(found.group(1))), found.group(2).strip(), found.end()


@dataclass(frozen=True)
class ToolDirective:
    names: list[str]
    args: dict[str, Any] | None = None
    markup: str | None = None


def tool_directive(text: str) -> ToolDirective | None:
    """The last `[sim:tool=NAME[,NAME] args={json} markup=M]` in `text` (args may contain "]")."""
    at = text.rfind("[sim:tool=")
    if at < 0:
        return None
    i = at + len("[sim:tool=")
    end = i
    while end < len(text) and text[end] not in " ]":
        end += 1
    names = [n for n in text[i:end].split(",") if n]
    args: dict[str, Any] | None = None
    markup: str | None = None
    i = end
    while i < len(text) and text[i] == " ":
        i += 1
        key_end = text.find("=", i)
        if key_end < 0:
            break
        key = text[i:key_end]
        i = key_end + 1
        if key == "args":
            try:
                value, i = json.JSONDecoder().raw_decode(text, i)
            except ValueError:
                break
            args = value if isinstance(value, dict) else None
        else:
            stop = i
            while stop < len(text) and text[stop] not in " ]":
                stop += 1
            if key == "markup":
                markup = text[i:stop]
            i = stop
    return ToolDirective(names, args, markup) if names else None


def after_directive(prompt: str, results: int) -> ToolDirective | None:
    """`[sim:afterN=NAME args={…}]`: the call to make once the prompt holds N tool results (a scripted
    multi-step task: read a file, then write another)."""
    head = f"[sim:after{results}="
    at = prompt.rfind(head)
    return tool_directive("[sim:tool=" + prompt[at + len(head):]) if at >= 0 else None


def _option(text: str, key: str) -> str | None:
    found = re.findall(r"\[sim:" + key + r"=([^\]\s]*)\]", text)
    return found[-1] if found else None  # the last directive wins


# ---------------------------------------------------------------- writing calls

def _value_text(value: Any) -> tuple[str, str]:
    return (value, "true") if isinstance(value, str) else (_encode(value), "false")


def _dsml(calls: list[tuple[str, Any]], bar: str, wrapper: str, *, cdata: bool = False,
          closed: bool = True) -> str:
    out = [f"<{bar}DSML{bar}{wrapper}>"]
    for name, args in calls:
        out.append(f'<{bar}DSML{bar}invoke name="{name}">')
        items = args.items() if isinstance(args, dict) else [("input", args)]
        for key, value in items:
            text, flag = _value_text(value)
            if cdata and flag == "true":
                text = "<![CDATA[" + text + "]]>"
            out.append(f'<{bar}DSML{bar}parameter name="{key}" string="{flag}">{text}</{bar}DSML{bar}parameter>')
        if closed:
            out.append(f"</{bar}DSML{bar}invoke>")
    if closed:
        out.append(f"</{bar}DSML{bar}{wrapper}>")
    return "\n".join(out)


def _legacy(calls: list[tuple[str, Any]]) -> str:
    body = "".join(f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n{_encode(args)}\n```"
                   "<｜tool▁call▁end｜>" for name, args in calls)
    return "<｜tool▁calls▁begin｜>" + body + "<｜tool▁calls▁end｜>"


def render_call_text(calls: list[tuple[str, Any]], markup: str) -> str:
    """The answer text carrying `calls` in `markup` (see the module docstring)."""
    names = ", ".join(name for name, _ in calls)
    lead = f"I will call {names} (simulated).\n\n"
    if markup == "json":
        return _encode({"tool_calls": [{"name": name, "input": args} for name, args in calls]})
    if markup == "v4":
        return lead + _dsml(calls, "｜", "tool_calls")
    if markup == "v32":
        return lead + _dsml(calls, "｜", "function_calls")
    if markup == "cdata":
        return lead + _dsml(calls, "|", "tool_calls", cdata=True)
    if markup == "legacy":
        return lead + _legacy(calls)
    if markup == "unclosed":
        return lead + _dsml(calls, "|", "tool_calls", closed=False)
    if markup == "fenced":
        example = _dsml([("example_tool", {"x": "1"})], "|", "tool_calls")
        return (f"A call looks like this:\n```\n{example}\n```\n" + lead + _dsml(calls, "|", "tool_calls"))
    if markup == "trailing":
        return (lead + _dsml(calls, "|", "tool_calls")
                + "\n\nThe tool returned: sunny, 21°C. (This invented result must never reach the client.)")
    return lead + _dsml(calls, "|", "tool_calls")


def user_words(prompt: str) -> set[str]:
    """The words of the last user turn, without the tool catalog and without directives."""
    return set(_WORD.findall(user_text(prompt)))


def user_text(prompt: str) -> str:
    """The last user turn's text, without the tool catalog and without directives."""
    cut = prompt.rfind("<｜User｜>")
    text = prompt[cut + len("<｜User｜>"):] if cut >= 0 else prompt
    assistant = text.find("<｜Assistant｜>")
    if assistant >= 0:
        text = text[:assistant]
    start = text.find("# Tools")
    if start >= 0:
        end = text.find("<｜", start)
        text = text[:start] + (text[end:] if end >= 0 else "")
    return re.sub(r"\[sim:[^\]]*\]", " ", text)


def _with_noun(args: dict[str, Any], question: str) -> dict[str, Any]:
    """String arguments the catalog could only guess get the question's proper noun ("Paris")."""
    noun = proper_noun(question)
    if noun is None:
        return args
    return {k: noun if v == "simulated value" else v for k, v in args.items()}


def plan_tools(prompt: str, *, thinking: bool) -> ToolPlan | None:
    """The tool-aware answer to `prompt`, or None when the normal echo applies."""
    catalog = read_catalog(prompt)
    result = last_result(prompt)
    after_result = prompt[result[2]:] if result else prompt
    directive = tool_directive(after_result)
    if result is not None and directive is None:
        directive = after_directive(prompt, len(_RESULT.findall(prompt)))
    if result is not None and directive is None:
        attrs, content, _ = result
        name = attrs.get("name", "the tool")
        excerpt = " ".join(content.split())[:200]
        text = f'The tool {name} returned: "{excerpt}". That is the answer (simulated).'
        reasoning = f"I got the result of {name}; I will report it." if thinking else ""
        return ToolPlan(reasoning, text)
    if not catalog and directive is None:
        return None
    calls: list[tuple[str, Any]] = []
    if directive is not None:
        for name in directive.names:
            tool = catalog.get(name)
            base: Any = (("simulated input" if tool.freeform else arguments_for(tool)) if tool else {})
            if directive.args is not None and isinstance(base, dict):
                base = {**base, **directive.args}
            calls.append((name, base))
        markup = directive.markup or _option(prompt, "markup") or "ascii"
    else:
        words = user_words(prompt)
        named = [name for name in catalog if name in words]
        if not named:  # the demo: the tool the question is about (simulator/demo_answers.py)
            question = user_text(prompt)
            best = best_tool(prompt, question)
            if best is None or best not in catalog:
                return None
            tool = catalog[best]
            calls.append((tool.name, "simulated input" if tool.freeform else _with_noun(arguments_for(tool), question)))
        else:
            tool = catalog[named[0]]
            calls.append((tool.name, "simulated input" if tool.freeform else arguments_for(tool)))
        markup = _option(prompt, "markup") or "ascii"
    text = render_call_text(calls, markup if markup in MARKUPS else "ascii")
    if thinking and _option(prompt, "tool_in") == "reasoning":
        return ToolPlan(f"I should use a tool.\n{text}", "", calls)
    reasoning = f"The user wants {calls[0][0]}; I will call it." if thinking else ""
    return ToolPlan(reasoning, text, calls)
