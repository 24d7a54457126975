"""LangChain's ChatAnthropic against the Messages API: plain invoke, streaming, bind_tools and a tool loop."""

from __future__ import annotations

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import SecretStr

from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, Stack


@tool
def get_weather(city: str, unit: str) -> str:
    """Current weather for a city; unit is celsius or fahrenheit."""
    return f"{city}: 21 degrees {unit}"


STACK_ACCOUNTS = 2  # for the shared `stack` fixture (tests/conftest.py)


def chat(stack: Stack, model: str = "claude-haiku-4-5") -> ChatAnthropic:
    return ChatAnthropic(model_name=model, base_url=stack.base_url, api_key=SecretStr(API_KEY), max_retries=0,
                         timeout=60, stop=None)


def test_invoke_and_stream_give_the_simulators_answer(stack: Stack) -> None:
    expected = reply_for("langchain says hi", thinking=False, search=False).content
    answer = chat(stack).invoke("langchain says hi")
    assert answer.content == expected
    chunks = list(chat(stack).stream("langchain says hi"))
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined = joined + chunk
    assert joined.text == expected
    stack.assert_invariants()


@pytest.mark.parametrize("streaming", [False, True])
def test_bind_tools_gets_a_tool_call_and_the_result_closes_the_loop(stack: Stack, streaming: bool) -> None:
    model = chat(stack, "claude-sonnet-4-6").bind_tools([get_weather])
    history: list[BaseMessage] = [HumanMessage("What is the weather in Quito? Use get_weather please")]
    if streaming:
        chunks = list(model.stream(history))
        first: AIMessage = chunks[0]
        for chunk in chunks[1:]:
            first = first + chunk  # type: ignore[assignment]
        assert isinstance(first, AIMessageChunk)
    else:
        first = model.invoke(history)
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and set(call["args"]) == {"city", "unit"}
    assert call["id"] and call["id"].startswith("toolu_")
    result = get_weather.invoke(call["args"])
    history += [first, ToolMessage(result, tool_call_id=call["id"])]
    final = model.invoke(history)
    assert final.tool_calls == [] and result in final.text
    stack.assert_invariants()
