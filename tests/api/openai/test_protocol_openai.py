"""OpenAI wire format: validation errors, Turn conversion, chunk/body builders (checked
with the real openai SDK types and, through an in-memory transport, the SDK itself)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from deepseek2api.api.openai.protocol import ModelNotFound, RequestInvalid, error_body, to_turn, validate_request
from deepseek2api.api.openai.render import (
    DONE,
    ChunkEncoder,
    completion_body,
    model_body,
    model_list_body,
    usage_body,
)
from deepseek2api.chat.turn import ModelRegistry
from openai_wire import chunk_bytes, usage_chunk_bytes

USER = {"role": "user", "content": "Hi"}


def body(**fields):
    return {"model": "deepseek-chat", "messages": [USER], **fields}


# -- validation ------------------------------------------------------------------------------------

INVALID = [
    # (request body, param, code, words in the message)
    ([], None, "invalid_type", "JSON object"),
    ("text", None, "invalid_type", "JSON object"),
    ({"messages": [USER]}, "model", "missing_required_parameter", "'model'"),
    (body(model=""), "model", "invalid_value", "empty"),
    (body(model="  "), "model", "invalid_value", "empty"),
    (body(model=5), "model", "invalid_type", "string"),
    ({"model": "deepseek-chat"}, "messages", "missing_required_parameter", "'messages'"),
    (body(messages=[]), "messages", "empty_array", "empty"),
    (body(messages="hi"), "messages", "invalid_type", "array"),
    (body(messages=["hi"]), "messages[0]", "invalid_type", "object"),
    (body(messages=[USER, {"content": "x"}]), "messages[1].role", "missing_required_parameter", "role"),
    (body(messages=[USER, {"role": "bot", "content": "x"}]), "messages[1].role", "invalid_value", "'bot'"),
    (body(messages=[{"role": 1, "content": "x"}]), "messages[0].role", "invalid_type", "string"),
    (body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "invalid_type", "content parts"),
    (body(messages=[{"role": "user", "content": {"text": "x"}}]), "messages[0].content", "invalid_type", "object"),
    (
        body(messages=[USER, {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}]}]),
        "messages[1].content[1].type",
        "invalid_value",
        "only allowed in user messages",
    ),
    (
        body(messages=[USER, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
        "messages[1].content[0].image_url.url",
        "missing_required_parameter",
        "url",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]),
        "messages[0].content[0].file.file_id",
        "unsupported_value",
        "file_data",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
        "messages[0].content[0].type",
        "unsupported_value",
        "not supported",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "file", "file": {}}]}]),
        "messages[0].content[0].file.file_data",
        "missing_required_parameter",
        "file_data",
    ),
    (body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type", "invalid_value", "'video'"),
    (body(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages[0].content[0].type", "missing_required_parameter", "type"),
    (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text", "missing_required_parameter", "text"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]), "messages[0].content[0].text", "invalid_type", "string"),
    (body(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]", "invalid_type", "object"),
    (body(messages=[{"role": "user", "content": "hi", "name": 3}]), "messages[0].name", "invalid_type", "string"),
    (body(messages=[{"role": "assistant", "content": None, "tool_calls": "x"}, USER]), "messages[0].tool_calls", "invalid_type", "array"),
    (body(messages=[{"role": "user", "content": ""}, {"role": "assistant", "content": None}]), "messages", "invalid_value", "no message contains any text"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": "  "}]}]), "messages", "invalid_value", "text"),
    (body(n=2), "n", "unsupported_value", "n=2"),
    (body(n=0), "n", "invalid_value", "at least 1"),
    (body(n="1"), "n", "invalid_type", "integer"),
    (body(logprobs=True), "logprobs", "unsupported_value", "logprobs"),
    (body(top_logprobs=3), "logprobs", "unsupported_value", "top_logprobs"),
    (body(logprobs="yes"), "logprobs", "invalid_type", "boolean"),
    (body(modalities=["text", "audio"]), "modalities", "unsupported_value", "Audio"),
    (body(audio={"voice": "alloy", "format": "mp3"}), "audio", "unsupported_value", "Audio"),
    (body(stream="yes"), "stream", "invalid_type", "boolean"),
    (body(stream_options={"include_usage": "y"}), "stream_options.include_usage", "invalid_type", "boolean"),
    (body(stream_options=[1]), "stream_options", "invalid_type", "object"),
    (body(stop=5), "stop", "invalid_type", "string"),
    (body(stop=["a", 1]), "stop[1]", "invalid_type", "string"),
    (body(stop=[str(i) for i in range(17)]), "stop", "array_above_max_length", "at most 16"),
    (body(max_tokens=0), "max_tokens", "invalid_value", "at least 1"),
    (body(max_completion_tokens="9"), "max_completion_tokens", "invalid_type", "integer"),
    (body(thinking={"type": "maybe"}), "thinking.type", "invalid_value", "'enabled'"),
    (body(thinking="on"), "thinking", "invalid_type", "object"),
    (body(reasoning_effort=3), "reasoning_effort", "invalid_type", "string"),
    (body(web_search_options=True), "web_search_options", "invalid_type", "object"),
]


@pytest.mark.parametrize(("payload", "param", "code", "words"), INVALID)
def test_invalid_requests_give_a_specific_400(payload, param, code, words) -> None:
    with pytest.raises(RequestInvalid) as caught:
        validate_request(payload)
    error = caught.value
    assert error.status == 400
    assert (error.param, error.code) == (param, code)
    assert words in error.message
    envelope = error.body()
    assert set(envelope["error"]) == {"message", "type", "param", "code"}
    assert envelope["error"]["type"] == "invalid_request_error"
    assert "pydantic" not in error.message and "errors.pydantic.dev" not in error.message


def test_pydantic_errors_never_escape_raw(monkeypatch) -> None:
    """Should a check be missing, pydantic's first error is still converted to our envelope."""
    from deepseek2api.api.openai import protocol

    monkeypatch.setattr(protocol, "_check_fields", lambda body: None)
    with pytest.raises(RequestInvalid) as caught:
        validate_request(body(stream_options={"include_usage": [1]}))
    assert caught.value.param == "stream_options.include_usage"
    assert "Invalid value for 'stream_options.include_usage'" in caught.value.message


