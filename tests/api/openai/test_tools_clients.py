"""Tool calls with the agent frameworks people point at the gateway, against gateway + simulator:
the openai npm SDK, LangChain (`bind_tools`, `with_structured_output`), a LangGraph agent loop,
LiteLLM, and the OpenAI Agents SDK on its chat-completions path. Every exchange is also checked on
the wire (schemas, tool-call delta rules, no markup in content: conformance_support).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM stays offline (docs/clients.md)
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from conformance_support import (
    ConformanceStack,
    openai_schemas,
    user,
)
from gateway_support import API_KEY
from test_conformance_node import NODE, NPM, _install_node_packages, run_node

__all__ = ["openai_schemas"]

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


# ---- npm openai ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(NODE is None or NPM is None, reason="no `node`/`npm`: the openai npm SDK tests need Node 20+")
def test_the_npm_sdk_streams_tool_calls(stack: ConformanceStack) -> None:
    _install_node_packages()
    result = run_node(stack, "tools.test.mjs")
    assert "ℹ pass 2" in result.stdout and "ℹ fail 0" in result.stdout, result.stdout[-3000:]


# ---- LangChain / LangGraph ---------------------------------------------------------------------------


def chat_openai(stack: ConformanceStack, **options: Any) -> Any:
    langchain_openai = pytest.importorskip("langchain_openai")
    return langchain_openai.ChatOpenAI(model=options.pop("model", "deepseek-chat"), base_url=stack.api_base,
                                       api_key=API_KEY, max_retries=0, timeout=60, **options)


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"It is sunny in {city}, 21 C."


def test_langchain_bind_tools_invoke_and_stream(stack: ConformanceStack) -> None:
    model = chat_openai(stack).bind_tools([get_weather])
    message = model.invoke("What is it like outside? use get_weather")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "simulated value"})]
    assert message.tool_calls[0]["id"].startswith("call_")
    assert message.response_metadata["finish_reason"] == "tool_calls"
    total = None
    for chunk in model.stream("use get_weather [sim:split=1]"):
        total = chunk if total is None else total + chunk
    assert total is not None
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("get_weather", {"city": "simulated value"})]
    assert total.content == "I will call get_weather (simulated)."


class Forecast(BaseModel):
    """A weather forecast."""

    city: str = Field(description="City name")
    days: int


def test_langchain_structured_output_with_json_schema_and_with_function_calling(stack: ConformanceStack) -> None:
    by_schema = chat_openai(stack).with_structured_output(Forecast)  # json_schema by default
    assert by_schema.invoke('Forecast for Paris [sim:reply={"city": "Paris", "days": 3}]') == \
        Forecast(city="Paris", days=3)
    by_tool = chat_openai(stack).with_structured_output(Forecast, method="function_calling")
    assert by_tool.invoke("Forecast for somewhere") == Forecast(city="simulated value", days=1)


def test_a_langgraph_agent_calls_a_tool_and_reaches_a_final_answer(stack: ConformanceStack) -> None:
    prebuilt = pytest.importorskip("langgraph.prebuilt")
    agent = prebuilt.create_react_agent(chat_openai(stack), tools=[get_weather])
    state = agent.invoke({"messages": [("user", "How is the weather in Paris? use get_weather")]})
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert state["messages"][2].content == "It is sunny in simulated value, 21 C."
    final = state["messages"][-1]
    assert not final.tool_calls
    assert final.content == ('The tool get_weather returned: "It is sunny in simulated value, 21 C.". '
                             "That is the answer (simulated).")


# ---- LiteLLM -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_litellm_completion_with_tools(stack: ConformanceStack, stream: bool) -> None:
    litellm = pytest.importorskip("litellm")
    litellm.suppress_debug_info = True
    response = litellm.completion(model="openai/deepseek-chat", api_base=stack.api_base, api_key=API_KEY,
                                  messages=user("use get_weather [sim:split=2]"), tools=[WEATHER], stream=stream,
                                  num_retries=0, max_retries=0, timeout=60)
    if stream:
        response = litellm.stream_chunk_builder(list(response))
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == \
        [("get_weather", {"city": "simulated value"})]


# ---- OpenAI Agents SDK (chat-completions path) ----------------------------------------------------------------


def test_an_agents_sdk_agent_runs_two_tools_to_completion(stack: ConformanceStack) -> None:
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)
    agents.set_default_openai_api("chat_completions")
    seen: list[str] = []

    @agents.function_tool
    def weather(city: str) -> str:
        """Current weather for a city."""
        seen.append(f"weather:{city}")
        return f"sunny in {city}"

    @agents.function_tool
    def local_time(city: str) -> str:
        """Local time in a city."""
        seen.append(f"time:{city}")
        return f"noon in {city}"

    client = AsyncOpenAI(base_url=stack.api_base, api_key=API_KEY, max_retries=0, timeout=60)
    model = agents.OpenAIChatCompletionsModel(model="deepseek-chat", openai_client=client)
    agent = agents.Agent(name="helper", instructions="Use the tools, then answer briefly.",
                         tools=[weather, local_time], model=model)
    result = agents.Runner.run_sync(agent, "Weather and time in Paris? [sim:tool=weather,local_time]", max_turns=4)
    assert sorted(seen) == ["time:simulated value", "weather:simulated value"]
    assert result.final_output == 'The tool local_time returned: "noon in simulated value". That is the answer (simulated).'
    calls = [item for item in result.new_items if type(item).__name__ == "ToolCallItem"]
    assert len(calls) == 2
