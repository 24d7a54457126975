"""The tool-call parser: every markup variant of the corpus, value typing, names, repair of broken JSON."""

from __future__ import annotations

import json

import jsonschema
import pytest

from deepseek2api.chat.tools.jsonfix import loads_lenient, strip_fence
from deepseek2api.chat.tools.parser import (
    ProblemKind,
    ToolSet,
    check_call,
    parse_answer,
    type_value,
)
from deepseek2api.chat.tools.spec import ToolKind, ToolSpec
from tools_support import CASES, CODE, TOOLS, Case, arguments_of


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_corpus_answer_parses_to_its_text_and_calls(case: Case) -> None:
    result = parse_answer(case.answer, TOOLS)
    assert result.text == case.text
    assert tuple((c.name, arguments_of(c.arguments, c.name)) for c in result.calls) == case.calls
    assert len(result.problems) == case.problems


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_parsed_call_validates_against_its_schema(case: Case) -> None:
    for call in parse_answer(case.answer, TOOLS).calls:
        tool = next(t for t in TOOLS if t.name == call.name)
        if tool.kind is ToolKind.FUNCTION:
            jsonschema.validate(json.loads(call.arguments), dict(tool.parameters))


def test_a_file_body_arrives_byte_for_byte() -> None:
    body = CODE + "\r\n\ttrailing  \n\n"
    answer = ('<|DSML|tool_calls>\n<|DSML|invoke name="write_file">\n'
              '<|DSML|parameter name="path" string="true">a b.txt</|DSML|parameter>\n'
              f'<|DSML|parameter name="content" string="true">{body}</|DSML|parameter>\n'
              "</|DSML|invoke>\n</|DSML|tool_calls>")
    (call,) = parse_answer(answer, TOOLS).calls
    assert json.loads(call.arguments) == {"path": "a b.txt", "content": body}


def test_cdata_may_hide_a_closing_tag_inside_the_value() -> None:
    value = "say </|DSML|parameter> and </|DSML|invoke> literally"
    answer = ('<|DSML|invoke name="write_file"><|DSML|parameter name="path" string="true">p</|DSML|parameter>'
              f'<|DSML|parameter name="content" string="true"><![CDATA[{value}]]></|DSML|parameter></|DSML|invoke>')
    (call,) = parse_answer(answer, TOOLS).calls
    assert json.loads(call.arguments)["content"] == value


def test_a_missing_required_parameter_is_a_problem_not_a_call() -> None:
    answer = '<|DSML|invoke name="write_file"><|DSML|parameter name="path">x</|DSML|parameter></|DSML|invoke>'
    result = parse_answer(answer, TOOLS)
    assert result.calls == ()
    assert [p.kind for p in result.problems] == [ProblemKind.MISSING_REQUIRED]
    assert "content" in result.problems[0].detail


def test_arguments_that_break_the_schema_are_a_problem() -> None:
    answer = ('<|DSML|invoke name="get_weather"><|DSML|parameter name="city">X</|DSML|parameter>'
              '<|DSML|parameter name="days" string="false">99</|DSML|parameter></|DSML|invoke>')
    result = parse_answer(answer, TOOLS)
    assert result.calls == ()
    assert result.problems[0].kind is ProblemKind.INVALID_ARGUMENTS
    assert "days" in result.problems[0].detail


def test_names_resolve_exactly_then_leniently_but_never_to_an_undeclared_tool() -> None:
    tools = ToolSet(TOOLS)
    assert tools.resolve("get_weather") is TOOLS[0]
    assert tools.resolve("functions.get_weather") is TOOLS[0]
    assert tools.resolve("Get_Weather") is TOOLS[0]
    assert tools.resolve("get_weathers") is None
    problem = check_call(tools, "delete_all", {}, "")
    assert getattr(problem, "kind", None) is ProblemKind.UNDECLARED


@pytest.mark.parametrize(("raw", "string", "schema", "expected"), [
    ("3", None, {"type": "integer"}, 3),
    ("3", True, {"type": "integer"}, 3),
    ("3.0", None, {"type": "integer"}, 3),
    ("2.5", None, {"type": "number"}, 2.5),
    ("True", None, {"type": "boolean"}, True),
    ("null", None, {"type": ["string", "null"]}, None),
    ("null", True, {"type": ["string", "null"]}, "null"),
    ("null", False, {"type": ["integer", "null"]}, None),
    ('{"a": [1, 2,]}', None, {"type": "object"}, {"a": [1, 2]}),
    ('"quoted"', True, {"type": "string"}, '"quoted"'),
    ('"quoted"', False, {"type": "string"}, "quoted"),
    ("02134", False, {"type": "string"}, "02134"),
    ("123", None, {"type": "string"}, "123"),
    ("[1,2]", None, None, [1, 2]),
    ("plain", False, None, "plain"),
    (" keep  spaces \n", True, {"type": "string"}, " keep  spaces \n"),
])
def test_values_are_typed_by_the_string_attribute_and_the_schema(raw: str, string: bool | None,
                                                                   schema: dict[str, object] | None,
                                                                   expected: object) -> None:
    assert type_value(raw, string, schema) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Here it is: {"a": 1} hope it helps', {"a": 1}),
    ('{"a": "line1\nline2\tx"}', {"a": "line1\nline2\tx"}),
    ('{"re": "\\d+"}', {"re": "\\d+"}),
    ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
    ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),
    ('{"a": "cut', {"a": "cut"}),
])
def test_broken_json_is_repaired_deterministically(text: str, expected: object) -> None:
    assert loads_lenient(text) == (True, expected)


def test_text_without_any_json_is_not_repaired_into_something() -> None:
    assert loads_lenient("no json here") == (False, None)
    assert strip_fence("no fence") == "no fence"


def test_a_custom_tool_call_carries_raw_text() -> None:
    tools = [ToolSpec("apply_patch", kind=ToolKind.CUSTOM)]
    answer = '<|DSML|invoke name="apply_patch"><|DSML|parameter name="input">{not json}</|DSML|parameter></|DSML|invoke>'
    (call,) = parse_answer(answer, tools).calls
    assert call.arguments == "{not json}"


def test_without_declared_tools_markup_is_hidden_and_nothing_is_called() -> None:
    answer = "Hi.\n" + CASES[0].answer
    result = parse_answer(answer, [])
    assert result.calls == ()
    assert result.text == "Hi.\nLet me check."
    assert "DSML" not in result.text


def test_a_parameter_nested_too_deep_to_decode_stays_text_and_lenient_loading_refuses_it() -> None:
    deep = "[" * 100_000
    assert loads_lenient(deep) == (False, None)
    answer = (f'<|DSML|tool_calls><|DSML|invoke name="search"><|DSML|parameter name="query" string="false">{deep}'
              "</|DSML|parameter></|DSML|invoke></|DSML|tool_calls>")
    parsed = parse_answer(answer, TOOLS)
    assert [c.name for c in parsed.calls] == ["search"] and deep in parsed.calls[0].arguments