ACCEPTED = body(
    messages=[
        {"role": "developer", "content": "Be terse."},
        {"role": "system", "content": [{"type": "text", "text": "S"}]},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "name": "bob"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "hmm",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "function", "name": "f", "content": "legacy"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": "ok"},
    ],
    temperature=0.2,
    top_p=0.9,
    presence_penalty=0,
    frequency_penalty=0,
    seed=7,
    user="u",
    metadata={"a": "b"},
    store=False,
    service_tier="auto",
    logit_bias={"1": 2},
    some_future_field={"x": 1},
    n=1,
    logprobs=False,
    top_logprobs=0,
    modalities=["text"],
    stream=True,
    stream_options={"include_usage": True},
    stop="END",
    max_tokens=100,
    max_completion_tokens=50,
    reasoning_effort="high",
    thinking={"type": "enabled"},
    web_search_options={"search_context_size": "low"},
)


def test_accepts_everything_a_client_may_send_and_ignores_extras() -> None:
    req = validate_request(ACCEPTED)
    assert req.model == "deepseek-chat"
    assert len(req.messages) == 8
    chat = to_turn(req, ModelRegistry(), "req-1")
    assert chat.request_id == "req-1"
    assert chat.model.id == "deepseek-chat" and chat.model.thinking and chat.model.search
    assert chat.model_name == "deepseek-chat"
    assert chat.stream and chat.include_usage
    assert chat.stop == ("END",)
    assert chat.max_tokens == 50  # max_completion_tokens wins
    roles = [m.role for m in chat.messages]
    assert roles == ["developer", "system", "user", "assistant", "tool", "function", "assistant", "user"]
    assert chat.messages[2].content == "a\nb" and chat.messages[2].name == "bob"
    assert chat.messages[3].content == "" and chat.messages[3].reasoning_content == "hmm"
    assert chat.messages[6].content == ""


