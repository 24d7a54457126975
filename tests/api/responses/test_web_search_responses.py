"""The Responses hosted `web_search` tool (every name variant) answered with DeepSeek's search mode: a
`web_search_call` item before the message, `url_citation` annotations, the `response.web_search_call.*`
stream events, and `filters` honoured — read with the openai SDK's typed objects, every exchange checked
against OpenAI's published schemas (test_responses_api.check_responses_wire)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.responses import (
    ResponseFunctionWebSearch,
    ResponseOutputMessage,
    ResponseWebSearchCallCompletedEvent,
    ResponseWebSearchCallInProgressEvent,
    ResponseWebSearchCallSearchingEvent,
)

from conformance_support import ConformanceStack, OpenAISchemas, openai_schemas
from deepseek2api.simulator.replies import excerpt_of, search_results_for
from responses_support import parse_stream, response_schemas
from test_responses_api import check_responses_wire, client, raw_stream

__all__ = ["openai_schemas", "response_schemas"]

QUESTION = "what is new in the simulator handbook this week"
SIM_RESULTS = search_results_for(excerpt_of(QUESTION))
VARIANTS = ("web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26")


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack, response_schemas: OpenAISchemas) -> Iterator[None]:
    mark = stack.wire.mark()
    yield
    stack.assert_invariants()
    check_responses_wire(stack.wire.since(mark), response_schemas)


def _call_then_message(output: list[Any]) -> tuple[ResponseFunctionWebSearch, ResponseOutputMessage]:
    assert [item.type for item in output] == ["web_search_call", "message"], [item.type for item in output]
    call, message = output
    assert isinstance(call, ResponseFunctionWebSearch) and isinstance(message, ResponseOutputMessage)
    assert call.status == "completed" and call.id.startswith("ws_")
    assert call.action.type == "search" and call.action.query == QUESTION  # type: ignore[union-attr]
    return call, message


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_hosted_search_variant_searches_and_cites(stack: ConformanceStack, variant: str) -> None:
    response = client(stack).responses.create(model="deepseek-chat", input=QUESTION, tools=[{"type": variant}])
    _, message = _call_then_message(response.output)
    part = message.content[0]
    assert part.type == "output_text" and "According to the simulated search" in part.text
    urls = [a.url for a in part.annotations if a.type == "url_citation"]
    assert urls == [SIM_RESULTS[0]["url"], SIM_RESULTS[1]["url"]]


def test_the_stream_sends_the_web_search_call_events_before_the_message(stack: ConformanceStack) -> None:
    with client(stack).responses.stream(model="deepseek-chat", input=QUESTION,
                                        tools=[{"type": "web_search"}]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    _call_then_message(final.output)
    kinds = [type(e) for e in events]
    first_text = next(i for i, e in enumerate(events) if e.type == "response.output_text.delta")
    for kind in (ResponseWebSearchCallInProgressEvent, ResponseWebSearchCallSearchingEvent,
                 ResponseWebSearchCallCompletedEvent):
        assert kinds.index(kind) < first_text, kind
    assert kinds.index(ResponseWebSearchCallInProgressEvent) < kinds.index(ResponseWebSearchCallSearchingEvent) \
        < kinds.index(ResponseWebSearchCallCompletedEvent)
    assert final.output[1].content[0].annotations  # type: ignore[union-attr]


def test_domain_filters_drop_results_and_their_links(stack: ConformanceStack) -> None:
    blocked = {"type": "web_search", "filters": {"blocked_domains": ["docs.example.com"]}}
    for stream in (False, True):
        if stream:
            status, body = raw_stream(stack, {"model": "deepseek-chat", "input": QUESTION, "tools": [blocked]})
            assert status == 200
            output = parse_stream(body).events[-1]["response"]["output"]
            text = output[1]["content"][0]["text"]
            urls = [a["url"] for a in output[1]["content"][0]["annotations"]]
        else:
            response = client(stack).responses.create(model="deepseek-chat", input=QUESTION, tools=[blocked])
            _, message = _call_then_message(response.output)
            text = message.content[0].text  # type: ignore[union-attr]
            urls = [a.url for a in message.content[0].annotations]  # type: ignore[union-attr]
        assert "docs.example.com" not in text and urls == [SIM_RESULTS[1]["url"]], (stream, text)
    allowed = {"type": "web_search", "filters": {"allowed_domains": ["example.org"]}}
    response = client(stack).responses.create(model="deepseek-chat", input=QUESTION, tools=[allowed])
    urls = [a.url for a in response.output[1].content[0].annotations]
    assert urls == ["https://handbook.example.org/deepseek2api/testing"]


def test_without_the_hosted_tool_nothing_is_searched(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(model="deepseek-chat", input=QUESTION)
    assert [item.type for item in response.output] == ["message"]
    assert "simulated search" not in response.output_text
