"""Conformance (docs/clients.md): LiteLLM's `completion()` against the gateway, as `openai/…` and `deepseek/…`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest

# LiteLLM fetches a model cost map at import unless told to stay offline (docs/clients.md).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from conformance_support import ConformanceStack, OpenAISchemas, conformance_stack, openai_schemas, user
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY

litellm = pytest.importorskip("litellm")
litellm.suppress_debug_info = True

__all__ = ["openai_schemas"]

# LiteLLM's own pydantic models warn on import and use; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PROVIDERS = ["openai", "deepseek"]


@pytest.fixture(scope="module")
def stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    with conformance_stack(openai_schemas, accounts=2, pool={"queue_timeout": 0.3, "cooldown_busy": 0.5}) as running:
        yield running


@pytest.fixture(autouse=True)
def _wire_checked(stack: ConformanceStack) -> Iterator[None]:
    stack.check_wire()
    yield
    stack.assert_invariants()


def complete(stack: ConformanceStack, model: str, prompt: str, **options: Any) -> Any:
    options.setdefault("api_key", API_KEY)
    return litellm.completion(model=model, api_base=stack.api_base, messages=user(prompt), num_retries=0,
                              max_retries=0, timeout=60, **options)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_o16_non_stream(stack: ConformanceStack, provider: str) -> None:
    prompt = f"O16 litellm {provider}"
    reply = reply_for(prompt, thinking=True, search=False)
    response = complete(stack, f"{provider}/deepseek-reasoner", prompt)
    message = response.choices[0].message
    assert message.content == reply.content
    assert message.reasoning_content == reply.reasoning  # LiteLLM keeps DeepSeek's reasoning field
    assert response.choices[0].finish_reason == "stop"
    usage = response.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_o16_stream_include_usage(stack: ConformanceStack, provider: str) -> None:
    prompt = f"O16 litellm stream {provider} [sim:words=10]"
    reply = reply_for(prompt, thinking=True, search=False)
    expected = complete(stack, f"{provider}/deepseek-reasoner", prompt).usage
    chunks = list(complete(stack, f"{provider}/deepseek-reasoner", prompt, stream=True,
                           stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == reply.content
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == reply.reasoning
    built = litellm.stream_chunk_builder(chunks, messages=user(prompt))
    assert built.choices[0].message.content == reply.content
    assert built.usage.total_tokens == expected.total_tokens
    assert built.usage.prompt_tokens == expected.prompt_tokens


def test_o16_error_classes(stack: ConformanceStack) -> None:
    model = "openai/deepseek-chat"
    with pytest.raises(litellm.AuthenticationError):
        complete(stack, model, "O16 bad key", api_key="sk-wrong")
    with pytest.raises(litellm.NotFoundError):
        complete(stack, "openai/gpt-17", "O16 unknown model")
    with pytest.raises(litellm.BadRequestError):
        complete(stack, model, "O16 two choices", n=2)
    with stack.hold_accounts():
        with pytest.raises(litellm.RateLimitError):
            complete(stack, model, "O16 pool exhausted")
    with pytest.raises(litellm.ServiceUnavailableError):
        complete(stack, model, "O16 upstream busy [sim:fault=busy]")
    stack.wait_usable()  # the busy accounts cool down for pool.cooldown_busy


def test_o16_mid_stream_failure(stack: ConformanceStack) -> None:
    with pytest.raises(openai.APIError) as failed:  # LiteLLM's exceptions extend the openai SDK's
        for _ in complete(stack, "openai/deepseek-chat", "O16 cut [sim:fault=cut] [sim:words=40]", stream=True):
            pass
    assert "stream ended before the reply finished" in str(failed.value)
