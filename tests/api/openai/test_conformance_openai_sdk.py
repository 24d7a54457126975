"""Conformance (docs/clients.md): with the real `openai` SDK (sync and async, strict validation).

Every response these tests cause is also checked on the wire (framing + OpenAI's JSON Schemas) by the
recorder in conformance_support when each test ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conformance_support import ConformanceStack, OpenAISchemas, conformance_stack, data_events, openai_schemas, user
from deepseek2api.simulator.replies import reply_for

__all__ = ["openai_schemas"]  # the imported fixture is used by this module

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    # queue_timeout: how long a request waits for a held account before the pool answers 429.
    with conformance_stack(openai_schemas, accounts=2, server={"max_body_bytes": MAX_BODY},
                           pool={"queue_timeout": 0.3}) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()  # anything left by an earlier test is not this test's doing
    yield
    stack.assert_invariants()  # leases back, no upstream violation, every exchange conforms


def strict(stack: ConformanceStack, **options: Any) -> openai.OpenAI:
    return stack.openai(_strict_response_validation=True, **options)


def rendered(content: str, results: list[dict[str, Any]]) -> str:
    """The simulator's `[citation:N]` markers as the gateway renders them (Markdown links)."""
    urls = {r["cite_index"]: r["url"] for r in results}
    return re.sub(r"\[citation:(\d+)\]", lambda m: f"[{m.group(1)}]({urls[int(m.group(1))]})", content)


def reasoning_of(delta: Any) -> str:
    return (delta.model_extra or {}).get("reasoning_content") or ""


def error_keys(error: openai.APIStatusError) -> dict[str, Any]:
    body = error.body
    assert isinstance(body, dict) and set(body) >= {"message", "type", "param", "code"}, body
    return body


# ---- O1 / O2: non-stream ------------------------------------------------------------------------


def test_o1_non_stream(stack: ConformanceStack) -> None:
    prompt = "O1 plain question"
    completion = strict(stack).chat.completions.create(model="deepseek-chat", messages=user(prompt))
    assert completion.object == "chat.completion"
    assert completion.id and isinstance(completion.created, int) and completion.model == "deepseek-chat"
    choice = completion.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == reply_for(prompt, thinking=False, search=False).content
    assert not (choice.message.model_extra or {}).get("reasoning_content")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_o2_non_stream_thinking(stack: ConformanceStack) -> None:
    prompt = "O2 think about it"
    reply = reply_for(prompt, thinking=True, search=False)
    completion = strict(stack).chat.completions.create(model="deepseek-reasoner", messages=user(prompt))
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"] == reply.reasoning
    assert message.content == reply.content and "<think>" not in message.content
    assert completion.usage.completion_tokens_details.reasoning_tokens > 0


def test_search_model_renders_citations(stack: ConformanceStack) -> None:
    prompt = "O2 search the web"
    reply = reply_for(prompt, thinking=False, search=True)
    completion = strict(stack).chat.completions.create(model="deepseek-chat-search", messages=user(prompt))
    assert completion.choices[0].message.content == rendered(reply.content, reply.results)
    assert completion.model_extra["citations"] == [r["url"] for r in reply.results]


