"""Chat-completions tool fields in process: whatever a client sends, the answer is a Turn or a 400 naming
the field — never an exception the error boundary would have to call a 500."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from deepseek2api.api.errors import RequestInvalid
from deepseek2api.api.openai.protocol import to_turn, validate_request
from deepseek2api.chat.assemble import OutContent, OutFinish
from deepseek2api.chat.errors import AnswerRejected
from deepseek2api.chat.prompt import build_prompt
from deepseek2api.chat.shaping import AnswerShaper, needs_shaping
from deepseek2api.chat.tools.spec import ToolChoiceMode
from deepseek2api.chat.turn import ModelRegistry

REGISTRY = ModelRegistry()
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=12)
SCHEMA_WORDS = st.sampled_from(["type", "properties", "required", "items", "$ref", "anyOf", "enum", "$defs",
                                "additionalProperties", "description", "default", "not"])
SCHEMA = st.recursive(
    st.sampled_from(["object", "string", "integer", "array", "#", "#/properties/a", "#/$defs/x", "http://x/y"])
    | st.booleans() | st.none(),
    lambda inner: st.dictionaries(SCHEMA_WORDS | st.sampled_from(["a", "x"]), inner, max_size=4)
    | st.lists(inner, max_size=3),
    max_leaves=15)
OBJECT_SCHEMA = st.builds(lambda props, extra: {"type": "object", "properties": props, **extra},
                          st.dictionaries(st.sampled_from(["a", "b"]), SCHEMA, max_size=2),
                          st.dictionaries(SCHEMA_WORDS, SCHEMA, max_size=1))
FUNCTION = st.fixed_dictionaries({"name": st.sampled_from(["f", "g", "f", "g", "", "bad name", 3])},
                                 optional={"description": st.text(max_size=10) | st.integers(),
                                           "parameters": OBJECT_SCHEMA | OBJECT_SCHEMA | SCHEMA})
TOOL = st.fixed_dictionaries({"type": st.sampled_from(["function"] * 5 + ["custom", 1]), "function": FUNCTION}) \
    | st.fixed_dictionaries({}, optional={"type": st.just("function"), "function": JSON})
CHOICE = st.sampled_from(["none", "auto", "required", "any", None]) | st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "allowed_tools", "x"])},
    optional={"function": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["f", "g", "zz"])}),
              "allowed_tools": JSON})
FORMAT = st.none() | st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object", "json_schema", "yaml"])},
                                           optional={"json_schema": st.fixed_dictionaries(
                                               {}, optional={"name": st.text(max_size=5), "schema": SCHEMA,
                                                             "strict": st.booleans()})})


@settings(max_examples=1500, deadline=None)
@given(tools=st.lists(TOOL, min_size=1, max_size=3) | st.none() | JSON,
       choice=st.sampled_from([None, "auto", "required"]) | CHOICE, fmt=st.none() | FORMAT,
       parallel=st.none() | st.booleans() | st.integers(), legacy=st.booleans())
def test_any_tool_fields_give_a_turn_or_a_400(tools: Any, choice: Any, fmt: Any, parallel: Any, legacy: bool) -> None:
    body: dict[str, Any] = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    if legacy:
        body.update(functions=[t.get("function") if isinstance(t, dict) else t for t in tools]
                    if isinstance(tools, list) else tools, function_call=choice)
    else:
        body.update(tools=tools, tool_choice=choice)
    body.update(parallel_tool_calls=parallel, response_format=fmt)
    try:
        turn = to_turn(validate_request(json.loads(json.dumps(body))), REGISTRY, "r")
    except RequestInvalid as exc:
        assert exc.status == 400 and exc.param, exc
        event("400")
        return
    event("accepted, with tools" if turn.tools else "accepted")
    build_prompt(turn)  # the catalog renders whatever schema was accepted
    if needs_shaping(turn):
        shaper = AnswerShaper(turn, buffered=True, retried=True)
        name = turn.tools[0].name if turn.tools else "f"
        answer = (f'<|DSML|tool_calls>\n<|DSML|invoke name="{name}">\n<|DSML|parameter name="a" string="false">'
                  '{"b": [1]}</|DSML|parameter>\n</|DSML|invoke>\n</|DSML|tool_calls>')
        shaper.push(OutContent(answer))
        with contextlib.suppress(AnswerRejected):  # the answer's own verdict; anything else fails the test
            shaper.push(OutFinish("stop", "FINISHED", (), "", answer))
        assert turn.tool_choice.mode is not ToolChoiceMode.NAMED or turn.tool_choice.name in {t.name for t in turn.tools}


def _nested_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_a_schema_nested_too_deeply_to_check_is_a_400_not_a_crash() -> None:
    for levels in (150, 450):  # jsonschema's own walk gives up first, then even the canonical encoding
        bodies = [{"tools": [{"type": "function", "function": {"name": "f", "parameters": _nested_schema(levels)}}]},
                  {"response_format": {"type": "json_schema",
                                       "json_schema": {"name": "x", "schema": _nested_schema(levels)}}}]
        for fields in bodies:
            body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], **fields}
            try:
                to_turn(validate_request(body), REGISTRY, "r")
            except RequestInvalid as exc:
                assert exc.status == 400 and exc.param and "nested too deeply" in str(exc), exc
            else:
                raise AssertionError(f"{levels} levels accepted")
