"""The OpenAI Responses API (`/v1/responses`) with the real `openai` SDK, end to end against the simulator.

Every exchange on `/v1/responses` a test causes is checked after it against OpenAI's published
schemas (Response, ResponseStreamEvent, ResponseItemList, ErrorResponse) and the event-order rules
of docs/tools.md (responses_support.py), whatever client made it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from conformance_support import (
    ConformanceStack,
    Exchange,
    OpenAISchemas,
    _no_markup,
    conformance_stack,
    openai_schemas,
)
from deepseek2api.simulator.replies import reply_for
from responses_support import check_events, parse_stream, response_schemas

__all__ = ["openai_schemas", "response_schemas"]  # imported fixtures used by this module


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    with conformance_stack(openai_schemas, accounts=2, server={"keepalive_interval": 0.3},
                           pool={"queue_timeout": 2.0}) as running:
        yield running


def _no_markup_in(response: dict[str, Any], where: str) -> None:
    """No tool markup ever reaches answer text or reasoning (conformance_support's rule for chat)."""
    for item in response.get("output", ()):
        for part in [*item.get("content", ()), *item.get("summary", ())]:
            _no_markup(part.get("text"), where)


def check_responses_wire(exchanges: list[Exchange], schemas: OpenAISchemas) -> None:
    for exchange in exchanges:
        if not exchange.route.startswith("/responses") or exchange.status is None:
            continue
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        body = bytes(exchange.body)
        if exchange.status >= 400:
            schemas.validate("ErrorResponse", exchange.json())
        elif exchange.headers.get("content-type", "").startswith("text/event-stream"):
            try:
                _no_markup_in(check_events(parse_stream(body).events, schemas), where)
            except AssertionError as failure:
                raise AssertionError(f"{where}: {failure}") from None
        elif exchange.method == "POST" or (exchange.method == "GET" and not exchange.route.endswith("input_items")):
            schemas.validate("Response", exchange.json())
            _no_markup_in(exchange.json(), where)
        elif exchange.method == "GET":
            schemas.validate("ResponseItemList", exchange.json())


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack, response_schemas: OpenAISchemas) -> Iterator[None]:
    stack.check_wire()
    mark = stack.wire.mark()
    yield
    stack.assert_invariants()
    check_responses_wire(stack.wire.since(mark), response_schemas)


def client(stack: ConformanceStack) -> Any:
    """The strict SDK client, typed loosely: the tests send shapes (tool dicts, item lists) its TypedDicts
    would need casts for."""
    return stack.openai(_strict_response_validation=True)


def sim_prompts(stack: ConformanceStack) -> list[str]:
    prompts: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    return prompts


def raw_stream(stack: ConformanceStack, body: dict[str, Any]) -> tuple[int, bytes]:
    with stack.http() as http:
        response = http.post("/v1/responses", json={**body, "stream": True})
        return response.status_code, response.content


# ---- create, stream --------------------------------------------------------------------------------


