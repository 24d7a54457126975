"""A corpus of model answers with tool calls in every variant DeepSeek writes, and what must come out.

Each case: the raw answer, the visible text the client must get, the calls (name, arguments) in
order, and whether the visible text may legitimately contain markup (a fenced example, a flushed
maybe-marker). Shared by the parser, sieve and property tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deepseek2api.chat.tools.spec import ToolKind, ToolSpec

TOOLS = (
    ToolSpec("get_weather", "Current weather for a city.", {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
        },
        "required": ["city"],
        "additionalProperties": False,
    }),
    ToolSpec("write_file", "Write a file.", {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    }),
    ToolSpec("search", "Search the docs.", {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer"},
            "filters": {"type": "object", "properties": {"lang": {"type": "string"}}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "exact": {"type": "boolean"},
        },
        "required": ["query"],
    }),
    ToolSpec("apply_patch", "Apply a patch (freeform).", kind=ToolKind.CUSTOM),
)

NESTED = ToolSpec("book", "Book a trip.", {
    "type": "object",
    "$defs": {"Seat": {"type": "string", "enum": ["aisle", "window"]}},
    "properties": {
        "to": {"type": "string", "description": "Destination\n  city"},
        "seat": {"$ref": "#/$defs/Seat"},
        "party": {"type": "object", "properties": {"adults": {"type": "integer"}, "kids": {"type": "integer"}},
                  "required": ["adults"]},
        "stops": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"], "default": None},
    },
    "required": ["to", "party"],
})

CODE = 'if a < b && c > "d":\n    print(\'x\\n\', r"\\d+")  # <tag> &amp;\n\n'


@dataclass(frozen=True)
class Case:
    name: str
    answer: str
    text: str
    calls: tuple[tuple[str, Any], ...]
    markup_in_text: bool = False
    stops: bool = False  # text after the block is dropped (upstream should be stopped)
    problems: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _dsml(bar: str, wrapper: str, body: str) -> str:
    return f"<{bar}DSML{bar}{wrapper}>\n{body}</{bar}DSML{bar}{wrapper}>"


def _invoke(bar: str, name: str, params: list[tuple[str, str, str | None]]) -> str:
    out = f'<{bar}DSML{bar}invoke name="{name}">\n'
    for key, value, string in params:
        attr = "" if string is None else f' string="{string}"'
        out += f'<{bar}DSML{bar}parameter name="{key}"{attr}>{value}</{bar}DSML{bar}parameter>\n'
    return out + f"</{bar}DSML{bar}invoke>\n"


PARIS = _invoke("｜", "get_weather", [("city", "Paris", "true"), ("days", "3", "false")])
PARIS_CALL = ("get_weather", {"city": "Paris", "days": 3})

CASES: tuple[Case, ...] = (
    Case("v4 full-width with text before", "Let me check.\n\n" + _dsml("｜", "tool_calls", PARIS),
         "Let me check.", (PARIS_CALL,)),
    Case("v3.2 function_calls wrapper", _dsml("｜", "function_calls", PARIS), "", (PARIS_CALL,)),
    Case("ascii pipes (the prompt's own format)",
         _dsml("|", "tool_calls", _invoke("|", "get_weather", [("city", "Paris", "true"), ("days", "3", "false")])),
         "", (PARIS_CALL,)),
    Case("double vertical line separators",
         _dsml("‖", "tool_calls", _invoke("‖", "get_weather", [("city", "Paris", "true"), ("days", "3", "false")])),
         "", (PARIS_CALL,)),
    Case("doubled pipes", "<｜｜DSML｜｜tool_calls>\n<｜｜DSML｜｜invoke name=\"get_weather\">\n"
         "<｜｜DSML｜｜parameter name=\"city\" string=\"true\">Paris</｜｜DSML｜｜parameter>\n"
         "</｜｜DSML｜｜invoke>\n</｜｜DSML｜｜tool_calls>", "", (("get_weather", {"city": "Paris"}),)),
    Case("stray spaces inside markers", "Sure.\n< ｜DSML｜tool_calls>\n< ｜DSML｜invoke name=\"get_weather\">\n"
         "< ｜DSML｜parameter name=\"city\" string=\"true\">Paris</ ｜DSML｜parameter>\n"
         "</ ｜DSML｜invoke>\n</ ｜DSML｜tool_calls>", "Sure.", (("get_weather", {"city": "Paris"}),)),
    Case("lower-case and upper-case names", "<|dsml|TOOL_CALLS>\n<|Dsml|Invoke name=\"get_weather\">\n"
         "<|dsml|PARAMETER name=\"city\" string=\"true\">Paris</|dsml|parameter>\n</|dsml|invoke>\n"
         "</|dsml|tool_calls>", "", (("get_weather", {"city": "Paris"}),)),
    Case("code body in CDATA keeps every character",
         _dsml("｜", "tool_calls", _invoke("｜", "write_file", [("path", "src/a.py", "true"),
                                                                ("content", f"<![CDATA[{CODE}]]>", "true")])),
         "", (("write_file", {"path": "src/a.py", "content": CODE}),)),
    Case("raw code body without CDATA keeps every character",
         _dsml("|", "tool_calls", _invoke("|", "write_file", [("path", "index.html", "true"),
                                                              ("content", CODE + "<div>x</div>\n", "true")])),
         "", (("write_file", {"path": "index.html", "content": CODE + "<div>x</div>\n"}),)),
    Case("CJK text and values", "我来查一下北京的天气。\n" + _dsml("｜", "tool_calls", _invoke(
        "｜", "get_weather", [("city", "北京｜朝阳", "true")])), "我来查一下北京的天气。",
         (("get_weather", {"city": "北京｜朝阳"}),)),
    Case("parallel calls", _dsml("｜", "tool_calls", PARIS + _invoke("｜", "get_weather", [("city", "Rome", "true")])),
         "", (PARIS_CALL, ("get_weather", {"city": "Rome"}))),
    Case("parallel calls in two wrappers", _dsml("|", "tool_calls", _invoke("|", "get_weather", [("city", "A", None)]))
         + "\n\n" + _dsml("|", "tool_calls", _invoke("|", "get_weather", [("city", "B", None)])),
         "", (("get_weather", {"city": "A"}), ("get_weather", {"city": "B"}))),
    Case("missing opening wrapper", "Checking.\n" + PARIS + "</｜DSML｜tool_calls>", "Checking.", (PARIS_CALL,)),
    Case("unclosed block at the end", "On it.\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
         "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n",
         "On it.", (("get_weather", {"city": "Paris"}),)),
    Case("unclosed parameter at the end", "<|DSML|invoke name=\"get_weather\">\n"
         "<|DSML|parameter name=\"city\" string=\"true\">Oslo", "", (("get_weather", {"city": "Oslo"}),)),
    Case("unclosed parameter cut inside its closer", "<|DSML|invoke name=\"get_weather\">\n"
         "<|DSML|parameter name=\"city\" string=\"true\">Oslo</|DSML|para", "", (("get_weather", {"city": "Oslo"}),)),
    Case("corrupted closers", "<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
         "<｜DSML｜parameter name=\"city\" string=\"true\">Paris<｜DSML｜/parameter>\n<｜/DSML｜invoke>\n"
         "<｜DSML｜/tool_calls>", "", (("get_weather", {"city": "Paris"}),)),
    Case("invented result after the block is dropped", _dsml("｜", "tool_calls", PARIS)
         + "\n\nThe weather in Paris: 21°C and sunny.", "", (PARIS_CALL,), stops=True),
    Case("invented DSML result after the block is dropped", _dsml("|", "tool_calls", PARIS.replace("｜", "|"))
         + "\n<|DSML|tool_result>sunny</|DSML|tool_result>\nIt is sunny.", "", (PARIS_CALL,), stops=True),
    Case("v3 tool_calls_begin form", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
         "```json\n{\"city\": \"Rome\", \"days\": 2}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "",
         (("get_weather", {"city": "Rome", "days": 2}),)),
    Case("v3.1 name-first form", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"
         "{\"city\": \"Kyiv\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "", (("get_weather", {"city": "Kyiv"}),)),
    Case("seed whole-message JSON", '{"tool_calls": [{"name": "get_weather", "input": {"city": "Oslo", "days": "2"}}]}',
         "", (("get_weather", {"city": "Oslo", "days": 2}),), stops=True),
    Case("fenced whole-message JSON with string arguments",
         '```json\n{"tool_calls":[{"name":"search","arguments":"{\\"query\\": \\"sieve\\", \\"limit\\": 5}"}]}\n```',
         "", (("search", {"query": "sieve", "limit": 5}),), stops=True),
    Case("fenced example is text, the real call after it counts",
         "The format is:\n```\n<|DSML|invoke name=\"get_weather\">\n```\nNow for real:\n"
         + _dsml("|", "tool_calls", _invoke("|", "get_weather", [("city", "Lima", "true")])),
         "The format is:\n```\n<|DSML|invoke name=\"get_weather\">\n```\nNow for real:",
         (("get_weather", {"city": "Lima"}),), markup_in_text=True),
    Case("undeclared tool is never a call", _dsml("｜", "tool_calls", _invoke("｜", "rm_rf", [("path", "/", "true")])),
         "", (), problems=1),
    Case("declared and undeclared side by side", _dsml("｜", "tool_calls", _invoke("｜", "rm_rf", [("path", "/", None)])
                                                     + PARIS), "", (PARIS_CALL,), problems=1),
    Case("typing by string= and by the schema", _dsml("|", "tool_calls", _invoke("|", "search", [
        ("query", "42", "true"), ("limit", "7", None), ("filters", '{"lang": "en"}', "false"),
        ("exact", "true", None), ("tags", '["a", "b"]', "false")])), "",
         (("search", {"query": "42", "limit": 7, "filters": {"lang": "en"}, "exact": True, "tags": ["a", "b"]}),)),
    Case("repeated parameter collects an array", _dsml("|", "tool_calls", _invoke("|", "search", [
        ("query", "x", "true"), ("tags", "one", "true"), ("tags", "two", "true")])), "",
         (("search", {"query": "x", "tags": ["one", "two"]}),)),
    Case("JSON object as the invoke body", "<|DSML|invoke name=\"get_weather\">{\"city\": \"Oslo\"}</|DSML|invoke>",
         "", (("get_weather", {"city": "Oslo"}),)),
    Case("custom tool takes raw text", _dsml("|", "tool_calls", _invoke("|", "apply_patch", [
        ("input", "*** Begin Patch\n--- a\n+++ b\n<&\"'\\>\n*** End Patch\n", "true")])), "",
         (("apply_patch", "*** Begin Patch\n--- a\n+++ b\n<&\"'\\>\n*** End Patch\n"),)),
    Case("plain text with angle brackets and pipes", "Use x < y, <b>bold</b>, a <| b and <tool> tags.",
         "Use x < y, <b>bold</b>, a <| b and <tool> tags.", ()),
    Case("text mentioning JSON first is text", '{"answer": 42}', '{"answer": 42}', ()),
    Case("an unfinished maybe-marker at the end is text", "Almost done <｜DS", "Almost done <｜DS", (),
         markup_in_text=True),
    Case("a stray lone wrapper disappears", "Before <|DSML|tool_calls> after.", "Before  after.", ()),
)


def arguments_of(call_arguments: str, name: str) -> Any:
    tool = next(t for t in TOOLS if t.name == name)
    return call_arguments if tool.kind is ToolKind.CUSTOM else json.loads(call_arguments)


MARKER_FRAGMENTS = ("DSML", "dsml", "Dsml", "tool▁", "tool_calls", "function_calls", "｜>", "<｜")
