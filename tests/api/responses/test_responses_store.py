"""Stored responses through the gateway: each key sees only its own (GET, input_items, DELETE,
`previous_response_id`, `item_reference`, also with `token_passthrough`), `item_reference` resolves in
place and in order, the size limits answer 400s, and what never goes upstream is not kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conformance_support import ConformanceStack, OpenAISchemas, conformance_stack, openai_schemas
from gateway_support import API_KEY, running_stack
from responses_support import response_schemas
from test_responses_api import check_responses_wire, sim_prompts

__all__ = ["openai_schemas", "response_schemas"]  # imported fixtures used by this module

OTHER_KEY = "sk-other-key-9876543210"
KEYS = [{"name": "test", "key": API_KEY}, {"name": "other", "key": OTHER_KEY}]


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    with conformance_stack(openai_schemas, accounts=2, keys=KEYS) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(request: pytest.FixtureRequest, response_schemas: OpenAISchemas) -> Iterator[None]:
    if "stack" not in request.fixturenames:
        yield
        return
    stack: ConformanceStack = request.getfixturevalue("stack")
    mark = stack.wire.mark()
    yield
    check_responses_wire(stack.wire.since(mark), response_schemas)


def post(stack: ConformanceStack, body: dict[str, Any], key: str = API_KEY) -> httpx.Response:
    return httpx.post(f"{stack.base_url}/v1/responses", json={"model": "deepseek-chat", **body}, timeout=60,
                      headers={"authorization": f"Bearer {key}"})


def call(stack: ConformanceStack, method: str, path: str, key: str) -> httpx.Response:
    return httpx.request(method, f"{stack.base_url}/v1/responses/{path}", timeout=30,
                         headers={"authorization": f"Bearer {key}"})


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def test_another_key_gets_the_404_of_an_unknown_id_on_every_path(stack: ConformanceStack) -> None:
    first = post(stack, {"input": "the first key's secret is MARMALADE-7"})
    assert first.status_code == 200
    body = first.json()
    rid, out_id = body["id"], body["output"][-1]["id"]
    in_id = call(stack, "GET", f"{rid}/input_items", API_KEY).json()["data"][0]["id"]
    before = len(sim_prompts(stack))

    for method, path in (("GET", rid), ("GET", f"{rid}/input_items"), ("DELETE", rid)):
        theirs, unknown = call(stack, method, path, OTHER_KEY), call(stack, method, path.replace(rid, "resp_nope"),
                                                                     OTHER_KEY)
        assert theirs.status_code == unknown.status_code == 404, (method, path)
        assert error(theirs)["code"] == error(unknown)["code"] == "not_found"
        assert error(theirs)["message"] == error(unknown)["message"].replace("resp_nope", rid)
    continued = post(stack, {"input": "what was the secret?", "previous_response_id": rid}, OTHER_KEY)
    assert continued.status_code == 404
    assert error(continued)["code"] == "previous_response_not_found"
    assert error(continued)["param"] == "previous_response_id"
    for item_id in (out_id, in_id):
        referenced = post(stack, {"input": [{"type": "item_reference", "id": item_id},
                                            {"role": "user", "content": "and now?"}]}, OTHER_KEY)
        assert referenced.status_code == 404
        assert error(referenced)["type"] == "invalid_request_error" and error(referenced)["param"] == "input"
        assert error(referenced)["code"] == "item_not_found" and item_id in error(referenced)["message"]
    assert len(sim_prompts(stack)) == before  # nothing of the first key's reached the upstream

    # the owner still has everything (the other key's DELETE deleted nothing)
    assert call(stack, "GET", rid, API_KEY).json()["id"] == rid
    again = post(stack, {"input": "what was the secret?", "previous_response_id": rid})
    assert again.status_code == 200 and "MARMALADE-7" in sim_prompts(stack)[-1]
    assert call(stack, "DELETE", rid, API_KEY).json() == {"id": rid, "object": "response", "deleted": True}


def test_item_references_are_resolved_in_place_and_in_order(stack: ConformanceStack) -> None:
    api = stack.openai()
    first = api.responses.create(model="deepseek-chat", input="note the word PELICAN-42")
    listed = api.responses.input_items.list(first.id)
    user_item, answer_item = listed.data[0].id, first.output[-1].id
    answer_text = first.output_text
    second = post(stack, {"input": [
        {"type": "item_reference", "id": user_item},
        {"type": "item_reference", "id": answer_item},
        {"role": "user", "content": "QUESTION-TWO follows the answer"},
    ]})
    assert second.status_code == 200
    prompt = sim_prompts(stack)[-1]
    assert "PELICAN-42" in prompt and answer_text in prompt and "QUESTION-TWO" in prompt
    assert prompt.index("PELICAN-42") < prompt.index(answer_text) < prompt.index("QUESTION-TWO")
    # the stored input keeps the references; its listing shows the items they name
    data = call(stack, "GET", f"{second.json()['id']}/input_items?order=asc", API_KEY).json()["data"]
    assert [item["id"] for item in data[:2]] == [user_item, answer_item]
    assert data[1]["type"] == "message" and data[1]["role"] == "assistant"
    # OpenAI's short form: an item with only an id is a reference too
    third = post(stack, {"input": [{"id": answer_item}, {"role": "user", "content": "short form"}]})
    assert third.status_code == 200 and answer_text in sim_prompts(stack)[-1]


def test_function_call_items_are_referenced_like_messages(stack: ConformanceStack) -> None:
    tools = [{"type": "function", "name": "lookup_weather", "description": "Weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    first = post(stack, {"input": 'weather? [sim:tool=lookup_weather args={"city":"Oslo"}]', "tools": tools})
    assert first.status_code == 200, first.text
    call_item = next(item for item in first.json()["output"] if item["type"] == "function_call")
    second = post(stack, {"tools": tools, "input": [
        {"type": "item_reference", "id": call_item["id"]},
        {"type": "function_call_output", "call_id": call_item["call_id"], "output": "RAINY-AND-9C"},
    ]})
    assert second.status_code == 200, second.text
    prompt = sim_prompts(stack)[-1]
    assert "lookup_weather" in prompt and "Oslo" in prompt and "RAINY-AND-9C" in prompt


def test_reasoning_items_are_referenced_and_kept_out_of_the_prompt(stack: ConformanceStack) -> None:
    first = post(stack, {"model": "deepseek-reasoner", "input": "think about OTTER-5"})
    assert first.status_code == 200
    output = first.json()["output"]
    reasoning = next(item for item in output if item["type"] == "reasoning")
    message = next(item for item in output if item["type"] == "message")
    thought = reasoning["summary"][0]["text"]
    second = post(stack, {"model": "deepseek-reasoner", "input": [
        {"role": "user", "content": "think about OTTER-5"},
        {"type": "item_reference", "id": reasoning["id"]}, {"type": "item_reference", "id": message["id"]},
        {"role": "user", "content": "NEXT-QUESTION"}]})
    assert second.status_code == 200, second.text
    prompt = sim_prompts(stack)[-1]
    answer = message["content"][0]["text"]
    assert prompt.index(answer) < prompt.index("NEXT-QUESTION")
    assert thought not in prompt  # earlier reasoning is not re-sent, as on chat completions


def test_an_unknown_reference_is_a_404_and_unknown_item_types_are_logged_once(
        stack: ConformanceStack, caplog: pytest.LogCaptureFixture) -> None:
    made_up = post(stack, {"input": [{"type": "item_reference", "id": "msg_made_up"},
                                     {"role": "user", "content": "hi"}]})
    assert made_up.status_code == 404 and error(made_up)["param"] == "input"
    with caplog.at_level(logging.INFO, logger="deepseek2api.api.responses.protocol"):
        for _ in range(2):
            answered = post(stack, {"input": [{"type": "brand_new_item", "id": "bn_1", "payload": "x"},
                                              {"role": "user", "content": "hello"}]})
            assert answered.status_code == 200
    lines = [r.getMessage() for r in caplog.records if "brand_new_item" in r.getMessage()]
    assert len(lines) == 1, lines


def test_what_never_goes_upstream_is_not_stored(stack: ConformanceStack) -> None:
    secret = "ENCRYPTED-" + "z" * 5000
    created = post(stack, {"input": [
        {"type": "reasoning", "id": "rs_client", "summary": [{"type": "summary_text", "text": "SUMMARY-X"}],
         "encrypted_content": secret},
        {"role": "user", "content": "hello"}]})
    assert created.status_code == 200
    listed = call(stack, "GET", f"{created.json()['id']}/input_items?order=asc", API_KEY)
    assert listed.json()["data"][0] == {"type": "reasoning", "id": "rs_client", "summary": []}
    assert "ENCRYPTED-" not in listed.text and "SUMMARY-X" not in listed.text


def test_a_deleted_link_makes_its_followers_a_clear_404(stack: ConformanceStack) -> None:
    first = post(stack, {"input": "one"}).json()["id"]
    second = post(stack, {"input": "two", "previous_response_id": first}).json()["id"]
    assert call(stack, "DELETE", first, API_KEY).status_code == 200
    broken = post(stack, {"input": "three", "previous_response_id": second})
    assert broken.status_code == 404 and error(broken)["param"] == "previous_response_id"
    assert first in error(broken)["message"] and "deleted" in error(broken)["message"]


def test_a_follow_up_on_a_long_chain_sees_every_step(stack: ConformanceStack) -> None:
    previous = None
    for n in range(12):
        body: dict[str, Any] = {"input": f"STEP-{n:02d}"}
        if previous:
            body["previous_response_id"] = previous
        answered = post(stack, body)
        assert answered.status_code == 200
        previous = answered.json()["id"]
    prompt = sim_prompts(stack)[-1]
    positions = [prompt.index(f"STEP-{n:02d}") for n in range(12)]
    assert positions == sorted(positions)


# ---- limits and token_passthrough: stacks of their own ------------------------------------------


def test_the_size_limits_answer_400s_before_any_upstream_work(openai_schemas: OpenAISchemas) -> None:
    limits = {"max_response_bytes": 40_000, "max_key_bytes": 100_000}
    with conformance_stack(openai_schemas, accounts=1, keys=KEYS, responses=limits) as small:
        too_big = post(small, {"input": "y" * 50_000})
        assert too_big.status_code == 400 and error(too_big)["code"] == "response_too_large"
        assert error(too_big)["param"] == "input" and "responses.max_response_bytes" in error(too_big)["message"]
        assert post(small, {"input": "y" * 50_000, "store": False}).status_code == 200  # not stored: answered
        statuses = [post(small, {"input": "w" * 30_000}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 400]
        full = post(small, {"input": "w" * 30_000})
        assert error(full)["code"] == "response_store_full" and error(full)["param"] == "store"
        assert post(small, {"input": "w" * 30_000}, OTHER_KEY).status_code == 200  # the limit is per key
        with pytest.raises(openai.BadRequestError):
            small.openai().responses.create(model="deepseek-chat", input="w" * 30_000)


def _login_token(simulator_url: str, email: str, password: str) -> str:
    answer = httpx.post(f"{simulator_url}/api/v0/users/login", timeout=10,
                        json={"email": email, "password": password, "device_id": "x", "os": "android"})
    return str(answer.json()["data"]["biz_data"]["user"]["token"])


def test_with_token_passthrough_each_bearer_owns_its_responses() -> None:
    with running_stack(accounts=2, token_passthrough=True) as passthrough:
        first, second = (_login_token(passthrough.simulator.base_url, u.email or "", u.password)
                         for u in passthrough.sim_config.users[:2])
        mine = passthrough.openai(api_key=first).responses.create(model="deepseek-chat", input="token one's")
        theirs = passthrough.openai(api_key=second)
        with pytest.raises(openai.NotFoundError):
            theirs.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            theirs.responses.delete(mine.id)
        with pytest.raises(openai.NotFoundError):
            theirs.responses.create(model="deepseek-chat", input="more", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            theirs.responses.create(model="deepseek-chat", input=[{"type": "item_reference",
                                                                   "id": mine.output[-1].id}])
        assert passthrough.openai(api_key=first).responses.retrieve(mine.id).id == mine.id