async def test_o1_o3_async_client(stack: ConformanceStack) -> None:
    prompt = "O3 async question"
    reply = reply_for(prompt, thinking=False, search=False)
    client = stack.async_openai(_strict_response_validation=True)
    completion = await client.chat.completions.create(model="deepseek-chat", messages=user(prompt))
    assert completion.choices[0].message.content == reply.content
    stream = await client.chat.completions.create(model="deepseek-chat", messages=user(prompt), stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    await client.close()


# ---- O3 / O4 / O5: streams -----------------------------------------------------------------------


def test_o3_stream(stack: ConformanceStack) -> None:
    prompt = "O3 stream me [sim:words=20]"
    reply = reply_for(prompt, thinking=False, search=False)
    mark = stack.wire.mark()
    chunks = list(strict(stack).chat.completions.create(model="deepseek-chat", messages=user(prompt), stream=True))
    assert len(chunks) > 1
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    # Not asked for: no usage-only chunk; usage once, on the finish chunk (DeepSeek's placement).
    assert not any(c.choices == [] for c in chunks), "a usage-only chunk nobody asked for"
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    [exchange] = stack.wire.chat_since(mark)
    assert exchange.headers["content-type"].startswith("text/event-stream")
    assert data_events(bytes(exchange.body))[-1] == "[DONE]"


def test_o4_stream_include_usage(stack: ConformanceStack) -> None:
    prompt = "O4 count my tokens"
    chunks = list(strict(stack).chat.completions.create(
        model="deepseek-chat", messages=user(prompt), stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens > 0
    # Asked for: OpenAI's usage-only chunk, and no second copy anywhere else (summing clients).
    assert all(c.usage is None for c in chunks[:-1])
    assert len([c for c in chunks if c.choices and c.choices[0].finish_reason]) == 1


def test_o5_stream_thinking(stack: ConformanceStack) -> None:
    prompt = "O5 reason in a stream"
    reply = reply_for(prompt, thinking=True, search=False)
    chunks = list(strict(stack).chat.completions.create(model="deepseek-reasoner", messages=user(prompt),
                                                        stream=True))
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and reasoning_of(first) == "" and "reasoning_content" in first.model_extra
    with_choices = [c for c in chunks if c.choices]
    assert "".join(reasoning_of(c.choices[0].delta) for c in with_choices) == reply.reasoning
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == reply.content
    first_content = next(i for i, c in enumerate(with_choices) if c.choices[0].delta.content)
    last_reasoning = max(i for i, c in enumerate(with_choices) if reasoning_of(c.choices[0].delta))
    assert last_reasoning < first_content


# ---- O6: raw responses ---------------------------------------------------------------------------


def test_o6_raw_and_streaming_response(stack: ConformanceStack) -> None:
    client = strict(stack)
    raw = client.chat.completions.with_raw_response.create(model="deepseek-chat", messages=user("O6 raw"))
    assert raw.status_code == 200 and raw.headers["x-request-id"]
    assert raw.parse().choices[0].message.content == reply_for("O6 raw", thinking=False, search=False).content
    with client.chat.completions.with_streaming_response.create(
            model="deepseek-chat", messages=user("O6 streaming"), stream=True) as response:
        assert response.status_code == 200 and response.headers["x-request-id"]
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == reply_for("O6 streaming", thinking=False, search=False).content


# ---- O9: 429 and retries -------------------------------------------------------------------------


def test_o9_pool_exhausted_429_without_retries(stack: ConformanceStack) -> None:
    mark = stack.wire.mark()
    with stack.hold_accounts():
        with pytest.raises(openai.RateLimitError) as limited:
            strict(stack, max_retries=0).chat.completions.create(model="deepseek-chat", messages=user("O9 busy"))
    error = limited.value
    assert error.status_code == 429 and error.code and error.code.startswith("pool_")
    assert error_keys(error)["type"] == "rate_limit_error"
    assert error.request_id and error.request_id == error.response.headers["x-request-id"]
    assert int(error.response.headers["retry-after"]) >= 1
    assert [e.status for e in stack.wire.chat_since(mark)] == [429]


def test_o9_sdk_retries_429_then_succeeds(stack: ConformanceStack) -> None:
    """The SDK honours Retry-After and its retry succeeds once the pool has an account again."""
    mark, completions = stack.wire.mark(), stack.sim_stats()["completions"]
    with stack.hold_accounts() as hold:
        hold.release_on_retry(1)  # the gateway frees the accounts just before serving the first retry
        completion = strict(stack, max_retries=2).chat.completions.create(model="deepseek-chat",
                                                                          messages=user("O9 retry"))
    assert completion.choices[0].message.content == reply_for("O9 retry", thinking=False, search=False).content
    seen = stack.wire.chat_since(mark)
    assert [e.status for e in seen] == [429, 200]
    assert [e.request_headers.get("x-stainless-retry-count") for e in seen] == ["0", "1"]
    assert seen[0].headers["retry-after"]
    assert stack.sim_stats()["completions"] == completions + 1  # only the successful attempt went upstream


# ---- O10: every error class ----------------------------------------------------------------------


def test_o10_client_errors_are_not_retried(stack: ConformanceStack) -> None:
    client = strict(stack, max_retries=2)
    cases: list[tuple[type[openai.APIStatusError], int, str | None, dict[str, Any]]] = [
        (openai.AuthenticationError, 401, None, {"api_key": "sk-wrong"}),
        (openai.NotFoundError, 404, "model", {"model": "gpt-17"}),
        (openai.BadRequestError, 400, "n", {"n": 2}),
        (openai.BadRequestError, 400, "logprobs", {"logprobs": True}),
        (openai.BadRequestError, 400, "messages", {"messages": []}),
        (openai.APIStatusError, 413, None, {"messages": user("x" * (MAX_BODY + 1))}),
    ]
    completions_before = stack.sim_stats()["completions"]
    for error_class, status, param, change in cases:
        mark = stack.wire.mark()
        arguments: dict[str, Any] = {"model": "deepseek-chat", "messages": user("O10 error"), **change}
        caller = strict(stack, max_retries=2, api_key=arguments.pop("api_key")) if "api_key" in arguments \
            else client
        with pytest.raises(error_class) as failed:
            caller.chat.completions.create(**arguments)
        error = failed.value
        assert error.status_code == status, (status, error)
        body = error_keys(error)
        if param is not None:
            assert body["param"] == param, body
        assert error.request_id
        assert len(stack.wire.chat_since(mark)) == 1, f"a {status} must not be retried"
    assert stack.sim_stats()["completions"] == completions_before  # none reached the upstream


def test_o10_error_codes(stack: ConformanceStack) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        strict(stack, api_key="sk-wrong").models.list()
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        strict(stack).chat.completions.create(model="gpt-17", messages=user("x"))
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.APIStatusError) as too_large:
        strict(stack).chat.completions.create(model="deepseek-chat", messages=user("y" * (MAX_BODY + 1)))
    assert too_large.value.status_code == 413 and too_large.value.code == "request_too_large"


def test_o10_upstream_unavailable_503_is_retried(stack: ConformanceStack) -> None:
    """Every account rate-limited upstream → 503 with Retry-After: 1; the SDK retries twice, then raises."""
    mark = stack.wire.mark()
    with pytest.raises(openai.InternalServerError) as failed:
        strict(stack, max_retries=2).chat.completions.create(
            model="deepseek-chat", messages=user("O10 limited [sim:fault=rate_limit]"))
    error = failed.value
    assert error.status_code == 503 and error_keys(error)["code"] == "upstream_rate_limited"
    assert error.response.headers["retry-after"] == "1"
    assert [e.status for e in stack.wire.chat_since(mark)] == [503, 503, 503]
    stack.wait_usable()  # the accounts cool down for the simulator's Retry-After (1 s)


@pytest.mark.parametrize("fault,first_code,then_code", [
    ("ban", "upstream_account_banned", "pool_none_usable"),
    ("mute", "upstream_account_muted", "pool_all_cooling"),  # muted for an hour: Retry-After would be capped
])
def test_o10_permanent_failures_are_not_retried(openai_schemas: OpenAISchemas, fault: str, first_code: str,
                                                then_code: str) -> None:
    """A banned or muted pool cannot recover in seconds: `x-should-retry: false`, so SDKs fail at once
    instead of sleeping through their retries (docs/clients.md)."""
    with conformance_stack(openai_schemas, accounts=1, pool={"queue_timeout": 0.3}) as own:
        own.sim_fault("user1@sim.test", fault)
        mark = own.wire.mark()
        with pytest.raises(openai.InternalServerError) as first:
            strict(own, max_retries=2).chat.completions.create(model="deepseek-chat", messages=user("O10 dead"))
        assert first.value.status_code == 503 and first.value.code == first_code
        assert [e.status for e in own.wire.chat_since(mark)] == [503]
        # The pool now knows: the next answers are 429s that must not be retried either (checked raw first,
        # so a regression fails here instead of sleeping through the SDK's retries).
        raw = own.http().post("/v1/chat/completions", json={"model": "deepseek-chat", "messages": user("raw")})
        assert raw.status_code == 429 and raw.headers.get("x-should-retry") == "false", raw.headers
        mark = own.wire.mark()
        with pytest.raises(openai.RateLimitError) as then:
            strict(own, max_retries=2).chat.completions.create(model="deepseek-chat", messages=user("O10 again"))
        assert then.value.code == then_code
        assert [e.status for e in own.wire.chat_since(mark)] == [429]


# ---- O11: failure after the stream started -------------------------------------------------------


def test_o11_mid_stream_failure_raises_api_error(stack: ConformanceStack) -> None:
    mark = stack.wire.mark()
    received: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in strict(stack).chat.completions.create(
                model="deepseek-chat", stream=True, messages=user("O11 cut [sim:fault=cut] [sim:words=60]")):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received), "the failure must come after some output"
    assert not isinstance(failed.value, openai.APIStatusError), "an error event, not an HTTP status"
    assert "stream ended" in str(failed.value)
    [exchange] = stack.wire.chat_since(mark)
    events = data_events(bytes(exchange.body))
    assert "[DONE]" not in events and '"error"' in events[-1]


async def test_o11_mid_stream_failure_async(stack: ConformanceStack) -> None:
    client = stack.async_openai(_strict_response_validation=True)
    stream = await client.chat.completions.create(
        model="deepseek-reasoner", stream=True, messages=user("O11 async cut [sim:fault=cut] [sim:words=60]"))
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await client.close()


# ---- O12: accepted request shapes ----------------------------------------------------------------


def test_o12_request_shapes_are_accepted(stack: ConformanceStack) -> None:
    prompt_parts = [{"type": "text", "text": "O12 first part"}, {"type": "text", "text": "second part"}]
    completion = strict(stack).chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": prompt_parts}],
        max_completion_tokens=500, temperature=0.2, top_p=0.9, seed=3, presence_penalty=0.1,
        frequency_penalty=0.1, user="conformance", metadata={"suite": "O12"}, store=False,
        extra_body={"a_future_parameter": {"nested": True}})
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "stop"


def test_o12_stop_list_truncates(stack: ConformanceStack) -> None:
    prompt = "O12 stop test"
    full = reply_for(prompt, thinking=False, search=False).content
    stop = "You wrote"
    assert stop in full
    completion = strict(stack).chat.completions.create(model="deepseek-chat", messages=user(prompt),
                                                       stop=[stop, "never-appears"])
    assert completion.choices[0].message.content == full[: full.index(stop)]
    assert completion.choices[0].finish_reason == "stop"


# ---- O13: models -----------------------------------------------------------------------------------


def test_o13_models_list_and_retrieve(stack: ConformanceStack) -> None:
    client = strict(stack)
    models = list(client.models.list())
    assert {"deepseek-chat", "deepseek-reasoner"} <= {m.id for m in models}
    assert all(isinstance(m.created, int) and m.owned_by and m.object == "model" for m in models)
    model = client.models.retrieve("deepseek-reasoner")
    assert model.id == "deepseek-reasoner" and isinstance(model.created, int)
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-17")
    error_keys(missing.value)
