"""The Responses request → Turn mapping: items, tools, tool_choice, effort, and the 400s for what would
change meaning silently."""

from __future__ import annotations

from typing import Any

import pytest

from deepseek2api.api.errors import RequestInvalid
from deepseek2api.api.responses.protocol import (
    ItemNotFound,
    normalise_items,
    referenced_ids,
    resolve_references,
    stored_form,
    to_turn,
    validate_request,
)
from deepseek2api.chat.tools.spec import ToolChoiceMode, ToolKind
from deepseek2api.chat.turn import ModelRegistry, Turn

REGISTRY = ModelRegistry()


def turn(**body: Any) -> Turn:
    body.setdefault("model", "deepseek-reasoner")
    body.setdefault("input", "hi")
    return to_turn(validate_request(body), [], REGISTRY, "req-1")


def error(**body: Any) -> RequestInvalid:
    body.setdefault("model", "deepseek-chat")
    with pytest.raises(RequestInvalid) as caught:
        to_turn(validate_request(body), [], REGISTRY, "req-1")
    return caught.value


def test_items_become_messages_with_calls_joined_to_the_assistant_turn() -> None:
    result = turn(instructions="be nice", input=[
        {"role": "developer", "content": "dev rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "secret thoughts"}]},
        {"role": "assistant", "content": "let me look"},
        {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** patch"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "out1"}]},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "out2"},
        {"type": "some_future_item", "data": 1},
    ])
    roles = [(m.role, m.content) for m in result.messages]
    assert roles == [("system", "be nice"), ("developer", "dev rules"), ("user", "q"), ("assistant", "let me look"),
                     ("tool", "out1"), ("tool", "out2")]
    assistant = result.messages[3]
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [("c1", "get", "{}"),
                                                                          ("c2", "apply_patch", "*** patch")]
    assert result.messages[4].name == "get" and result.messages[4].tool_call_id == "c1"


def test_namespace_custom_and_hosted_tools() -> None:
    result = turn(tools=[
        {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}},
        {"type": "namespace", "name": "crm", "description": "d", "tools": [{"type": "function", "name": "lookup"}]},
        {"type": "custom", "name": "apply_patch", "description": "patch", "format": {"type": "grammar"}},
        {"type": "web_search"}, {"type": "file_search", "vector_store_ids": []},
    ])
    assert [(t.name, t.kind, t.namespace, t.original_name) for t in result.tools] == [
        ("f", ToolKind.FUNCTION, None, None), ("crm.lookup", ToolKind.FUNCTION, "crm", "lookup"),
        ("apply_patch", ToolKind.CUSTOM, None, None)]


def test_tool_choice_forms() -> None:
    tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]
    assert turn(tools=tools, tool_choice="required").tool_choice.mode is ToolChoiceMode.REQUIRED
    assert turn(tools=tools, tool_choice="none").tool_choice.mode is ToolChoiceMode.NONE
    named = turn(tools=tools, tool_choice={"type": "function", "name": "b"}).tool_choice
    assert named.mode is ToolChoiceMode.NAMED and named.name == "b"
    allowed = turn(tools=tools, tool_choice={"type": "allowed_tools", "mode": "required",
                                             "tools": [{"type": "function", "name": "a"}]})
    assert [t.name for t in allowed.tools] == ["a"] and allowed.tool_choice.mode is ToolChoiceMode.REQUIRED
    assert turn(tools=tools, tool_choice={"type": "web_search_preview"}).tool_choice.mode is ToolChoiceMode.AUTO
    assert turn(tools=tools, parallel_tool_calls=False).parallel_tool_calls is False


@pytest.mark.parametrize("effort,thinking", [("none", False), ("minimal", False), ("low", True), ("high", True),
                                             (None, True)])
def test_reasoning_effort_none_or_minimal_turns_thinking_off(effort: str | None, thinking: bool) -> None:
    assert turn(reasoning={"effort": effort, "summary": "auto"}).model.thinking is thinking


def test_text_format_json_schema_and_max_output_tokens() -> None:
    result = turn(text={"format": {"type": "json_schema", "name": "trip", "strict": True,
                                   "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                  max_output_tokens=50, store=False, prompt_cache_key="k", metadata={"a": "b"}, newer_field=[1])
    assert result.response_format is not None and result.response_format.kind == "json_schema"
    assert result.response_format.name == "trip" and result.max_tokens == 50


@pytest.mark.parametrize("body,param", [
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
     "input[0].content[0].file_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
     "input[0].content[0].file_url"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "input[0].content[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"input": 3}, "input"),
    ({"tool_choice": {"type": "function", "name": "missing"}}, "tool_choice.name"),
    ({"tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]}, "tools[1].name"),
    ({"tools": [{"type": "web_search"}, {"type": "namespace", "name": "ns", "description": "d", "tools": [
        {"type": "function", "name": "g", "parameters": {"type": "array"}}]}]}, "tools[1].tools[0].parameters"),
    ({"tools": [{"type": "function", "name": "has space"}]}, "tools[0].name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": 3}}}}, "text.format.schema"),
    ({"background": True}, "background"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"input": [{"role": "user", "content": ""}]}, "input"),
])
def test_requests_that_would_change_meaning_are_400s(body: dict[str, Any], param: str) -> None:
    assert error(**body).param == param


# ---- item_reference ----------------------------------------------------------------------------------


def test_item_references_in_both_forms_are_resolved_in_place() -> None:
    items = normalise_items([{"role": "user", "content": "a"}, {"type": "item_reference", "id": "msg_1"},
                             {"id": "fc_2"}, {"role": "user", "content": "b"}])
    assert referenced_ids(items) == ["msg_1", "fc_2"]
    stored = {"msg_1": {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text",
                                                                                           "text": "A1"}]},
              "fc_2": {"type": "function_call", "id": "fc_2", "call_id": "c", "name": "f", "arguments": "{}"}}
    resolved = resolve_references(items, stored)
    assert [item["type"] for item in resolved] == ["message", "message", "function_call", "message"]
    assert resolved[1]["content"][0]["text"] == "A1"
    with pytest.raises(ItemNotFound) as caught:
        resolve_references(items, {"msg_1": stored["msg_1"]})
    assert caught.value.status == 404 and caught.value.param == "input" and "fc_2" in caught.value.message


def test_an_item_reference_without_an_id_is_a_400_naming_it() -> None:
    with pytest.raises(RequestInvalid) as caught:
        normalise_items([{"type": "item_reference"}])
    assert caught.value.param == "input[0].id"


def test_the_stored_form_keeps_only_what_goes_upstream() -> None:
    items = normalise_items([{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
                              "encrypted_content": "E" * 100},
                             {"type": "future_item", "id": "fi_1", "blob": "B" * 100},
                             {"type": "item_reference", "id": "msg_1"}, {"role": "user", "content": "hi"}])
    kept = stored_form(items)
    assert kept[:3] == [{"type": "reasoning", "id": "rs_1", "summary": []}, {"type": "future_item", "id": "fi_1"},
                        {"type": "item_reference", "id": "msg_1"}]
    assert kept[3]["content"][0]["text"] == "hi"
