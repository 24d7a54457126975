"""Anthropic's hosted web search (`web_search_…` tools) answered with DeepSeek's search mode, read with the
anthropic SDK's typed objects: server_tool_use → web_search_tool_result → text with citations, stream and
non-stream, `usage.server_tool_use`, and the domain filters / `max_uses` (chat/web_search.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anthropic.types import (
    CitationsWebSearchResultLocation,
    Message,
    ServerToolUseBlock,
    TextBlock,
    WebSearchResultBlock,
    WebSearchToolResultBlock,
)

from anthropic_support import blocks_of, client, read_stream
from deepseek2api.simulator.replies import excerpt_of, search_results_for
from gateway_support import API_KEY, Stack

QUESTION = "what does the simulator overview say about offline demos"
USER: list[Any] = [{"role": "user", "content": QUESTION}]
SEARCH_TOOL: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
SIM_RESULTS = search_results_for(excerpt_of(QUESTION))


STACK_ACCOUNTS = 2  # for the shared `stack` fixture (tests/conftest.py)


@pytest.fixture(autouse=True)
def _idle_after(stack: Stack) -> Iterator[None]:
    yield
    stack.assert_invariants()


def _search(stack: Stack, tool: dict[str, Any], model: str = "claude-sonnet-4-6") -> Message:
    return client(stack).messages.create(model=model, max_tokens=4096, messages=USER, tools=[tool])  # type: ignore[list-item]


def _parts(message: Message) -> tuple[ServerToolUseBlock, WebSearchToolResultBlock, list[TextBlock]]:
    kinds = [block.type for block in message.content]
    assert kinds[:3] == ["thinking", "server_tool_use", "web_search_tool_result"], kinds
    assert set(kinds[3:]) == {"text"}, kinds
    use, result = message.content[1], message.content[2]
    assert isinstance(use, ServerToolUseBlock) and isinstance(result, WebSearchToolResultBlock)
    texts = [block for block in message.content[3:] if isinstance(block, TextBlock)]
    return use, result, texts


def test_a_web_search_tool_runs_the_turn_with_search_and_answers_with_search_blocks(stack: Stack) -> None:
    message = _search(stack, SEARCH_TOOL)
    use, result, texts = _parts(message)
    assert use.id.startswith("srvtoolu_") and use.name == "web_search" and use.input == {"query": QUESTION}
    assert result.tool_use_id == use.id and isinstance(result.content, list)
    assert all(isinstance(hit, WebSearchResultBlock) and hit.encrypted_content for hit in result.content)
    assert [(hit.url, hit.title) for hit in result.content] == [(r["url"], r["title"]) for r in SIM_RESULTS]
    assert all(hit.page_age and hit.page_age.endswith(", 2026") for hit in result.content)  # published_at
    cited = [c for block in texts for c in block.citations or ()]
    assert all(isinstance(c, CitationsWebSearchResultLocation) for c in cited)
    assert [c.url for c in cited] == [SIM_RESULTS[0]["url"], SIM_RESULTS[1]["url"]]
    assert cited[0].cited_text == SIM_RESULTS[0]["snippet"] and cited[0].encrypted_index
    answer = "".join(block.text for block in texts)
    assert "simulator overview and by the testing handbook." in answer and "](http" not in answer
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1


def test_the_stream_builds_the_same_message_and_every_event_is_typed(stack: Stack) -> None:
    created = _search(stack, SEARCH_TOOL)
    with client(stack).messages.stream(model="claude-sonnet-4-6", max_tokens=4096, messages=USER,
                                       tools=[SEARCH_TOOL]) as stream:  # type: ignore[list-item]
        final = stream.get_final_message()
    _parts(final)

    def shape(message: Message) -> list[Any]:
        dumped = message.model_dump(exclude_none=True)["content"]
        for block in dumped:
            block.pop("id", None), block.pop("tool_use_id", None), block.pop("signature", None)
        return dumped

    assert shape(final) == shape(created)
    assert final.usage.server_tool_use is not None and final.usage.server_tool_use.web_search_requests == 1
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        raw = http.post("/v1/messages", headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
                        json={"model": "claude-haiku-4-5", "max_tokens": 1024, "messages": USER, "stream": True,
                              "tools": [{**SEARCH_TOOL, "type": "web_search_20260209"}]})
    events = read_stream(raw.text)  # strict: every event validates as the SDK's type, blocks in order
    blocks = blocks_of(events)
    assert [b["type"] for b in blocks][:2] == ["server_tool_use", "web_search_tool_result"]
    assert blocks[0]["input"] == {"query": QUESTION}
    assert any(b.get("citations") for b in blocks[2:])
    assert events[-2]["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}


def test_blocked_and_allowed_domains_filter_the_results_and_their_citations(stack: Stack) -> None:
    blocked = _search(stack, {**SEARCH_TOOL, "blocked_domains": ["docs.example.com"]})
    _, result, texts = _parts(blocked)
    assert isinstance(result.content, list)
    assert "https://docs.example.com/simulator/overview" not in [hit.url for hit in result.content]
    urls = [c.url for block in texts for c in block.citations or ()]
    assert urls == [SIM_RESULTS[1]["url"]]
    assert "docs.example.com" not in json.dumps(blocked.model_dump())
    allowed = _search(stack, {**SEARCH_TOOL, "allowed_domains": ["example.org"]})
    _, result, texts = _parts(allowed)
    assert isinstance(result.content, list)
    assert [hit.url for hit in result.content] == ["https://handbook.example.org/deepseek2api/testing"]


def test_max_uses_zero_or_no_search_tool_leaves_search_off(stack: Stack) -> None:
    for tools in ([{**SEARCH_TOOL, "max_uses": 0}], []):
        message = client(stack).messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=USER,
                                                tools=tools)  # type: ignore[arg-type]
        assert [b.type for b in message.content] == ["thinking", "text"]
        assert "simulated search" not in message.content[1].text  # type: ignore[union-attr]
        assert message.usage.server_tool_use is None


def test_choosing_the_search_tool_by_name_is_a_search_not_a_call(stack: Stack) -> None:
    message = client(stack).messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=USER,
                                            tools=[SEARCH_TOOL],  # type: ignore[list-item]
                                            tool_choice={"type": "tool", "name": "web_search"})
    assert [b.type for b in message.content][:2] == ["server_tool_use", "web_search_tool_result"]
    assert message.stop_reason == "end_turn"