def test_create_answers_with_one_message_and_usage(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(model="deepseek-chat", input="hello there [sim:reply=Hi from sim.]",
                                              instructions="Be brief.", metadata={"case": "one"})
    assert response.status == "completed" and response.object == "response"
    assert response.id.startswith("resp_")
    assert response.output_text == "Hi from sim."
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert response.metadata == {"case": "one"}
    assert response.instructions == "Be brief."
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert "Be brief." in sim_prompts(stack)[-1]  # instructions reached upstream


def test_stream_helper_yields_deltas_and_the_final_response(stack: ConformanceStack) -> None:
    prompt = "stream me a few words [sim:words=30] [sim:split=3]"
    expected = reply_for(prompt, thinking=False, search=False).content
    deltas: list[str] = []
    with client(stack).responses.stream(model="deepseek-chat", input=prompt) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert len(deltas) > 5
    assert "".join(deltas) == expected == final.output_text
    assert final.status == "completed" and final.usage is not None
    assert client(stack).responses.retrieve(final.id).output_text == expected  # stored before the stream ended


def test_stream_events_are_ordered_and_match_openai_schemas(stack: ConformanceStack,
                                                            response_schemas: OpenAISchemas) -> None:
    status, body = raw_stream(stack, {"model": "deepseek-reasoner", "input": "think first [sim:split=4]"})
    assert status == 200
    final = check_events(parse_stream(body).events, response_schemas)
    kinds = [item["type"] for item in final["output"]]
    assert kinds == ["reasoning", "message"]
    reply = reply_for("think first [sim:split=4]", thinking=True, search=False)
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": reply.reasoning}]
    assert final["output"][1]["content"][0]["text"] == reply.content
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_reasoning_effort_none_turns_thinking_off(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(model="deepseek-reasoner", input="no thinking please",
                                              reasoning={"effort": "none"})
    assert [item.type for item in response.output] == ["message"]
    assert response.reasoning is not None and response.reasoning.effort == "none"


def test_reasoning_item_sent_back_is_accepted_and_not_sent_upstream(stack: ConformanceStack) -> None:
    first = client(stack).responses.create(model="deepseek-reasoner", input="first thoughts")
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary
    history: list[Any] = [{"role": "user", "content": "first thoughts"},
                          *[item.model_dump(exclude_none=True) for item in first.output],
                          {"role": "user", "content": "and now? [sim:reply=ok]"}]
    second = client(stack).responses.create(model="deepseek-reasoner", input=history)
    assert second.output_text == "ok"
    prompt = sim_prompts(stack)[-1]
    assert reasoning.summary[0].text not in prompt
    assert first.output_text in prompt


def test_search_model_answers_with_url_citation_annotations(stack: ConformanceStack) -> None:
    response = client(stack).responses.create(model="deepseek-chat-search", input="what is the simulator")
    message = response.output[-1]
    assert message.type == "message"
    part = message.content[0]
    assert part.type == "output_text"
    assert [a.type for a in part.annotations] == ["url_citation", "url_citation"]
    for annotation in part.annotations:
        assert annotation.type == "url_citation"
        assert part.text[annotation.start_index:annotation.end_index].endswith(f"({annotation.url})")


def test_keepalive_comments_flow_while_upstream_is_silent(stack: ConformanceStack) -> None:
    status, body = raw_stream(stack, {"model": "deepseek-chat", "input": "slowly [sim:stall=1.2]"})
    assert status == 200
    stream = parse_stream(body)
    assert stream.keepalives >= 1
    assert stream.events[-1]["type"] == "response.completed"


# ---- structured output -------------------------------------------------------------------------


class Trip(BaseModel):
    city: str
    days: int


def test_parse_with_a_pydantic_model_returns_the_parsed_object(stack: ConformanceStack) -> None:
    response = client(stack).responses.parse(model="deepseek-chat", text_format=Trip,
                                             input='plan a trip [sim:reply={"city": "Paris", "days": 3}]')
    assert response.output_parsed == Trip(city="Paris", days=3)
    prompt = sim_prompts(stack)[-1]
    assert "JSON" in prompt and '"city"' in prompt  # the schema was asked for upstream


# ---- previous_response_id, retrieve, delete, input_items ---------------------------------------------


def test_previous_response_id_chains_prepend_the_stored_conversation(stack: ConformanceStack) -> None:
    api = client(stack)
    first = api.responses.create(model="deepseek-chat", input="my name is Ada [sim:reply=Noted, Ada.]")
    second = api.responses.create(model="deepseek-chat", input="and I like tea [sim:reply=Tea noted.]",
                                  previous_response_id=first.id)
    third = api.responses.create(model="deepseek-chat", input="what do you know? [sim:reply=Ada, tea.]",
                                 previous_response_id=second.id)
    assert third.previous_response_id == second.id
    prompt = sim_prompts(stack)[-1]
    for text in ("my name is Ada", "Noted, Ada.", "and I like tea", "Tea noted.", "what do you know?"):
        assert text in prompt
    assert prompt.index("my name is Ada") < prompt.index("Tea noted.") < prompt.index("what do you know?")


def test_retrieve_input_items_and_delete_a_stored_response(stack: ConformanceStack) -> None:
    api = client(stack)
    created = api.responses.create(model="deepseek-chat", input=[
        {"role": "developer", "content": "rules"}, {"role": "user", "content": "question [sim:reply=answer]"}])
    fetched = api.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == "answer"
    items = api.responses.input_items.list(created.id, order="asc")
    assert [(i.type, i.role) for i in items.data] == [("message", "developer"), ("message", "user")]
    assert all(i.id for i in items.data)
    newest_first = api.responses.input_items.list(created.id)
    assert [i.id for i in newest_first.data] == [i.id for i in reversed(items.data)]
    api.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.delete(created.id)


def test_store_false_keeps_nothing(stack: ConformanceStack) -> None:
    api = client(stack)
    created = api.responses.create(model="deepseek-chat", input="ephemeral", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(created.id)


def test_unknown_previous_response_id_is_a_404_in_openais_envelope(stack: ConformanceStack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(stack).responses.create(model="deepseek-chat", input="hi", previous_response_id="resp_nope")
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "previous_response_id"
    assert "resp_nope" in body["message"]


# ---- input validation and failures -------------------------------------------------------------------


def test_a_remote_input_image_is_a_clear_400_while_fetching_is_off(stack: ConformanceStack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(stack).responses.create(model="deepseek-chat", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "what is this"},
            {"type": "input_image", "image_url": "https://example.com/a.png"}]}])
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "input[0].content[1].image_url"
    assert "files.fetch_remote" in body["message"]


def test_unknown_model_and_bad_fields_are_answered_in_openais_envelope(stack: ConformanceStack) -> None:
    api = client(stack)
    with pytest.raises(openai.NotFoundError):
        api.responses.create(model="gpt-nope", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        api.responses.create(model="deepseek-chat", input="hi", tool_choice="sometimes")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tool_choice"
    with stack.http() as http:
        answer = http.post("/v1/responses", json={"model": "deepseek-chat", "input": "hi", "brand_new_field": {"x": 1},
                                                   "prompt_cache_key": "k", "include": ["reasoning.encrypted_content"],
                                                   "tools": [{"type": "web_search"}], "store": False})
    assert answer.status_code == 200, answer.text


def test_failure_before_the_first_byte_is_an_http_error(stack: ConformanceStack) -> None:
    status, body = raw_stream(stack, {"model": "deepseek-chat", "input": "boom [sim:fault=busy,busy,busy]"})
    stack.wait_usable()
    assert status >= 500 or status == 429, (status, body[:300])


def test_failure_after_the_first_byte_is_a_response_failed_event(stack: ConformanceStack) -> None:
    status, body = raw_stream(stack, {"model": "deepseek-chat", "input": "cut me [sim:fault=cut] [sim:words=40]"})
    assert status == 200
    events = parse_stream(body).events
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert all(e["type"] != "response.completed" for e in events)


def test_structured_output_that_stays_invalid_is_a_422_naming_text_format(stack: ConformanceStack) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client(stack).responses.parse(model="deepseek-chat", text_format=Trip, input="plan [sim:reply=not json at all]")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "text.format"


def test_a_failing_response_store_is_a_retryable_503_not_a_crash(stack: ConformanceStack,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(owner: str, ids: list[str]) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(stack.gateway.responses.store, "get_many", broken)
    with pytest.raises(openai.InternalServerError) as caught:
        client(stack).responses.retrieve("resp_any")
    assert caught.value.status_code == 503 and caught.value.response.headers.get("retry-after") == "5"


def test_an_answer_cut_upstream_ends_as_response_incomplete(stack: ConformanceStack) -> None:
    # More INCOMPLETE rounds than upstream.max_continue_rounds (8): the gateway gives up continuing.
    status, body = raw_stream(stack, {"model": "deepseek-chat", "input": "long [sim:fault=incomplete] [sim:rounds=12]"})
    assert status == 200
    final = parse_stream(body).events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["content"][0]["text"]
