"""Tool calls and structured output on chat completions, end to end: the real `openai` SDK (strict
validation) against gateway + simulator. Every exchange is also checked on the wire by the recorder
(OpenAI's schemas, the tool-call delta rules, no markup in any content: conformance_support).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from conformance_support import (
    ConformanceStack,
    OpenAISchemas,
    conformance_stack,
    openai_schemas,
    parse_sse,
    user,
)
from deepseek2api.simulator.toolcalls import MARKUPS
from gateway_support import API_KEY

__all__ = ["openai_schemas"]

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                   "days": {"type": "integer"}},
                  "required": ["city"], "additionalProperties": False}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                                            "parameters": WEATHER_SCHEMA}}
SEARCH = {"type": "function", "function": {"name": "search", "description": "Search the docs.", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["query"]}}}
WRITE = {"type": "function", "function": {"name": "write_file", "description": "Write a file.", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"]}}}
TOOLS = [WEATHER, SEARCH, WRITE]
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
CODE = 'if a < b && c > "d":\n    print(\'x\\n\', r"\\d+")  # <tag> &amp; 中文\n\n'


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    # Sessions are kept upstream so the tests can read the prompts the simulator received.
    with conformance_stack(openai_schemas, accounts=2, upstream={"delete_session": False},
                           server={"keepalive_interval": 0.3}) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


def strict(stack: ConformanceStack) -> openai.OpenAI:
    return stack.openai(_strict_response_validation=True)


def prompts_sent(stack: ConformanceStack) -> list[str]:
    """Every prompt the simulator received, oldest first."""
    state = stack.simulator.config.app.state.sim
    messages = [m for session in list(state.sessions.values()) for m in list(session.messages.values())
                if m.role == "USER"]
    return [m.prompt for m in sorted(messages, key=lambda m: m.inserted_at)]


def calls_of(message: Any) -> list[tuple[str, Any]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or ()]


def assert_valid_arguments(message: Any) -> None:
    for call in message.tool_calls or ():
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


# ---- non-stream -----------------------------------------------------------------------------------


def test_a_tool_named_by_the_user_comes_back_as_a_call(stack: ConformanceStack) -> None:
    completion = strict(stack).chat.completions.create(
        model="deepseek-chat", messages=user("What is the weather? Use get_weather now"), tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will call get_weather (simulated)."
    assert calls_of(choice.message) == [("get_weather", {"city": "simulated value"})]
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and len(call.id) == 29 and call.type == "function"
    assert_valid_arguments(choice.message)
    assert completion.usage is not None and completion.usage.prompt_tokens > 100  # the tool prompt is counted


def test_the_client_system_prompt_and_the_catalog_reach_the_model(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    strict(stack).chat.completions.create(
        model="deepseek-chat", tools=TOOLS,
        messages=[{"role": "system", "content": "You are Captain Ada; answer like a pirate."},
                  {"role": "user", "content": "hello there"}])
    prompt = prompts_sent(stack)[before]
    assert prompt.startswith("You are Captain Ada; answer like a pirate.\n\n# Tools")
    assert "### get_weather" in prompt and "- city (string, required): City name" in prompt


def test_tool_choice_none_sends_no_catalog_and_returns_text(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    completion = strict(stack).chat.completions.create(
        model="deepseek-chat", messages=user("Use get_weather now"), tools=TOOLS, tool_choice="none")
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].message.tool_calls is None
    assert "# Tools" not in prompts_sent(stack)[before]


def test_tool_choice_required_gets_its_call(stack: ConformanceStack) -> None:
    completion = strict(stack).chat.completions.create(
        model="deepseek-chat", messages=user("Go. [sim:tool=search]"), tools=TOOLS, tool_choice="required")
    assert calls_of(completion.choices[0].message) == [("search", {"query": "simulated value"})]


def test_a_named_choice_offers_only_that_tool(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    completion = strict(stack).chat.completions.create(
        model="deepseek-chat", messages=user("Tell me something."), tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "search"}})
    assert calls_of(completion.choices[0].message) == [("search", {"query": "simulated value"})]
    prompts = prompts_sent(stack)[before:]
    assert len(prompts) == 1  # the catalog and the reminder offered only "search": called at once


def test_a_call_to_an_undeclared_tool_gets_one_repair_round_then_text(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    completion = strict(stack).chat.completions.create(model="deepseek-chat", messages=user("[sim:tool=launch]"),
                                                       tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert choice.message.content == "I will call launch (simulated)."  # the markup never shows
    prompts = prompts_sent(stack)[before:]
    assert len(prompts) == 2 and prompts[1].startswith(prompts[0])
    assert prompts[1].endswith('<｜User｜>There is no tool named "launch". Answer with only a <|DSML|tool_calls> '
                               "block in the format given above, using only the listed tools and every required "
                               "parameter.")


def test_a_required_call_that_never_comes_is_a_422_naming_tool_choice(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        strict(stack).chat.completions.create(model="deepseek-chat", messages=user("Just chat."), tools=TOOLS,
                                              tool_choice="required")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "tool_call_required" and body["param"] == "tool_choice"
    prompts = prompts_sent(stack)[before:]
    assert len(prompts) == 2 and prompts[1].endswith("You must call a tool now. Answer with only a "
                                                     "<|DSML|tool_calls> block in the format given above, using "
                                                     "only the listed tools and every required parameter.")


def test_parallel_calls_and_the_parallel_switch(stack: ConformanceStack) -> None:
    client = strict(stack)
    both = client.chat.completions.create(model="deepseek-chat", messages=user("[sim:tool=get_weather,search]"),
                                          tools=TOOLS)
    assert [name for name, _ in calls_of(both.choices[0].message)] == ["get_weather", "search"]
    assert len({c.id for c in both.choices[0].message.tool_calls}) == 2
    one = client.chat.completions.create(model="deepseek-chat", messages=user("[sim:tool=get_weather,search]"),
                                         tools=TOOLS, parallel_tool_calls=False)
    assert [name for name, _ in calls_of(one.choices[0].message)] == ["get_weather"]


def test_the_tool_result_round_trip_reaches_a_final_answer(stack: ConformanceStack) -> None:
    client = strict(stack)
    messages: list[Any] = user("What is the weather in Paris? use get_weather")
    first = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 °C & <dry>"}]
    before = len(prompts_sent(stack))
    final = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == \
        'The tool get_weather returned: "Sunny, 21 °C & <dry>". That is the answer (simulated).'
    prompt = prompts_sent(stack)[before]
    assert '<|DSML|invoke name="get_weather">' in prompt  # the past call, re-rendered
    assert f'<|DSML|tool_result id="{call.id}" name="get_weather">' in prompt


def test_tool_messages_missing_or_out_of_order_are_tolerated(stack: ConformanceStack) -> None:
    calls = [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"A"}'}},
             {"id": "call_b", "type": "function", "function": {"name": "search", "arguments": '{"query":"q"}'}},
             {"id": "call_c", "type": "function", "function": {"name": "search", "arguments": "{}"}}]
    completion = strict(stack).chat.completions.create(model="deepseek-chat", tools=TOOLS, messages=[
        {"role": "user", "content": "three things"}, {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_b", "content": "docs"},
        {"role": "tool", "tool_call_id": "call_a", "content": "rain"}])
    assert completion.choices[0].message.content == \
        'The tool get_weather returned: "rain". That is the answer (simulated).'


def test_legacy_functions_get_a_function_call(stack: ConformanceStack) -> None:
    body = {"model": "deepseek-chat", "messages": user("Use get_weather now"),
            "functions": [WEATHER["function"]], "function_call": "auto"}
    with stack.http() as http:
        answer = http.post("/v1/chat/completions", json=body).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]
    assert choice["message"]["function_call"]["name"] == "get_weather"
    assert json.loads(choice["message"]["function_call"]["arguments"]) == {"city": "simulated value"}
    body["messages"] = [*body["messages"], {"role": "assistant", "content": None,
                                            "function_call": choice["message"]["function_call"]},
                        {"role": "function", "name": "get_weather", "content": "foggy"}]
    with stack.http() as http:
        final = http.post("/v1/chat/completions", json=body).json()
    assert final["choices"][0]["message"]["content"] == \
        'The tool get_weather returned: "foggy". That is the answer (simulated).'


def test_a_file_body_arrives_byte_for_byte(stack: ConformanceStack) -> None:
    directive = "[sim:tool=write_file args=" + json.dumps({"path": "a.py", "content": CODE}) + "]"
    client = strict(stack)
    for stream in (False, True):
        if stream:
            with client.chat.completions.stream(model="deepseek-chat", messages=user(directive + " [sim:split=1]"),
                                                tools=TOOLS) as events:
                message = events.get_final_completion().choices[0].message
        else:
            message = client.chat.completions.create(model="deepseek-chat", messages=user(directive),
                                                     tools=TOOLS).choices[0].message
        assert calls_of(message) == [("write_file", {"path": "a.py", "content": CODE})]


def test_a_reasoner_call_written_only_while_thinking_is_recovered(stack: ConformanceStack) -> None:
    completion = strict(stack).chat.completions.create(
        model="deepseek-reasoner", messages=user("[sim:tool=get_weather] [sim:tool_in=reasoning]"), tools=TOOLS)
    message = completion.choices[0].message
    assert calls_of(message) == [("get_weather", {"city": "simulated value"})]
    assert message.content is None
    assert (message.model_extra or {})["reasoning_content"] == "I should use a tool.\nI will call get_weather (simulated)."


# ---- streaming --------------------------------------------------------------------------------------


def test_the_stream_helper_accumulates_calls_and_parses_pydantic_tools(stack: ConformanceStack) -> None:
    class GetWeather(BaseModel):
        city: str
        days: int

    tool = openai.pydantic_function_tool(GetWeather)
    with strict(stack).chat.completions.stream(
            model="deepseek-chat", messages=user("Call GetWeather please [sim:split=2]"), tools=[tool]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "I will call GetWeather (simulated)."
    parsed = choice.message.tool_calls[0].function.parsed_arguments
    assert parsed == GetWeather(city="simulated value", days=1)
    assert "tool_calls.function.arguments.done" in kinds and "content.done" in kinds


def test_raw_stream_chunks_follow_the_delta_rules(stack: ConformanceStack) -> None:
    with stack.http() as http:
        response = http.post("/v1/chat/completions", json={
            "model": "deepseek-chat", "stream": True, "tools": TOOLS,
            "messages": user("[sim:tool=get_weather,search] [sim:split=1]")})
    chunks = [json.loads(line[6:]) for line in response.text.split("\n\n") if line.startswith("data: {")]
    tool_deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
                   if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert [(d["index"], "id" in d, "name" in d["function"]) for d in tool_deltas] == \
        [(0, True, True), (0, False, False), (1, True, True), (1, False, False)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_keep_alives_flow_while_a_call_is_captured(stack: ConformanceStack) -> None:
    # ~16 pieces of markup at 8 pieces/s: the sieve captures silently for ~2 s, keepalive_interval is 0.3 s.
    stack.sim_set(slow_tokens_per_second=8.0)
    try:
        with stack.http() as http:
            response = http.post("/v1/chat/completions", json={
                "model": "deepseek-chat", "stream": True, "tools": TOOLS,
                "messages": user("[sim:tool=get_weather markup=ascii] [sim:split=12] [sim:fault=slow]")})
    finally:
        stack.sim_set(slow_tokens_per_second=5.0)
    events = parse_sse(response.content)
    kinds = ["comment" if e.kind == "comment" else
             "call" if '"tool_calls"' in e.text else "text" if '"content":"' in e.text else "other" for e in events]
    last_text, first_call = max(i for i, k in enumerate(kinds) if k == "text"), kinds.index("call")
    assert last_text < first_call and "comment" in kinds[last_text:first_call], kinds
    assert '"finish_reason":"tool_calls"' in response.text


@pytest.mark.parametrize("markup", MARKUPS)
def test_every_markup_variant_gives_the_same_call_streamed_and_not(stack: ConformanceStack, markup: str) -> None:
    client = strict(stack)
    prompt = f"[sim:tool=write_file args={json.dumps({'path': 'x.txt', 'content': CODE})} markup={markup}]"
    whole = client.chat.completions.create(model="deepseek-chat", messages=user(prompt), tools=TOOLS)
    with client.chat.completions.stream(model="deepseek-chat", messages=user(prompt + " [sim:split=1]"),
                                        tools=TOOLS) as stream:
        streamed = stream.get_final_completion()
    for completion in (whole, streamed):
        message = completion.choices[0].message
        assert calls_of(message) == [("write_file", {"path": "x.txt", "content": CODE})]
        assert completion.choices[0].finish_reason == "tool_calls"
        assert "invented result" not in (message.content or "")
    assert (whole.choices[0].message.content or "") == (streamed.choices[0].message.content or "")


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(markup=st.sampled_from(MARKUPS), names=st.sampled_from(["get_weather", "search", "get_weather,search"]),
       split=st.integers(min_value=1, max_value=7))
def test_property_stream_equals_non_stream(stack: ConformanceStack, markup: str, names: str, split: int) -> None:
    client = strict(stack)
    prompt = f"[sim:tool={names} markup={markup}]"
    whole = client.chat.completions.create(model="deepseek-chat", messages=user(prompt), tools=TOOLS)
    with client.chat.completions.stream(model="deepseek-chat", messages=user(f"{prompt} [sim:split={split}]"),
                                        tools=TOOLS) as stream:
        streamed = stream.get_final_completion()
    a, b = whole.choices[0], streamed.choices[0]
    assert (a.message.content or "", calls_of(a.message), a.finish_reason) == \
        (b.message.content or "", calls_of(b.message), b.finish_reason)
    assert_valid_arguments(a.message)
    stack.check_wire()  # no marker in any emitted content, delta rules


# ---- structured output ----------------------------------------------------------------------------------


class Forecast(BaseModel):
    city: str
    days: int


def test_parse_with_a_pydantic_model(stack: ConformanceStack) -> None:
    completion = strict(stack).chat.completions.parse(
        model="deepseek-chat", response_format=Forecast,
        messages=user('Forecast please. [sim:reply=```json\n{"city": "Paris", "days": 3}\n```]'))
    message = completion.choices[0].message
    assert message.parsed == Forecast(city="Paris", days=3)
    assert message.content == '{"city": "Paris", "days": 3}'  # the fence is removed


def test_json_object_answers_stream_as_checked_json(stack: ConformanceStack) -> None:
    with strict(stack).chat.completions.stream(
            model="deepseek-chat", response_format={"type": "json_object"},
            messages=user('JSON please [sim:reply=Sure! {"ok": true}] [sim:split=1]')) as stream:
        final = stream.get_final_completion()
    assert json.loads(final.choices[0].message.content or "") == {"ok": True}


def test_an_answer_that_never_fits_the_schema_is_a_422(stack: ConformanceStack) -> None:
    before = len(prompts_sent(stack))
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        strict(stack).chat.completions.parse(model="deepseek-chat", response_format=Forecast,
                                             messages=user('[sim:reply={"city": "Paris"}]'))
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_structured_output" and "days" in body["message"]
    prompts = prompts_sent(stack)[before:]
    assert len(prompts) == 2 and "Your JSON did not match the schema" in prompts[1]


# ---- bad input --------------------------------------------------------------------------------------------

BAD = [
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
    ({"tools": [WEATHER, {"type": "function", "function": {"name": "x", "parameters": {"type": "string"}}}]},
     "tools[1].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": [1]}}]}, "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": "object",
                                                                           "properties": 3}}}]},
     "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": "get_weather"}, "tools"),
    ({"tools": [7]}, "tools[0]"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "function"}}, "tool_choice.function.name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"functions": [{"name": "f"}, {"name": "f"}]}, "functions[1].name"),
    ({"functions": [WEATHER["function"]], "function_call": {"name": "other"}}, "function_call"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": "json"}, "response_format"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "wat"}}}},
     "response_format.json_schema.schema"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c"}]}]},
     "messages[1].tool_calls[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "#/nope"}}}}}]}, "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:1/s.json"}}}}}]},
     "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {
        "type": "object", "anyOf": [{"$ref": "#"}]}}}]}, "tools[0].function.parameters"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}}}}, "response_format.json_schema.schema"),
]


@pytest.mark.parametrize(("extra", "param"), BAD, ids=[param for _, param in BAD])
def test_malformed_tool_fields_are_a_400_naming_the_param(stack: ConformanceStack, extra: dict[str, Any],
                                                          param: str) -> None:
    body = {"model": "deepseek-chat", "messages": user("hi"), **extra}
    response = httpx.post(f"{stack.base_url}/v1/chat/completions", json=body, timeout=30,
                          headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param, response.text
