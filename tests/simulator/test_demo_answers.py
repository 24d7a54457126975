"""The demo without special prompts: the README's tools / response_format example run as printed against the
gateway + simulator (the simulator calls the tool the question is about and answers JSON instances of a
demanded schema, simulator/demo_answers.py); and an answer with call markup to a request that may not call
tools reaches the client as readable text, never raw DSML (chat/tools/strip.py)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from deepseek2api.chat.tools.strip import strip_markup
from deepseek2api.simulator.demo_answers import best_tool, instance_of
from gateway_support import API_KEY, Stack

README = Path(__file__).resolve().parents[2] / "README.md"
_MARKUP = re.compile(r"DSML|tool▁call|<\s*[|｜]")


STACK_ACCOUNTS = 2  # for the shared `stack` fixture (tests/conftest.py)


def readme_example(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    at = text.index(f"<!-- readme-example: {name} -->")
    start = text.index("```python\n", at) + len("```python\n")
    return text[start:text.index("```", start)]


def test_the_readme_tools_and_response_format_example_works_as_printed(stack: Stack) -> None:
    code = readme_example("tools").replace("http://127.0.0.1:5001/v1", stack.base_url + "/v1")
    code = code.replace('api_key="sk-demo"', f'api_key="{API_KEY}"')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})  # the README's own example
    call_line, json_line = printed.getvalue().strip().splitlines()
    assert call_line == 'get_weather {"city":"Paris"}'
    value = json.loads(json_line)
    assert set(value) == {"name", "population"} and isinstance(value["population"], int)


def test_the_best_matching_tool_is_chosen_and_an_unrelated_question_gets_prose() -> None:
    catalog = ("## Available tools\n### get_weather\nCurrent weather for a city\n- city (string, required)\n"
               "### search_files\nFind files by name pattern\n- pattern (string, required)\n")
    assert best_tool(catalog, "What's the weather in Paris?") == "get_weather"
    assert best_tool(catalog, "find the files named notes") == "search_files"
    assert best_tool(catalog, "hello there") is None
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"$ref": "#/$defs/tag"},
                                                        "minItems": 2}},
              "$defs": {"tag": {"enum": ["x", "y"]}}, "required": ["tags"]}
    assert instance_of(schema) == {"tags": ["x", "x"]}


HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "read the notes"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "Read", "arguments": json.dumps({"file_path": "/tmp/notes.txt"})}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "the notes say hello"},
]


@pytest.mark.parametrize("markup", ["v4", "legacy", "cdata"])
def test_call_markup_in_an_answer_without_tools_becomes_readable_text(stack: Stack, markup: str) -> None:
    ask = {"role": "user", "content": 'Summarise. [sim:tool=Read args={"file_path": "/tmp/other.txt"} '
                                      f"markup={markup}]"}
    client = stack.openai()
    plain = client.chat.completions.create(model="deepseek-chat", messages=[*HISTORY, ask])  # type: ignore[list-item]
    text = plain.choices[0].message.content or ""
    assert not _MARKUP.search(text), text
    assert "[Read: " in text and "/tmp/other.txt" in text
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].finish_reason == "stop"
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="deepseek-chat", messages=[*HISTORY, ask], stream=True) if c.choices]  # type: ignore[list-item]
    assert "".join(pieces) == text
    # tools declared with tool_choice "none": not offered, and their markup is made readable too
    tool = {"type": "function", "function": {"name": "Read", "parameters": {
        "type": "object", "properties": {"file_path": {"type": "string"}}}}}
    none = client.chat.completions.create(model="deepseek-chat", messages=[ask], tools=[tool],  # type: ignore[list-item]
                                          tool_choice="none")
    assert not _MARKUP.search(none.choices[0].message.content or "")


def test_strip_markup_leaves_plain_text_alone() -> None:
    for text in ("plain <b>html</b> and a < b", "code: `if a<b: pass`", "[sim] brackets [1](http://x.y)"):
        assert strip_markup(text) == text
