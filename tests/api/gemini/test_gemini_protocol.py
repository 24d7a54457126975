"""The Gemini request → Turn mapping, without a server: both field spellings, schema conversion, tool config
modes, thinking switches, search, the pairing of function responses with calls, and the 400s."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from deepseek2api.api.errors import RequestInvalid
from deepseek2api.api.gemini.errors import gemini_body, is_gemini_path
from deepseek2api.api.gemini.protocol import GeminiModels, GeminiOptions, ModelNotFound, json_schema, to_turn
from deepseek2api.api.gemini.render import GeminiCodec
from deepseek2api.chat.assemble import OutFinish
from deepseek2api.chat.tools.events import OutToolCall
from deepseek2api.chat.tools.spec import ToolChoiceMode
from deepseek2api.chat.turn import ModelRegistry

MODELS = GeminiModels(ModelRegistry(), {"pro": "deepseek-reasoner", "flash": "deepseek-chat"}, "deepseek-chat")
HELLO = [{"role": "user", "parts": [{"text": "hi"}]}]
DECLS = [{"functionDeclarations": [{"name": "a", "parameters": {"type": "OBJECT"}},
                                   {"name": "b", "parametersJsonSchema": {"type": "object"}}]}]


def turn(body: dict[str, Any], model: str = "gemini-2.5-flash") -> Any:
    return to_turn(body, model, MODELS, "req_1", stream=False)


def test_model_names_map_like_the_claude_table() -> None:
    assert MODELS.resolve("gemini-2.5-pro").thinking is True  # type: ignore[union-attr]
    assert MODELS.resolve("gemini-2.5-flash-lite").id == "deepseek-chat"  # type: ignore[union-attr]
    assert MODELS.resolve("gemini-exp-1206").id == "deepseek-chat"  # type: ignore[union-attr]
    assert MODELS.resolve("deepseek-reasoner-search").search is True  # type: ignore[union-attr]
    assert MODELS.resolve("gpt-4o") is None
    with pytest.raises(ModelNotFound):
        turn({"contents": HELLO}, "gpt-4o")


def test_google_schemas_become_json_schema() -> None:
    schema = {"type": "OBJECT", "propertyOrdering": ["a"], "required": ["a"], "properties": {
        "a": {"type": "STRING", "nullable": True, "enum": ["x"]},
        "b": {"type": "ARRAY", "items": {"type": "INTEGER"}, "minItems": "1"},
        "c": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]}}}
    assert json_schema(schema) == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": ["string", "null"], "enum": ["x"]},
        "b": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        "c": {"anyOf": [{"type": "number"}, {"type": "boolean"}]}}}


def test_both_spellings_system_instruction_config_and_structured_output() -> None:
    parsed = turn({"contents": HELLO, "system_instruction": {"parts": [{"text": "be brief"}]},
                   "generation_config": {"max_output_tokens": 10, "stop_sequences": ["END"],
                                         "response_mime_type": "application/json",
                                         "response_schema": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}}})
    t = parsed.turn
    assert t.messages[0].role == "system" and t.messages[0].content == "be brief"
    assert t.max_tokens == 10 and t.stop == ("END",)
    assert t.response_format.kind == "json_schema" and t.response_format.schema["properties"]["n"]["type"] == "integer"
    plain_json = turn({"contents": HELLO, "generationConfig": {"responseMimeType": "application/json"}}).turn
    assert plain_json.response_format.kind == "json_object"


def test_thinking_switches_and_search() -> None:
    assert turn({"contents": HELLO}, "gemini-2.5-pro").turn.model.thinking is True
    off = turn({"contents": HELLO, "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, "gemini-2.5-pro")
    assert off.turn.model.thinking is False and off.options.include_thoughts is False
    shown = turn({"contents": HELLO, "generationConfig": {"thinkingConfig": {"includeThoughts": True,
                                                                              "thinkingBudget": -1}}})
    assert shown.turn.model.thinking is False and shown.options.include_thoughts is True  # flash stays chat
    budget = turn({"contents": HELLO, "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}})
    assert budget.turn.model.thinking is True and budget.options.include_thoughts is False
    search = turn({"contents": HELLO, "tools": [{"googleSearch": {}}]})
    assert search.turn.model.search is True and search.options.search is True


@pytest.mark.parametrize(("config", "mode", "names"), [
    (None, ToolChoiceMode.AUTO, ["a", "b"]),
    ({"mode": "NONE"}, ToolChoiceMode.NONE, ["a", "b"]),
    ({"mode": "ANY"}, ToolChoiceMode.REQUIRED, ["a", "b"]),
    ({"mode": "ANY", "allowedFunctionNames": ["b"]}, ToolChoiceMode.NAMED, ["b"]),
])
def test_function_calling_modes(config: Any, mode: ToolChoiceMode, names: list[str]) -> None:
    body: dict[str, Any] = {"contents": HELLO, "tools": DECLS}
    if config is not None:
        body["toolConfig"] = {"functionCallingConfig": config}
    t = turn(body).turn
    assert t.tool_choice.mode == mode and [tool.name for tool in t.tools] == names
    assert t.tools[0].parameters["type"] == "object"


def test_function_responses_answer_their_calls_by_id_or_by_name() -> None:
    contents = [*HELLO,
                {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {"x": 1}}},
                                            {"functionCall": {"name": "b", "args": {}, "id": "own"}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "b", "id": "own", "response": {"r": 2}}},
                                           {"functionResponse": {"name": "a", "response": {"output": "plain"}}}]}]
    messages = turn({"contents": contents, "tools": DECLS}).turn.messages
    calls = messages[1].tool_calls
    assert [c.name for c in calls] == ["a", "b"] and calls[0].arguments == '{"x": 1}'
    assert (messages[2].tool_call_id, messages[2].content) == ("own", '{"r": 2}')
    assert (messages[3].tool_call_id, messages[3].content) == (calls[0].id, "plain")


@pytest.mark.parametrize(("body", "field"), [
    ({"contents": "hi"}, "contents"),
    ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": HELLO, "generationConfig": {"maxOutputTokens": 0}}, "generationConfig.maxOutputTokens"),
    ({"contents": HELLO, "generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
    ({"contents": HELLO, "tools": DECLS, "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                                                               "allowedFunctionNames": ["z"]}}},
     "allowedFunctionNames"),
    ({"contents": HELLO, "cachedContent": "cachedContents/1"}, "cachedContent"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestInvalid) as bad:
        turn(body)
    assert bad.value.status == 400 and field in bad.value.message


def test_the_envelope_and_its_paths() -> None:
    assert is_gemini_path("/v1beta/models") and is_gemini_path("/v1/models/gemini-2.5-pro:generateContent")
    assert not is_gemini_path("/v1/models") and not is_gemini_path("/v1/chat/completions")
    body = gemini_body(RequestInvalid("bad", "x"))
    assert body == {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_VALUE", "domain": "deepseek2api"}]}}


def _finish(text: str, calls: tuple[OutToolCall, ...] = ()) -> OutFinish:
    return OutFinish(finish_reason="tool_calls" if calls else "stop", upstream_status=None, citations=(),
                     reasoning_text="", content_text=text, tool_calls=calls)


def _array(*parts: bytes) -> Any:
    return json.loads(b"".join(parts))


def test_the_streamed_array_stays_json_when_it_fails_or_is_forced_into_a_call() -> None:
    options = GeminiOptions()
    failed = GeminiCodec("m", "r", options, sse=False)
    # only keep-alives went out before the failure: the array is still opened, then closed
    assert _array(failed.keepalive, failed.failed(RequestInvalid("bad", None), False))[0]["error"]["code"] == 400
    call = OutToolCall(0, "call_1", "lookup", '{"q": 1}')
    forced = GeminiCodec("m", "r", options, sse=False, forced_call=True)
    assert forced.start() == b"[" and forced.text("I will call it") == b""  # held until the call comes
    chunks = _array(b"[", forced.tool_call(call), asyncio.run(forced.finish(_finish("I will call it", (call,)))))
    assert [p for c in chunks for p in c["candidates"][0]["content"]["parts"] if p.get("text")] == []
    unanswered = GeminiCodec("m", "r", options, sse=False, forced_call=True)
    assert unanswered.text("no call after all") == b""
    chunks = _array(unanswered.start(), asyncio.run(unanswered.finish(_finish("no call after all"))))
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "no call after all"}]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
