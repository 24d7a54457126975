"""Tool calls on `/v1/responses` with the real `openai` SDK: function calls (parallel, forced, none),
the `function_call_output` round trip, namespace and custom tools, calls in streams and through
`previous_response_id`. The simulator writes the calls the way DeepSeek's models do (toolcalls.py);
every exchange is checked against OpenAI's schemas and the stream rules afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conformance_support import (
    ConformanceStack,
    OpenAISchemas,
    openai_schemas,
)
from responses_support import response_schemas
from test_responses_api import check_responses_wire, client, raw_stream, sim_prompts

__all__ = ["openai_schemas", "response_schemas"]

WEATHER: dict[str, Any] = {
    "type": "function", "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
    "strict": True,
}
TIME: dict[str, Any] = {
    "type": "function", "name": "get_time", "description": "Local time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
NAMESPACE: dict[str, Any] = {
    "type": "namespace", "name": "crm", "description": "Customer records.",
    "tools": [{"type": "function", "name": "lookup", "description": "Find a customer by email.",
               "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}}],
}
PATCH: dict[str, Any] = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to the files."}


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack, response_schemas: OpenAISchemas) -> Iterator[None]:
    stack.check_wire()
    mark = stack.wire.mark()
    yield
    stack.assert_invariants()
    check_responses_wire(stack.wire.since(mark), response_schemas)


def calls_of(response: Any) -> list[Any]:
    return [item for item in response.output if item.type in ("function_call", "custom_tool_call")]


def test_a_function_call_comes_back_as_a_function_call_item(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[WEATHER, TIME],
        input='weather please [sim:tool=get_weather args={"city": "Paris"}]')
    [call] = calls_of(response)
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and call.id.startswith("fc_") and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert "DSML" not in response.output_text
    assert "### get_weather" in sim_prompts(stack)[-1]  # the catalog reached upstream


def test_parallel_calls_are_separate_items_in_order(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[WEATHER, TIME],
        input='both [sim:tool=get_weather,get_time args={"city": "Oslo"}]')
    calls = calls_of(response)
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2


def test_a_forced_tool_choice_calls_that_tool(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[WEATHER, TIME], input="what time is it in Rome?",
        tool_choice={"type": "function", "name": "get_time"})
    assert [c.name for c in calls_of(response)] == ["get_time"]
    assert response.tool_choice.type == "function"


def test_tool_choice_none_answers_in_text_without_offering_tools(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[WEATHER], input="get_weather for Paris please",
        tool_choice="none")
    assert calls_of(response) == []
    assert response.output_text
    assert "### get_weather" not in sim_prompts(stack)[-1]


def test_the_function_call_output_round_trip_reaches_a_final_answer(stack: ConformanceStack) -> None:
    api = client(stack)
    first = api.responses.create(model="deepseek-chat", tools=[WEATHER],
                                 input='weather [sim:tool=get_weather args={"city": "Lima"}]', store=False)
    [call] = calls_of(first)
    history: list[Any] = [{"role": "user", "content": 'weather [sim:tool=get_weather args={"city": "Lima"}]'},
                          *[item.model_dump(exclude_none=True) for item in first.output],
                          {"type": "function_call_output", "call_id": call.call_id, "output": "19 C and foggy"}]
    final = api.responses.create(model="deepseek-chat", tools=[WEATHER], input=history)
    assert calls_of(final) == []
    assert "19 C and foggy" in final.output_text
    prompt = sim_prompts(stack)[-1]
    assert call.call_id in prompt and "19 C and foggy" in prompt


def test_previous_response_id_carries_the_call_to_its_output(stack: ConformanceStack) -> None:
    api = client(stack)
    first = api.responses.create(model="deepseek-chat", tools=[WEATHER],
                                 input='weather [sim:tool=get_weather args={"city": "Kyiv"}]')
    [call] = calls_of(first)
    final = api.responses.create(model="deepseek-chat", tools=[WEATHER], previous_response_id=first.id,
                                 input=[{"type": "function_call_output", "call_id": call.call_id, "output": "snow"}])
    assert '"snow"' in final.output_text
    assert "Kyiv" in sim_prompts(stack)[-1]


def test_namespace_tools_are_flattened_upstream_and_restored_in_the_call(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[NAMESPACE, {"type": "web_search"}],
        input='find her [sim:tool=crm.lookup args={"email": "ada@example.com"}]')
    [call] = calls_of(response)
    assert call.type == "function_call" and call.name == "lookup" and call.namespace == "crm"
    assert json.loads(call.arguments) == {"email": "ada@example.com"}
    assert "### crm.lookup" in sim_prompts(stack)[-1]


def test_a_custom_tool_is_answered_as_a_custom_tool_call(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(
        model="deepseek-chat", tools=[PATCH], input="patch it [sim:tool=apply_patch]")
    [call] = calls_of(response)
    assert call.type == "custom_tool_call" and call.name == "apply_patch"
    assert call.input == "simulated input"
    followup = client(stack).responses.create(model="deepseek-chat", tools=[PATCH], previous_response_id=response.id,
                                              input=[{"type": "custom_tool_call_output", "call_id": call.call_id,
                                                      "output": "Done! patched 1 file"}])
    assert "patched 1 file" in followup.output_text


def test_streamed_calls_arrive_as_items_with_their_arguments(stack: ConformanceStack) -> None:
    api = client(stack)
    names: list[str] = []
    with api.responses.stream(model="deepseek-chat", tools=[WEATHER, TIME],
                              input='both [sim:tool=get_weather,get_time args={"city": "Nice"}] [sim:split=5]') as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.done":
                names.append(event.name)
        final = stream.get_final_response()
    assert names == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in calls_of(final)] == [{"city": "Nice"}, {"city": "Nice"}]
    assert "DSML" not in final.output_text


def test_streamed_custom_and_namespace_calls_match_the_schemas(stack: ConformanceStack) -> None:
    status, body = raw_stream(stack, {"model": "deepseek-chat", "tools": [PATCH, NAMESPACE],
                                      "input": "go [sim:tool=apply_patch,crm.lookup]"})
    assert status == 200
    text = body.decode()
    assert "response.custom_tool_call_input.done" in text and '"namespace":"crm"' in text


def test_a_required_call_that_never_comes_is_a_422(stack: ConformanceStack) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client(stack).responses.create(model="deepseek-chat", tools=[WEATHER],
                                       input="just chat [sim:reply=no tools today]", tool_choice="required")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tool_choice"
