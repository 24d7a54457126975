"""The anthropic Python SDK against gateway + simulator: messages, streams, thinking, stops, count_tokens,
every error class and the SDK's retries. Raw streams are read strictly (anthropic_support.read_stream)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import Message, TextBlock

from anthropic_support import blocks_of, client, comparable, read_stream
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, Stack, running_stack

USER: list[Any] = [{"role": "user", "content": "hello from the anthropic sdk"}]


STACK_ACCOUNTS = 3  # for the shared `stack` fixture (tests/conftest.py)


@pytest.fixture(autouse=True)
def _idle_after(stack: Stack) -> Iterator[None]:
    yield
    stack.assert_invariants()


def raw_stream(stack: Stack, body: dict[str, Any], path: str = "/v1/messages?beta=true",
               headers: dict[str, str] | None = None) -> tuple[int, str, httpx.Headers]:
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        sent = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01",
                "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,made-up-2099-01-01"}
        with http.stream("POST", path, json={**body, "stream": True}, headers={**sent, **(headers or {})}) as response:
            return response.status_code, response.read().decode(), response.headers


def test_create_maps_a_claude_name_and_answers_with_signed_thinking_then_text(stack: Stack) -> None:
    message = client(stack).messages.create(model="claude-sonnet-4-6", max_tokens=8192, messages=USER)
    expected = reply_for(USER[0]["content"], thinking=True, search=False)
    assert message.id.startswith("msg_") and message.model == "claude-sonnet-4-6"
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking, text = message.content
    assert thinking.thinking == expected.reasoning and thinking.signature  # type: ignore[union-attr]
    assert text.text == expected.content  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0


def test_stream_final_message_equals_the_non_stream_result(stack: Stack) -> None:
    sdk = client(stack)
    for model in ("claude-opus-4-1", "claude-haiku-4-5", "deepseek-chat"):
        created = sdk.messages.create(model=model, max_tokens=1024, messages=USER)
        with sdk.messages.stream(model=model, max_tokens=1024, messages=USER) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
        assert "".join(texts) == created.content[-1].text  # type: ignore[union-attr]
        assert comparable(final) == comparable(created)


def test_raw_stream_has_an_event_line_on_every_event_in_order_with_valid_sdk_types(stack: Stack) -> None:
    for path in ("/v1/messages?beta=true", "/anthropic/v1/messages", "/v1/messages"):
        status, raw, headers = raw_stream(stack, {"model": "claude-sonnet-4-6", "max_tokens": 128000,
                                                  "messages": USER}, path)
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        assert headers["request-id"]
        events = read_stream(raw)
        blocks = blocks_of(events)
        assert [b["type"] for b in blocks] == ["thinking", "text"]
        assert blocks[0]["signature"]
        assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_thinking_blocks_sent_back_with_their_signature_are_accepted(stack: Stack) -> None:
    sdk = client(stack)
    first = sdk.messages.create(model="claude-opus-4-1", max_tokens=2048, messages=USER,
                                thinking={"type": "adaptive"})
    history = [*USER, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": "and again"}]
    forged = [*USER, {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "bogus"},
                                                       {"type": "redacted_thinking", "data": "zzz"}]},
              {"role": "user", "content": "and again"}]
    for messages in (history, forged):
        again = sdk.messages.create(model="claude-opus-4-1", max_tokens=2048, messages=messages)
        assert again.content[-1].text == reply_for("and again", thinking=True, search=False).content  # type: ignore[union-attr]


def test_thinking_disabled_on_a_thinking_tier_gives_text_only(stack: Stack) -> None:
    message = client(stack).messages.create(model="claude-opus-4-1", max_tokens=100, messages=USER,
                                            thinking={"type": "disabled"})
    assert [b.type for b in message.content] == ["text"]


def test_stop_sequences_end_the_answer_with_stop_reason_stop_sequence(stack: Stack) -> None:
    sdk = client(stack)
    created = sdk.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER,
                                  stop_sequences=["simulator"])
    assert created.content[0].text == "This is a synthetic reply from the DeepSeek2API "  # type: ignore[union-attr]
    assert (created.stop_reason, created.stop_sequence) == ("stop_sequence", "simulator")
    with sdk.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=USER,
                             stop_sequences=["simulator"]) as stream:
        final = stream.get_final_message()
    assert comparable(final) == comparable(created)


def test_count_tokens_counts_the_prompt_with_deepseeks_tokenizer(stack: Stack) -> None:
    sdk = client(stack)
    short = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=USER)
    longer = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=USER, system="You are terse. " * 50)
    created = sdk.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert short.input_tokens == created.usage.input_tokens
    assert longer.input_tokens > short.input_tokens + 100
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        response = http.post("/anthropic/v1/messages/count_tokens?beta=true",
                             headers={"authorization": f"Bearer {API_KEY}"},
                             json={"model": "claude-x", "messages": USER})
    assert response.json() == {"input_tokens": short.input_tokens}


def test_bearer_and_x_api_key_both_authenticate_with_any_version_header(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": USER}
        for headers in ({"x-api-key": API_KEY, "anthropic-version": "2026-10-21"},
                        {"authorization": f"Bearer {API_KEY}", "anthropic-version": "1999-01-01",
                         "anthropic-beta": "anything-at-all"}):
            response = http.post("/v1/messages", json=body, headers=headers)
            assert response.status_code == 200
            Message.model_validate(response.json())
            assert response.headers["request-id"]


# ---- errors ----------------------------------------------------------------------------------


def test_client_errors_have_anthropics_envelope_types_and_request_id(stack: Stack) -> None:
    sdk = client(stack)
    with pytest.raises(anthropic.BadRequestError) as bad:
        sdk.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert bad.value.request_id and bad.value.request_id.startswith("req_")
    with pytest.raises(anthropic.BadRequestError) as not_png:  # "hello", declared as a PNG
        sdk.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}}]}])
    assert "messages.0.content.0.source" in not_png.value.message
    with pytest.raises(anthropic.AuthenticationError) as denied:
        client(stack, api_key="sk-wrong").messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="gpt-4o", max_tokens=10, messages=USER)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        for path, body in (("/v1/messages/nope", b"{}"), ("/v1/messages", b"{not json")):
            response = http.post(path, content=body, headers={"x-api-key": API_KEY})
            assert response.json()["type"] == "error" and response.headers["request-id"], path
            assert response.json()["error"]["type"] in ("not_found_error", "invalid_request_error")


def test_a_too_long_conversation_says_prompt_is_too_long(stack: Stack) -> None:
    with pytest.raises(anthropic.BadRequestError) as failed:
        client(stack).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[
            {"role": "user", "content": "long [sim:fault=input_too_long]"}])
    assert "prompt is too long" in failed.value.body["error"]["message"]  # type: ignore[index]


def test_a_body_over_the_limit_is_413_request_too_large() -> None:
    with running_stack(accounts=1, server={"max_body_bytes": 2048}) as small:
        with pytest.raises(anthropic.APIStatusError) as failed:
            client(small).messages.create(model="claude-haiku-4-5", max_tokens=10,
                                          messages=[{"role": "user", "content": "x" * 5000}])
        assert failed.value.status_code == 413
        assert failed.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def _counting(stack: Stack, **options: Any) -> tuple[anthropic.Anthropic, list[int]]:
    statuses: list[int] = []
    http = httpx2.Client(event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
    return client(stack, http_client=http, **options), statuses


def test_an_overloaded_upstream_is_529_which_the_sdk_retries_after_retry_after() -> None:
    with running_stack(accounts=2) as limited:
        sdk, statuses = _counting(limited, max_retries=1)
        with pytest.raises(anthropic.OverloadedError) as failed:
            sdk.messages.create(model="claude-haiku-4-5", max_tokens=10,
                                messages=[{"role": "user", "content": "busy [sim:fault=busy]"}])
        assert statuses == [529, 529]  # retried once, as Anthropic's servers would have it
        assert failed.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        assert failed.value.response.headers["retry-after"]
        sdk, statuses = _counting(limited, max_retries=2)
        with pytest.raises(anthropic.OverloadedError) as banned:
            sdk.messages.create(model="claude-haiku-4-5", max_tokens=10,
                                messages=[{"role": "user", "content": "banned [sim:fault=ban]"}])
        assert banned.value.response.headers["x-should-retry"] == "false"
        assert statuses == [529]  # a permanent failure is not retried


def test_a_busy_pool_is_429_rate_limit_which_the_sdk_retries() -> None:
    with running_stack(accounts=1, pool={"queue_size": 0, "queue_timeout": 0.2},
                       sim={"stall_seconds": 3.0}) as busy:
        holding = threading.Thread(target=lambda: client(busy).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hold [sim:stall=2]"}]))
        holding.start()
        deadline = time.monotonic() + 10
        while busy.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        sdk, statuses = _counting(busy, max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as limited:
            sdk.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
        assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert limited.value.response.headers["retry-after"] and "x-should-retry" not in limited.value.response.headers
        sdk, statuses = _counting(busy, max_retries=2)
        message = sdk.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=USER)  # retried until free
        holding.join(30)
        assert statuses[0] == 429 and statuses[-1] == 200
        assert message.content[0].text == reply_for(USER[0]["content"], thinking=False, search=False).content  # type: ignore[union-attr]


def test_a_failure_after_the_first_byte_is_an_error_event(stack: Stack) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": "cut [sim:fault=cut] [sim:words=50]"}]}
    status, raw, _ = raw_stream(stack, body)
    assert status == 200
    events = read_stream(raw)
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert any(e["type"] == "content_block_delta" for e in events)
    with pytest.raises(anthropic.APIStatusError) as failed, \
            client(stack).messages.stream(**body) as stream:  # type: ignore[arg-type]
        stream.get_final_message()
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_one_claude_code_session_stays_on_one_account(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    sdk = client(stack)
    caplog.set_level(logging.INFO, logger="deepseek2api.access")
    for session in ("session-a", "session-b"):
        for _ in range(4):
            sdk.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=USER,
                                extra_headers={"X-Claude-Code-Session-Id": session})
            # the hint prefers the last account only while it is free: the answer goes out before the lease
            # is back (the turn still deletes its web session), so wait for it as the next client turn would
            stack.wait_idle()
    accounts = re.findall(r"account=(\S+) model=claude-haiku-4-5 ", caplog.text)
    assert len(accounts) == 8
    assert len(set(accounts[:4])) == 1 and len(set(accounts[4:])) == 1  # without the hint the pool rotates


# ---- tools -----------------------------------------------------------------------------------

WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                            "properties": {"city": {"type": "string"},
                                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                            "required": ["city", "unit"]}}
TIME = {"name": "get_time", "description": "The local time in a city.", "cache_control": {"type": "ephemeral"},
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TOOLS: list[Any] = [WEATHER, TIME]


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def tool_uses(message: Message) -> list[Any]:
    return [b for b in message.content if b.type == "tool_use"]


@pytest.mark.parametrize("choice", [None, {"type": "auto"}, {"type": "any"},
                                    {"type": "tool", "name": "get_weather"}])
def test_every_calling_tool_choice_gives_a_tool_use_block_in_stream_and_non_stream(
        stack: Stack, choice: dict[str, Any] | None) -> None:
    sdk = client(stack)
    options: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 1024, "tools": TOOLS,
                               "messages": ask("What is the weather in Paris? Use get_weather please")}
    if choice is not None:
        options["tool_choice"] = choice
    created = sdk.messages.create(**options)
    with sdk.messages.stream(**options) as stream:
        final = stream.get_final_message()
    for message in (created, final):
        assert message.stop_reason == "tool_use"
        (call,) = tool_uses(message)
        assert call.id.startswith("toolu_") and call.name == "get_weather"
        assert set(call.input) == {"city", "unit"} and call.input["unit"] in ("celsius", "fahrenheit")
        texts = [b.text for b in message.content if isinstance(b, TextBlock)]
        if choice is None or choice["type"] == "auto":
            assert texts == ["I will call get_weather (simulated)."]
        else:
            assert texts == []  # a forced call has no text before it
    assert comparable(final) == comparable(created)
    _, raw, _ = raw_stream(stack, options)
    events = read_stream(raw)
    assert [b["type"] for b in blocks_of(events)][-1] == "tool_use"


def test_tool_choice_none_keeps_tools_out_of_the_prompt_and_answers_in_text(stack: Stack) -> None:
    message = client(stack).messages.create(model="claude-haiku-4-5", max_tokens=100, tools=TOOLS,
                                            tool_choice={"type": "none"}, messages=ask("Use get_weather now"))
    assert tool_uses(message) == [] and message.stop_reason == "end_turn"
    assert message.content[0].text == reply_for("Use get_weather now", thinking=False, search=False).content  # type: ignore[union-attr]


def test_parallel_tool_use_and_disable_parallel_tool_use(stack: Stack) -> None:
    sdk = client(stack)
    prompt = 'Both please. [sim:tool=get_weather,get_time args={"city": "Oslo"}]'
    both = sdk.messages.create(model="claude-haiku-4-5", max_tokens=1024, tools=TOOLS, messages=ask(prompt))
    assert [(c.name, c.input["city"]) for c in tool_uses(both)] == [("get_weather", "Oslo"), ("get_time", "Oslo")]
    assert len({c.id for c in tool_uses(both)}) == 2
    _, raw, _ = raw_stream(stack, {"model": "claude-haiku-4-5", "max_tokens": 1024, "tools": TOOLS,
                                        "messages": ask(prompt)})
    assert [b["name"] for b in blocks_of(read_stream(raw)) if b["type"] == "tool_use"] == ["get_weather", "get_time"]
    one = sdk.messages.create(model="claude-haiku-4-5", max_tokens=1024, tools=TOOLS, messages=ask(prompt),
                              tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [c.name for c in tool_uses(one)] == ["get_weather"]


def test_the_tool_result_round_trip_reaches_the_model_and_ends_in_prose(stack: Stack) -> None:
    sdk = client(stack)
    history: list[Any] = ask("Weather in Rome? Use get_weather please")
    first = sdk.messages.create(model="claude-sonnet-4-6", max_tokens=2048, tools=TOOLS, messages=history)
    (call,) = tool_uses(first)
    history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                              "content": [{"type": "text", "text": "Rome: 24 C, clear <sky> & \"calm\""}]}]}]
    with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=2048, tools=TOOLS, messages=history) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and tool_uses(final) == []
    assert final.content[-1].text == ('The tool get_weather returned: "Rome: 24 C, clear <sky> & \\"calm\\"". '  # type: ignore[union-attr]
                                      "That is the answer (simulated).").replace('\\"', '"')
    errored = history[:-1] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                            "is_error": True, "content": "no network"}]}]
    again = sdk.messages.create(model="claude-haiku-4-5", max_tokens=100, tools=TOOLS, messages=errored)
    assert "no network" in again.content[-1].text  # type: ignore[union-attr]


def test_count_tokens_counts_the_tool_catalog_too(stack: Stack) -> None:
    sdk = client(stack)
    bare = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=ask("hi"))
    tooled = sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=ask("hi"), tools=TOOLS)
    assert tooled.input_tokens > bare.input_tokens + 30


def test_the_model_list_parses_for_the_anthropic_sdk(stack: Stack) -> None:
    models = client(stack).models.list()
    ids = [m.id for m in models.data]
    assert "deepseek-chat" in ids and all(m.type == "model" and m.display_name for m in models.data)


def test_a_lone_surrogate_is_a_400_not_a_failed_upstream_call(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        response = http.post("/v1/messages", headers={"x-api-key": API_KEY, "content-type": "application/json"},
                             content=b'{"model": "claude-haiku-4-5", "max_tokens": 5, '
                                     b'"messages": [{"role": "user", "content": "bad \\ud800 half"}]}')
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_a_silent_upstream_gets_ping_events_as_keep_alives() -> None:
    with running_stack(accounts=1, server={"keepalive_interval": 0.2}, sim={"stall_seconds": 1.0}) as slow:
        body = {"model": "claude-haiku-4-5", "max_tokens": 100,
                "messages": [{"role": "user", "content": "slow start [sim:fault=stall]"}]}
        status, raw, _ = raw_stream(slow, body)
        assert status == 200
        assert raw.count('event: ping\ndata: {"type":"ping"}\n\n') >= 2 and ": keep-alive" not in raw
        events = read_stream(raw)  # pings are allowed anywhere, the rest still in order
        assert blocks_of(events)[0]["text"] == reply_for(body["messages"][0]["content"], thinking=False,  # type: ignore[index]
                                                         search=False).content
        with client(slow).messages.stream(**body) as stream:  # type: ignore[arg-type]
            assert stream.get_final_message().stop_reason == "end_turn"
