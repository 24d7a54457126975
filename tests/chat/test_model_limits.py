"""`/v1/models` reports each model's context window and output limit (chat/model_limits.py), read by the
openai SDK (`context_window`, `max_output_tokens`) and typed by the anthropic SDK (`max_input_tokens`,
`max_tokens`); the `model_limits` section changes them per model id or alias."""

from __future__ import annotations

import anthropic

from deepseek2api.chat.model_limits import ModelLimits
from deepseek2api.chat.turn import ModelRegistry
from deepseek2api.settings import ModelLimitsSettings
from gateway_support import API_KEY, running_stack


def test_the_model_lists_carry_limits_and_the_config_overrides_them() -> None:
    limits = {"models": {"deepseek-v4-pro": {"context_window": 1048576, "max_output_tokens": 131072},
                         "deepseek-chat": {"max_output_tokens": 4096}}}
    with running_stack(accounts=1, model_limits=limits) as stack:
        listed = {m.id: m.model_extra or {} for m in stack.openai().models.list().data}
        claude = anthropic.Anthropic(base_url=stack.base_url, api_key=API_KEY, max_retries=0)
        typed = {m.id: m for m in claude.models.list(limit=1000).data}
        one = stack.openai().models.retrieve("deepseek-reasoner").model_extra or {}
    assert listed["deepseek-reasoner"]["context_window"] == 131072 == listed["deepseek-reasoner"]["context_length"]
    assert listed["deepseek-reasoner"]["max_output_tokens"] == 65536  # a thinking model's longer answers
    assert listed["deepseek-chat"]["max_output_tokens"] == 4096  # the id's entry
    assert listed["deepseek-v3"]["max_output_tokens"] == 4096  # its alias follows the model
    assert listed["deepseek-v4-pro"]["context_window"] == 1048576  # an alias's own entry wins
    assert listed["deepseek-expert-chat"]["context_window"] == 131072
    assert typed["deepseek-v4-pro"].max_input_tokens == 1048576 and typed["deepseek-v4-pro"].max_tokens == 131072
    assert typed["deepseek-chat-search"].max_tokens == 8192
    assert one["max_output_tokens"] == 65536


def test_an_output_limit_never_exceeds_the_context_window() -> None:
    registry = ModelRegistry()
    small = ModelLimits(ModelLimitsSettings(context_window=4000))
    spec = registry.resolve("deepseek-reasoner")
    assert spec is not None and small.of(spec).max_output_tokens == 4000
