"""`max_tokens` / `max_completion_tokens` are a cap on the answer, through the openai SDK.

Before, asking for 5 gave 20 tokens and `finish_reason: "stop"`. The cap counts reasoning and answer
together (as OpenAI's `max_completion_tokens` does), with the tokenizer `usage` uses, and stops the
reply upstream.
"""

from __future__ import annotations

from typing import Any

import pytest

from deepseek2api.chat.usage import count_tokens
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, Stack

PROMPT = "tell me a story [sim:words=80]"
FULL = reply_for(PROMPT, thinking=False, search=False).content


STACK_ACCOUNTS = 2  # for the shared `stack` fixture (tests/conftest.py)


def _messages(prompt: str = PROMPT) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_asking_for_five_tokens_gives_five_and_finish_reason_length(stack: Stack, field: str) -> None:
    answer = stack.openai().chat.completions.create(model="deepseek-chat", messages=_messages(), **{field: 5})
    content = answer.choices[0].message.content or ""
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    assert count_tokens(content) == 5 and FULL.startswith(content)


def test_a_streamed_answer_stops_at_the_cap(stack: Stack) -> None:
    with stack.openai().chat.completions.create(model="deepseek-chat", messages=_messages(), max_tokens=5,
                                                stream=True, stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert reasons == ["length"]
    assert len(usage) == 1 and usage[0].completion_tokens == 5
    assert count_tokens(content) == 5 and FULL.startswith(content)


@pytest.mark.parametrize("stream", [False, True])
def test_a_cap_deep_inside_a_long_answer_is_met_exactly(stack: Stack, stream: bool) -> None:
    prompt = "a long one [sim:words=600]"
    full = reply_for(prompt, thinking=False, search=False).content
    cap = count_tokens(full) // 2
    client = stack.openai()
    if stream:
        with client.chat.completions.create(model="deepseek-chat", messages=_messages(prompt), max_tokens=cap,
                                            stream=True, stream_options={"include_usage": True}) as chunks:
            parts = list(chunks)
        content = "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
        finish = next(c.choices[0].finish_reason for c in parts if c.choices and c.choices[0].finish_reason)
        used = next(c.usage.completion_tokens for c in parts if c.usage is not None)
    else:
        answer = client.chat.completions.create(model="deepseek-chat", messages=_messages(prompt), max_tokens=cap)
        content, finish = answer.choices[0].message.content or "", answer.choices[0].finish_reason
        assert answer.usage is not None
        used = answer.usage.completion_tokens
    assert finish == "length" and used == cap == count_tokens(content) and full.startswith(content)


def test_a_cap_above_the_answer_changes_nothing(stack: Stack) -> None:
    answer = stack.openai().chat.completions.create(model="deepseek-chat", messages=_messages(), max_tokens=4096)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == FULL


def test_reasoning_counts_toward_the_cap_as_with_openai_reasoning_models(stack: Stack) -> None:
    reasoning = reply_for(PROMPT, thinking=True, search=False).reasoning
    answer = stack.openai().chat.completions.create(model="deepseek-reasoner", messages=_messages(),
                                                    max_completion_tokens=5)
    message = answer.choices[0].message
    thought = getattr(message, "reasoning_content", None) or ""
    assert answer.choices[0].finish_reason == "length"
    assert not message.content  # the whole budget went to reasoning
    assert count_tokens(thought) == 5 and reasoning.startswith(thought)
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    details = answer.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens == 5


def test_the_upstream_reply_is_stopped_at_the_cap(stack: Stack) -> None:
    before = stack.sim_stats()["stop_streams"]
    answer = stack.openai().chat.completions.create(
        model="deepseek-chat", messages=_messages("a very long one [sim:words=3000]"), max_tokens=3)
    assert answer.choices[0].finish_reason == "length"
    stack.wait_idle()
    stats = stack.sim_stats()
    assert stats["stop_streams"] == before + 1 and stats["sessions"] == 0


def test_anthropic_max_tokens_is_the_same_cap_with_stop_reason_max_tokens(stack: Stack) -> None:
    import anthropic

    sdk = anthropic.Anthropic(base_url=stack.base_url, api_key=API_KEY, max_retries=0, timeout=60)
    message = sdk.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=_messages())
    text = "".join(block.text for block in message.content if block.type == "text")
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5 == count_tokens(text) and FULL.startswith(text)


def test_responses_max_output_tokens_is_the_same_cap(stack: Stack) -> None:
    response = stack.openai().responses.create(model="deepseek-chat", input=PROMPT, max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 5
    assert count_tokens(response.output_text) == 5 and FULL.startswith(response.output_text)
