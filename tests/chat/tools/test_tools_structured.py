"""response_format checks and the tool repair policy (one retry, then text or a clear error)."""

from __future__ import annotations

import json

import pydantic

from deepseek2api.chat.tools.parser import Problem, ProblemKind, parse_answer
from deepseek2api.chat.tools.repair import (
    Outcome,
    ToolErrorKind,
    correction_text,
    decide,
)
from deepseek2api.chat.tools.spec import (
    AUTO,
    ResponseFormat,
    ToolChoice,
    ToolChoiceMode,
)
from deepseek2api.chat.tools.structured import (
    StructuredError,
    check_structured,
    schema_error,
)
from deepseek2api.chat.tools.structured import correction_text as structured_correction

OBJECT = ResponseFormat("json_object")


class Weather(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    city: str
    celsius: float
    tags: list[str]


WEATHER = ResponseFormat("json_schema", Weather.model_json_schema(), "Weather", strict=True)


def test_a_fenced_json_answer_is_unwrapped_and_kept_as_written() -> None:
    result = check_structured('```json\n{"a": 1,\n "b": [2]}\n```', OBJECT)
    assert result.ok and result.text == '{"a": 1,\n "b": [2]}' and result.value == {"a": 1, "b": [2]}


def test_prose_around_json_and_trailing_commas_are_repaired() -> None:
    result = check_structured('Sure! Here it is: {"city": "Oslo", "celsius": 3.5, "tags": ["cold",],} Enjoy.',
                              WEATHER)
    assert result.ok
    assert json.loads(result.text) == {"city": "Oslo", "celsius": 3.5, "tags": ["cold"]}
    assert Weather.model_validate_json(result.text).city == "Oslo"


def test_an_answer_that_is_not_json_fails_with_a_kind_and_a_correction() -> None:
    result = check_structured("I cannot answer that.", OBJECT)
    assert result.error is StructuredError.NOT_JSON
    assert "not valid JSON" in structured_correction(result, OBJECT)


def test_an_answer_nested_too_deep_to_decode_is_not_json_rather_than_a_crash() -> None:
    result = check_structured("[" * 100_000 + "]" * 100_000, OBJECT)
    assert result.error is StructuredError.NOT_JSON


def test_json_object_mode_wants_an_object() -> None:
    assert check_structured("[1, 2]", OBJECT).error is StructuredError.NOT_OBJECT


def test_a_schema_mismatch_names_the_place() -> None:
    result = check_structured('{"city": "Oslo", "celsius": "warm", "tags": []}', WEATHER)
    assert result.error is StructuredError.SCHEMA_MISMATCH
    assert result.detail.startswith("celsius:")
    assert "celsius" in structured_correction(result, WEATHER)
    extra = check_structured('{"city": "Oslo", "celsius": 1, "tags": [], "wind": 3}', WEATHER)
    assert extra.error is StructuredError.SCHEMA_MISMATCH


def test_an_invalid_client_schema_is_reported_as_such() -> None:
    assert schema_error({"type": "object"}) is None
    assert schema_error({"type": 12}) is not None
    result = check_structured("{}", ResponseFormat("json_schema", {"type": 12}))
    assert result.error is StructuredError.BAD_SCHEMA


def test_text_format_passes_anything_through() -> None:
    assert check_structured("hello", ResponseFormat()).text == "hello"


PROBLEM = Problem(ProblemKind.UNDECLARED, "rm", "no tool named 'rm' was declared", "")


def test_valid_calls_are_returned() -> None:
    assert decide(call_names=["a"], problems=[], choice=AUTO, retried=False, client_saw_output=False).outcome \
        is Outcome.CALLS


def test_a_broken_call_gets_one_retry_with_a_short_correction_while_nothing_was_sent() -> None:
    decision = decide(call_names=[], problems=[PROBLEM], choice=AUTO, retried=False, client_saw_output=False)
    assert decision.outcome is Outcome.RETRY
    assert decision.correction and 'no tool named "rm"' in decision.correction
    assert "<|DSML|tool_calls>" in decision.correction


def test_after_the_retry_or_once_output_was_sent_an_optional_call_falls_back_to_text() -> None:
    for retried, sent in ((True, False), (False, True)):
        assert decide(call_names=[], problems=[PROBLEM], choice=AUTO, retried=retried,
                      client_saw_output=sent).outcome is Outcome.TEXT
    assert decide(call_names=[], problems=[], choice=AUTO, retried=False, client_saw_output=False).outcome \
        is Outcome.TEXT


def test_a_required_call_that_never_comes_is_retried_once_then_a_clear_error() -> None:
    required = ToolChoice(ToolChoiceMode.REQUIRED)
    first = decide(call_names=[], problems=[], choice=required, retried=False, client_saw_output=False)
    assert first.outcome is Outcome.RETRY and "must call a tool" in (first.correction or "")
    second = decide(call_names=[], problems=[], choice=required, retried=True, client_saw_output=False)
    assert second.outcome is Outcome.ERROR and second.error is ToolErrorKind.CALL_REQUIRED
    assert 400 <= ToolErrorKind.CALL_REQUIRED.http_status < 500


def test_a_named_choice_is_only_honoured_by_a_call_to_that_tool() -> None:
    named = ToolChoice(ToolChoiceMode.NAMED, "search")
    assert decide(call_names=["get_weather"], problems=[], choice=named, retried=True,
                  client_saw_output=False).outcome is Outcome.ERROR
    assert decide(call_names=["search"], problems=[], choice=named, retried=True,
                  client_saw_output=False).outcome is Outcome.CALLS
    assert 'the tool "search"' in correction_text([], named)


def test_the_retry_correction_leads_to_a_parsable_answer_in_the_simulated_loop() -> None:
    # what a compliant model writes after the correction parses into a call
    answer = '<|DSML|tool_calls>\n<|DSML|invoke name="search">\n<|DSML|parameter name="query" string="true">x' \
             "</|DSML|parameter>\n</|DSML|invoke>\n</|DSML|tool_calls>"
    from tools_support import TOOLS
    assert [c.name for c in parse_answer(answer, TOOLS).calls] == ["search"]


def test_malformed_declarations_are_named_with_the_tool_index() -> None:
    from deepseek2api.chat.tools.declared import DeclaredProblem, check_declared
    from deepseek2api.chat.tools.spec import ToolKind, ToolSpec
    from tools_support import TOOLS

    ok = ToolSpec("a", parameters={"type": "object", "properties": {}})
    assert check_declared(TOOLS, AUTO) is None
    cases = [
        ([ok, ToolSpec("")], AUTO, DeclaredProblem.NO_NAME, 1),
        ([ToolSpec("has space")], AUTO, DeclaredProblem.BAD_NAME, 0),
        ([ok, ok], AUTO, DeclaredProblem.DUPLICATE_NAME, 1),
        ([ToolSpec("s", parameters={"type": "string"})], AUTO, DeclaredProblem.SCHEMA_NOT_OBJECT, 0),
        ([ToolSpec("s", parameters={"type": "object", "properties": 3})], AUTO, DeclaredProblem.INVALID_SCHEMA, 0),
        ([ok], ToolChoice(ToolChoiceMode.NAMED, "b"), DeclaredProblem.UNKNOWN_CHOICE, None),
        ([], ToolChoice(ToolChoiceMode.REQUIRED), DeclaredProblem.CHOICE_WITHOUT_TOOLS, None),
    ]
    for tools, choice, kind, index in cases:
        error = check_declared(tools, choice)
        assert error is not None and (error.kind, error.index) == (kind, index), (tools, error)
    assert check_declared([ToolSpec("apply_patch", kind=ToolKind.CUSTOM, parameters={})], AUTO) is None
