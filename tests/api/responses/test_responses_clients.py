"""Frameworks on the Responses path: LangChain's ChatOpenAI(use_responses_api=True) with tools, and the
OpenAI Agents SDK on its default Responses model running a two-tool agent to its final output.
Every exchange is checked against OpenAI's schemas and the stream rules afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conformance_support import (
    ConformanceStack,
    OpenAISchemas,
    openai_schemas,
)
from gateway_support import API_KEY
from responses_support import response_schemas
from test_responses_api import check_responses_wire, sim_prompts

langchain_openai = pytest.importorskip("langchain_openai")
agents = pytest.importorskip("agents")

__all__ = ["openai_schemas", "response_schemas"]


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack, response_schemas: OpenAISchemas) -> Iterator[None]:
    stack.check_wire()
    mark = stack.wire.mark()
    yield
    stack.assert_invariants()
    exchanges = stack.wire.since(mark)
    assert any(e.route == "/responses" for e in exchanges), "the client did not use /v1/responses"
    check_responses_wire(exchanges, response_schemas)


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"weather in {city}: 18 C, light rain"


def get_time(city: str) -> str:
    """Local time in a city."""
    return f"time in {city}: 14:05"


def chat_openai(stack: ConformanceStack, **options: Any) -> Any:
    return langchain_openai.ChatOpenAI(model="deepseek-chat", base_url=stack.api_base, api_key=API_KEY,
                                       max_retries=0, timeout=60, use_responses_api=True, **options)


def test_langchain_responses_api_calls_a_bound_tool_and_reads_its_result(stack: ConformanceStack) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    model = chat_openai(stack).bind_tools([get_weather])
    question = HumanMessage('weather? [sim:tool=get_weather args={"city": "Bern"}]')
    first = model.invoke([question])
    [call] = first.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Bern"}
    result = ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])
    final = model.invoke([question, first, result])
    assert not final.tool_calls
    assert "18 C, light rain" in final.text
    assert "18 C, light rain" in sim_prompts(stack)[-1]


def test_langchain_responses_api_streams_text(stack: ConformanceStack) -> None:
    chunks = list(chat_openai(stack).stream("hello [sim:reply=streamed via responses] [sim:split=4]"))
    text = "".join(chunk.text for chunk in chunks)
    assert text == "streamed via responses"


def test_agents_sdk_runs_a_two_tool_agent_to_its_final_output(stack: ConformanceStack) -> None:
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=stack.api_base, api_key=API_KEY, max_retries=0, timeout=60)
    model = agents.OpenAIResponsesModel(model="deepseek-chat", openai_client=client)
    agent = agents.Agent(name="travel", instructions="Use the tools, then answer.", model=model,
                         tools=[agents.function_tool(get_weather), agents.function_tool(get_time)])
    result = agents.Runner.run_sync(agent, 'Plan my afternoon [sim:tool=get_weather,get_time args={"city": "Turin"}]')
    calls = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    assert sorted(str(getattr(c, "name", "")) for c in calls) == ["get_time", "get_weather"]
    assert all(json.loads(getattr(c, "arguments", "")) == {"city": "Turin"} for c in calls)
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert sorted(outputs) == ["time in Turin: 14:05", "weather in Turin: 18 C, light rain"]
    assert isinstance(result.final_output, str) and "Turin" in result.final_output
    prompt = sim_prompts(stack)[-1]
    assert "weather in Turin: 18 C, light rain" in prompt and "time in Turin: 14:05" in prompt
