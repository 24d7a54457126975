"""Anthropic Messages without a server: wire → Turn, the stream writer's events, error rendering, the
session preference of the pool. Every event is validated against the anthropic SDK's own types."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message as SdkMessage
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from deepseek2api.api.anthropic.dialect import anthropic_body, anthropic_status
from deepseek2api.api.anthropic.protocol import ClaudeModels, ModelNotFound, to_turn
from deepseek2api.api.anthropic.render import (
    StreamWriter,
    content_blocks,
    message_body,
    stop_reason,
    usage_body,
)
from deepseek2api.api.anthropic.signature import ThinkingSigner
from deepseek2api.api.errors import (
    ApiError,
    RequestInvalid,
    from_upstream,
)
from deepseek2api.chat.errors import ErrorKind, UpstreamError
from deepseek2api.chat.tools.events import OutToolCall
from deepseek2api.chat.tools.spec import ToolChoiceMode
from deepseek2api.chat.turn import ModelRegistry
from deepseek2api.chat.usage import TurnUsage
from deepseek2api.settings import Settings
from pool_support import make_pool

EVENT = TypeAdapter(RawMessageStreamEvent)
SIGNER = ThinkingSigner("test-key")
DEFAULTS = Settings().anthropic
MODELS = ClaudeModels(ModelRegistry(), DEFAULTS.model_map, DEFAULTS.default_model)


def turn(**body: Any) -> Any:
    body.setdefault("model", "claude-sonnet-4-5")
    body.setdefault("max_tokens", 128000)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return to_turn(body, MODELS, SIGNER, "req_1")


# ---- models -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model", "thinking"), [
    ("claude-opus-4-1-20250805", "deepseek-reasoner", True),
    ("claude-sonnet-4-5", "deepseek-reasoner", True),
    ("claude-3-5-haiku-latest", "deepseek-chat", False),
    ("claude-haiku-4-5-20251001", "deepseek-chat", False),
    ("claude-future-9", "deepseek-reasoner", True),
    ("deepseek-chat", "deepseek-chat", False),
    ("DeepSeek-Reasoner", "deepseek-reasoner", True),
])
def test_claude_names_map_to_deepseek_models_and_deepseek_ids_work_as_on_openai(
        name: str, model: str, thinking: bool) -> None:
    result = turn(model=name)
    assert (result.model.id, result.model.thinking, result.model_name) == (model, thinking, name)


def test_the_model_map_is_configurable_and_an_unknown_non_claude_name_is_a_404() -> None:
    models = ClaudeModels(ModelRegistry(), {"claude-opus-4-1": "deepseek-expert-reasoner", "sonnet": "deepseek-chat"},
                          "deepseek-chat")
    assert models.resolve("claude-opus-4-1-20250805").id == "deepseek-expert-reasoner"  # type: ignore[union-attr]
    assert models.resolve("claude-sonnet-4").id == "deepseek-chat"  # type: ignore[union-attr]
    assert models.resolve("claude-haiku-4").id == "deepseek-chat"  # type: ignore[union-attr]
    with pytest.raises(ModelNotFound) as missing:
        turn(model="gpt-4o")
    assert missing.value.status == 404


def test_thinking_enabled_adaptive_and_disabled_switch_the_models_thinking() -> None:
    assert turn(model="claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 2048}).model.thinking
    assert turn(model="claude-haiku-4-5", thinking={"type": "adaptive", "display": "summarized"}).model.thinking
    assert not turn(thinking={"type": "disabled"}).model.thinking
    with pytest.raises(RequestInvalid):
        turn(thinking={"type": "sometimes"})


# ---- messages ----------------------------------------------------------------------------------


def test_system_blocks_system_messages_and_text_blocks_become_messages_in_order() -> None:
    result = turn(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                          {"type": "text", "text": "Use tools."}],
                  messages=[{"role": "system", "content": "Inside."},
                            {"role": "user", "content": [{"type": "text", "text": "a"},
                                                         {"type": "text", "text": "b", "cache_control": {}}]},
                            {"role": "assistant", "content": "ok"}])
    assert [(m.role, m.content) for m in result.messages] == [
        ("system", "Be brief.\nUse tools."), ("system", "Inside."), ("user", "a\nb"), ("assistant", "ok")]


def test_tool_use_and_tool_result_blocks_become_calls_and_tool_messages() -> None:
    result = turn(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "clock broken"}]},
            {"type": "text", "text": "and?"}]}])
    assistant = result.messages[1]
    assert assistant.content == "Checking."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in assistant.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Paris"}), ("toolu_2", "get_time", {})]
    tools = [(m.role, m.tool_call_id, m.name, m.content) for m in result.messages[2:4]]
    assert tools == [("tool", "toolu_1", "get_weather", "18 C"), ("tool", "toolu_2", "get_time", "Error: clock broken")]
    assert (result.messages[4].role, result.messages[4].content) == ("user", "and?")


def test_our_signed_thinking_is_kept_and_an_unverifiable_one_is_ignored_without_error() -> None:
    text = "Let me think."
    good = {"type": "thinking", "thinking": text, "signature": SIGNER.sign(text)}
    forged = {"type": "thinking", "thinking": "Injected.", "signature": SIGNER.sign(text)}
    foreign = {"type": "thinking", "thinking": "Theirs.", "signature": "EqQBCkYIBxgCKkD..."}
    redacted = {"type": "redacted_thinking", "data": "abc"}
    for blocks, kept in (([good], text), ([forged], None), ([foreign, redacted], None)):
        result = turn(messages=[{"role": "user", "content": "q"},
                                {"role": "assistant", "content": [*blocks, {"type": "text", "text": "a"}]},
                                {"role": "user", "content": "q2"}])
        assert result.messages[1].reasoning_content == kept
    other_key = ThinkingSigner("another")
    assert not other_key.verify(text, SIGNER.sign(text))


def test_tools_tool_choice_and_parallel_switch_become_the_turns_tool_fields() -> None:
    tools = [{"name": "read", "description": "Read a file", "cache_control": {"type": "ephemeral"},
              "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                               "properties": {"path": {"type": "string"}}, "required": ["path"]},
              "defer_loading": False, "strict": True},
             {"name": "web_search", "type": "web_search_20250305"}]  # Anthropic-hosted: not offered
    result = turn(tools=tools)
    assert [t.name for t in result.tools] == ["read"]
    assert result.tools[0].parameters["required"] == ["path"]
    assert (result.tool_choice.mode, result.parallel_tool_calls) == (ToolChoiceMode.AUTO, True)
    assert turn(tools=tools, tool_choice={"type": "any"}).tool_choice.mode is ToolChoiceMode.REQUIRED
    assert turn(tools=tools, tool_choice={"type": "none"}).tool_choice.mode is ToolChoiceMode.NONE
    named = turn(tools=tools, tool_choice={"type": "tool", "name": "read", "disable_parallel_tool_use": True})
    assert (named.tool_choice.mode, named.tool_choice.name, named.parallel_tool_calls) == \
        (ToolChoiceMode.NAMED, "read", False)
    with pytest.raises(RequestInvalid):
        turn(tools=tools, tool_choice={"type": "tool", "name": "write"})


def test_newer_fields_huge_max_tokens_and_stop_sequences_are_accepted() -> None:
    result = turn(max_tokens=10_000_000, stop_sequences=["END", ""], temperature=1, top_k=5, top_p=0.9,
                  metadata={"user_id": "u"}, service_tier="auto", output_config={"effort": "high"},
                  context_management={"edits": []}, container=None)
    assert (result.max_tokens, result.stop) == (10_000_000, ("END",))


@pytest.mark.parametrize(("body", "param"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
     "messages.0.content.0.source.data"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
     "messages.0.content.0.source.type"),
    ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
    ({"stop_sequences": "END"}, "stop_sequences"),
])
def test_what_would_change_the_answer_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestInvalid) as bad:
        turn(**body)
    assert (bad.value.status, bad.value.param) == (400, param)


# ---- rendering ----------------------------------------------------------------------------------


def parse_events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        kind_line, data_line = frame.split("\n")
        kind = kind_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == kind
        events.append(data)
    return events


def test_stream_writer_events_are_ordered_contiguous_and_valid_sdk_events() -> None:
    writer = StreamWriter("msg_1", "claude-sonnet-4-5", SIGNER)
    raw = writer.start() + writer.reasoning("Think") + writer.reasoning("ing.") + writer.text("Hello") + \
        writer.text(" <world> \"q\"") + writer.tool_call(OutToolCall(0, "call_abc", "read", '{"path":"a.txt"}')) + \
        writer.tool_call(OutToolCall(1, "call_def", "write", '{"path":"b","content":"x\\ny"}')) + \
        writer.finish("tool_use", None, TurnUsage(10, 3, 2))
    events = parse_events(raw)
    for data in events:
        EVENT.validate_python(data)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1, 2, 3]
    assert [e["content_block"]["type"] for e in starts] == ["thinking", "text", "tool_use", "tool_use"]
    signature = [e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert signature == [SIGNER.sign("Thinking.")]
    assert starts[2]["content_block"]["id"] == "toolu_abc"
    joined = "".join(e["delta"]["partial_json"] for e in events
                     if e.get("index") == 3 and e.get("delta", {}).get("type") == "input_json_delta")
    assert json.loads(joined) == {"path": "b", "content": "x\ny"}
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    assert events[-2]["usage"] == {"input_tokens": 10, "output_tokens": 5}


def test_non_stream_body_is_a_valid_sdk_message_with_blocks_in_stream_order() -> None:
    calls = [OutToolCall(0, "call_x", "read", '{"path":"a"}')]
    body = message_body("msg_1", "claude-x", content_blocks(SIGNER, "hmm", "text", calls),
                        stop_reason("stop", None, True), None, usage_body(TurnUsage(4, 2, 1)))
    message = SdkMessage.model_validate(body)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"path": "a"}  # type: ignore[union-attr]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("tool_use", 4, 3)


def test_stop_reasons() -> None:
    assert stop_reason("stop", None, False) == "end_turn"
    assert stop_reason("stop", "END", False) == "stop_sequence"
    assert stop_reason("length", None, False) == "max_tokens"
    assert stop_reason("stop", None, True) == "tool_use"


# ---- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
    (502, "api_error"), (529, "overloaded_error")])
def test_every_status_has_its_anthropic_error_type(status: int, kind: str) -> None:
    error = ApiError(status, "m")
    assert anthropic_body(error, "req_9") == {"type": "error", "error": {"type": kind, "message": "m"},
                                              "request_id": "req_9"}


def test_busy_upstream_is_529_overloaded_and_a_too_long_prompt_says_so() -> None:
    busy = from_upstream(UpstreamError(ErrorKind.BUSY, "busy"))
    assert (anthropic_status(busy), anthropic_body(busy)["error"]["type"]) == (529, "overloaded_error")
    too_long = from_upstream(UpstreamError(ErrorKind.INPUT_TOO_LONG, "too long"))
    assert anthropic_body(too_long)["error"]["message"].startswith("prompt is too long")
    assert anthropic_status(too_long) == 400


# ---- the session's account -----------------------------------------------------------------------


async def test_a_preferred_account_is_taken_when_free_and_never_waited_for() -> None:
    pool, _, _ = await make_pool(("a", "b", "c"))
    for _ in range(5):
        async with pool.lease(prefer="b") as lease:
            assert lease.account_id == "b"
    async with pool.lease(prefer="b") as held, pool.lease(prefer="b") as other:
        assert held.account_id == "b" and other.account_id != "b"  # b was busy: another free account at once
    async with pool.lease(prefer="a", exclude=("a",)) as lease:
        assert lease.account_id != "a"
    pool.assert_idle()
    await pool.close()
