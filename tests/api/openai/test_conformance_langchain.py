"""Conformance (docs/clients.md): LangChain's ChatOpenAI and ChatDeepSeek pointed at the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance_support import ConformanceStack, openai_schemas
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY

langchain_openai = pytest.importorskip("langchain_openai")
langchain_deepseek = pytest.importorskip("langchain_deepseek")

__all__ = ["openai_schemas"]


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


def chat_openai(stack: ConformanceStack, **options: Any) -> Any:
    return langchain_openai.ChatOpenAI(model=options.pop("model", "deepseek-chat"), base_url=stack.api_base,
                                       api_key=API_KEY, max_retries=0, timeout=60, **options)


def chat_deepseek(stack: ConformanceStack, **options: Any) -> Any:
    return langchain_deepseek.ChatDeepSeek(model=options.pop("model", "deepseek-reasoner"), api_base=stack.api_base,
                                           api_key=API_KEY, max_retries=0, timeout=60, **options)


def test_o14_chat_openai_invoke(stack: ConformanceStack) -> None:
    prompt = "O14 langchain invoke"
    message = chat_openai(stack).invoke(prompt)
    assert message.content == reply_for(prompt, thinking=False, search=False).content
    usage = message.usage_metadata
    assert usage and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert message.response_metadata["finish_reason"] == "stop"


def merged(chunks: list[Any]) -> Any:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk  # how LangChain aggregates a stream (usage_metadata is summed)
    return total


@pytest.mark.parametrize("stream_usage", [False, True])
def test_o14_chat_openai_stream(stack: ConformanceStack, stream_usage: bool) -> None:
    prompt = "O14 langchain stream [sim:words=15]"
    expected_usage = chat_openai(stack).invoke(prompt).usage_metadata
    mark = stack.wire.mark()
    chunks = list(chat_openai(stack, stream_usage=stream_usage).stream(prompt))
    assert len(chunks) > 1
    total = merged(chunks)
    assert total.content == reply_for(prompt, thinking=False, search=False).content
    # With stream_usage LangChain sends include_usage; without it (custom base URL) it does not, and the
    # gateway still reports usage once, on the finish chunk, as DeepSeek does. Either way: counted once.
    [exchange] = stack.wire.chat_since(mark)
    assert exchange.request_json().get("stream_options", {}).get("include_usage", False) is stream_usage
    assert total.usage_metadata == expected_usage


async def test_o14_chat_openai_async(stack: ConformanceStack) -> None:
    prompt = "O14 langchain async"
    model = chat_openai(stack)
    assert (await model.ainvoke(prompt)).content == reply_for(prompt, thinking=False, search=False).content
    pieces = [chunk.content async for chunk in model.astream(prompt)]
    assert "".join(pieces) == reply_for(prompt, thinking=False, search=False).content


def test_o14_chat_openai_thinking_model_keeps_reasoning_out_of_content(stack: ConformanceStack) -> None:
    prompt = "O14 reasoner via ChatOpenAI"
    reply = reply_for(prompt, thinking=True, search=False)
    message = chat_openai(stack, model="deepseek-reasoner").invoke(prompt)
    assert message.content == reply.content  # plain ChatOpenAI drops reasoning_content by design


def test_o15_chat_deepseek_invoke_keeps_reasoning(stack: ConformanceStack) -> None:
    prompt = "O15 deepseek invoke"
    reply = reply_for(prompt, thinking=True, search=False)
    message = chat_deepseek(stack).invoke(prompt)
    assert message.content == reply.content
    assert message.additional_kwargs["reasoning_content"] == reply.reasoning


def test_o15_chat_deepseek_stream_keeps_reasoning(stack: ConformanceStack) -> None:
    prompt = "O15 deepseek stream"
    reply = reply_for(prompt, thinking=True, search=False)
    chunks = list(chat_deepseek(stack, stream_usage=True).stream(prompt))
    reasoning = "".join(c.additional_kwargs.get("reasoning_content") or "" for c in chunks)
    assert reasoning == reply.reasoning
    assert "".join(c.content for c in chunks) == reply.content
    assert merged(chunks).usage_metadata == chat_deepseek(stack).invoke(prompt).usage_metadata