def test_to_turn_echoes_the_alias_and_defaults() -> None:
    chat = to_turn(validate_request({"model": "DeepSeek-R1", "messages": [USER]}), ModelRegistry(), "r")
    assert chat.model_name == "DeepSeek-R1"
    assert chat.model.id == "deepseek-reasoner" and chat.model.thinking
    assert (chat.stream, chat.include_usage, chat.stop, chat.max_tokens) == (False, False, (), None)
    chat = to_turn(validate_request(body(stop=["a", ""], max_tokens=9)), ModelRegistry(), "r")
    assert chat.stop == ("a",) and chat.max_tokens == 9


def test_unknown_model_is_a_404_model_not_found() -> None:
    req = validate_request(body(model="gpt-4o"))
    with pytest.raises(ModelNotFound) as caught:
        to_turn(req, ModelRegistry(), "r")
    error = caught.value
    assert error.status == 404
    assert error.body() == {
        "error": {"message": error.message, "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
    }
    assert "gpt-4o" in error.message


# -- response builders ----------------------------------------------------------------------------


def parse_event(event: bytes) -> dict:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    line = event[len(b"data: ") : -2]
    assert b"\n" not in line and b"\r" not in line, "one line of JSON per event"
    return json.loads(line)


def test_chunk_bytes_is_one_line_of_json_and_a_valid_sdk_chunk() -> None:
    event = chunk_bytes("chatcmpl-1", 1700000000, "deepseek-chat", {"role": "assistant", "content": "a\nb \u2028 ü"})
    chunk = ChatCompletionChunk.model_validate(parse_event(event))
    assert chunk.id == "chatcmpl-1" and chunk.created == 1700000000 and chunk.model == "deepseek-chat"
    assert chunk.choices[0].index == 0 and chunk.choices[0].delta.content == "a\nb \u2028 ü"
    assert chunk.choices[0].finish_reason is None
    assert "ü".encode() in event  # not \u-escaped


def test_reasoning_and_finish_chunks_validate() -> None:
    reasoning = parse_event(chunk_bytes("c", 1, "m", {"content": None, "reasoning_content": "think"}))
    chunk = ChatCompletionChunk.model_validate(reasoning)
    assert chunk.choices[0].delta.model_extra["reasoning_content"] == "think"
    usage = usage_body(10, 5, 3)
    final = ChatCompletionChunk.model_validate(parse_event(chunk_bytes("c", 1, "m", {}, "stop", usage)))
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.total_tokens == 15 and final.usage.completion_tokens_details.reasoning_tokens == 3
    only_usage = ChatCompletionChunk.model_validate(parse_event(usage_chunk_bytes("c", 1, "m", usage)))
    assert only_usage.choices == [] and only_usage.usage.prompt_tokens == 10


def test_chunk_encoder_matches_chunk_bytes() -> None:
    encoder = ChunkEncoder("chatcmpl-\"x\"", 5, "deepseek-Rä")
    usage = usage_body(1, 2)
    for delta, reason, use in [({"content": "x"}, None, None), ({}, "length", usage), ({"reasoning_content": "r"}, None, None)]:
        assert encoder.chunk(delta, reason, use) == chunk_bytes(encoder.id, 5, encoder.model, delta, reason, use)
    assert encoder.content("hi") == chunk_bytes(encoder.id, 5, encoder.model, {"content": "hi"})
    assert encoder.reasoning("r") == chunk_bytes(encoder.id, 5, encoder.model, {"reasoning_content": "r"})
    assert encoder.usage(usage) == usage_chunk_bytes(encoder.id, 5, encoder.model, usage)


def test_done_and_error_events() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert error_body("m", "t") == {"error": {"message": "m", "type": "t", "param": None, "code": None}}


def test_usage_body_has_deepseek_extras() -> None:
    usage = usage_body(7, 4, 2)
    assert usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"] == usage["prompt_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_completion_body_validates_with_the_sdk() -> None:
    data = completion_body("chatcmpl-2", 1700000000, "deepseek-r1", "It is 42.", "stop", usage_body(3, 9, 4), "Because.")
    completion = ChatCompletion.model_validate(data)
    choice = completion.choices[0]
    assert choice.message.content == "It is 42." and choice.message.role == "assistant"
    assert choice.message.model_extra["reasoning_content"] == "Because."
    assert choice.message.refusal is None and choice.logprobs is None
    assert completion.usage.model_extra["prompt_cache_miss_tokens"] == 3
    plain = completion_body("c", 1, "m", "x", "length", None)
    assert "reasoning_content" not in plain["choices"][0]["message"] and "usage" not in plain
    assert ChatCompletion.model_validate(plain).choices[0].finish_reason == "length"


def test_model_list_union_shape_validates_with_the_sdk() -> None:
    registry = ModelRegistry({"my-model": {"thinking": True}})
    listing = model_list_body(registry)
    assert listing["object"] == "list" and listing["has_more"] is False
    ids = [item["id"] for item in listing["data"]]
    assert listing["first_id"] == ids[0] == "deepseek-chat" and listing["last_id"] == ids[-1] == "my-model"
    assert {"deepseek-v3", "deepseek-v4-pro", "deepseek-expert-reasoner-search"} <= set(ids)
    for item in listing["data"]:
        model = Model.model_validate(item)
        assert model.object == "model" and model.owned_by == "deepseek" and isinstance(model.created, int)
        assert item["type"] == "model" and item["display_name"] and item["created_at"].endswith("Z")
    assert model_list_body(registry.listed())["data"] == listing["data"]
    spec = registry.resolve("deepseek-r1")
    assert model_body(spec, "deepseek-r1")["id"] == "deepseek-r1"
    assert model_body(spec)["display_name"] == "DeepSeek Reasoner"


# -- the real SDK over an in-memory transport ------------------------------------------------------


def sdk_client(handler) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def test_sdk_requests_validate_and_sdk_parses_our_stream() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        seen.append(payload)
        chat = to_turn(validate_request(payload), ModelRegistry(), "r")
        encoder = ChunkEncoder("chatcmpl-s", 1700000000, chat.model_name)
        events = [
            encoder.chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
            encoder.reasoning("thinking…"),
            encoder.content("Hello"),
            encoder.content(" world"),
            encoder.chunk({"content": "", "reasoning_content": None}, "stop", usage_body(3, 4, 1)),
            encoder.usage(usage_body(3, 4, 1)),
            DONE,
        ]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(events))

    client = sdk_client(handler)
    stream = client.chat.completions.create(
        model="deepseek-r1",
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        stop=["END"],
        temperature=0.5,
        extra_body={"thinking": {"type": "enabled"}, "reasoning_effort": "high"},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7
    assert {c.model for c in chunks} == {"deepseek-r1"}
    assert seen[0]["stream_options"] == {"include_usage": True}


def test_sdk_parses_a_non_streaming_completion() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        chat = to_turn(validate_request(json.loads(request.content)), ModelRegistry(), "r")
        data = completion_body("chatcmpl-n", 1700000000, chat.model_name, "ok", "stop", usage_body(1, 1), "why")
        return httpx.Response(200, json=data)

    completion = sdk_client(handler).chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    )
    assert completion.choices[0].message.content == "ok"
    assert completion.choices[0].message.model_extra["reasoning_content"] == "why"


def test_sdk_maps_our_400_to_bad_request_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            validate_request(json.loads(request.content))
        except RequestInvalid as error:
            return httpx.Response(error.status, json=error.body())
        raise AssertionError("expected a validation error")

    with pytest.raises(openai.BadRequestError) as caught:
        sdk_client(handler).chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "x"}], n=3)
    assert caught.value.param == "n" and caught.value.code == "unsupported_value"


def test_model_not_found_is_caught_as_request_invalid() -> None:
    with pytest.raises(RequestInvalid) as caught:
        to_turn(validate_request(body(model="nope")), ModelRegistry(), "r")
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
