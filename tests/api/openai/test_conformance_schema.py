"""The conformance oracle itself: OpenAI's schemas as loaded, and the framing checks, must reject what
real clients choke on (docs/clients.md) — otherwise a green suite would prove nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance_support import (
    SCHEMA_ROOTS,
    Exchange,
    OpenAISchemas,
    check_exchange,
    normalise_nullable,
    openai_schemas,
    parse_sse,
)

__all__ = ["openai_schemas"]


def chunk(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                            "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None,
                                         "finish_reason": None}]}
    base.update(changes)
    return base


def completion(**message: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "hi", "refusal": None, **message}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def test_every_root_schema_is_loaded(openai_schemas: OpenAISchemas) -> None:
    for name in SCHEMA_ROOTS:
        assert openai_schemas.errors(name, {}), f"{name} accepts an empty object: not loaded as intended"


def test_nullable_is_rewritten_to_any_of_null() -> None:
    assert normalise_nullable({"type": "string", "nullable": True, "enum": ["stop"]}) == {
        "anyOf": [{"type": "string", "enum": ["stop"]}, {"type": "null"}]}
    assert normalise_nullable({"properties": {"nullable": {"type": "boolean"}}}) == {
        "properties": {"nullable": {"type": "boolean"}}}  # a property *named* nullable is not the keyword


def test_valid_shapes_pass(openai_schemas: OpenAISchemas) -> None:
    assert openai_schemas.errors("CreateChatCompletionStreamResponse", chunk()) == []
    assert openai_schemas.errors("CreateChatCompletionStreamResponse", chunk(usage=None)) == []
    assert openai_schemas.errors("CreateChatCompletionStreamResponse", chunk(choices=[], usage={
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})) == []
    assert openai_schemas.errors("CreateChatCompletionResponse", completion(reasoning_content="why")) == []
    assert openai_schemas.errors("ErrorResponse", {"error": {"message": "m", "type": "t", "param": None,
                                                             "code": None}}) == []


@pytest.mark.parametrize("name,payload", [
    ("CreateChatCompletionStreamResponse", chunk(choices=[{"index": 0, "finish_reason": None}])),  # no delta
    ("CreateChatCompletionStreamResponse", chunk(choices=[{"delta": {}, "finish_reason": None}])),  # no index
    ("CreateChatCompletionStreamResponse", chunk(choices=[{"index": 0, "delta": {},
                                                           "finish_reason": "insufficient_system_resource"}])),
    ("CreateChatCompletionStreamResponse", chunk(created="yesterday")),
    ("CreateChatCompletionStreamResponse", {k: v for k, v in chunk().items() if k != "id"}),
    ("CreateChatCompletionResponse", {k: v for k, v in completion().items() if k != "created"}),
    ("ErrorResponse", {"error": {"message": "m", "type": "t", "param": None}}),  # code missing
    ("ListModelsResponse", {"object": "list", "data": [{"id": "deepseek-chat", "object": "model",
                                                        "owned_by": "deepseek"}]}),  # DeepSeek's: no created
])
def test_shapes_real_clients_reject_fail(openai_schemas: OpenAISchemas, name: str, payload: Any) -> None:
    assert openai_schemas.errors(name, payload)


@pytest.mark.parametrize("body", [
    b'data: {"a":1}\ndata: {"b":2}\n\n',  # single newline between events: they merge
    b'data: {\n"a": 1}\n\n',  # multi-line JSON
    b'data: {"a":1}\n\ndata: [DONE]\n',  # no blank line after the last event
    b'data: {"a":1}\r\n\r\n',  # CRLF
    b'event: message\ndata: {"a":1}\n\n',  # event: lines are not part of the OpenAI stream
])
def test_bad_framing_is_rejected(body: bytes) -> None:
    with pytest.raises(AssertionError):
        parse_sse(body)


def test_good_framing_with_keepalives() -> None:
    events = parse_sse(b': keep-alive\n\ndata: {"a":1}\n\ndata:{"b":2}\n\ndata: [DONE]\n\n')
    assert [(e.kind, e.text) for e in events] == [("comment", "keep-alive"), ("data", '{"a":1}'),
                                                 ("data", '{"b":2}'), ("data", "[DONE]")]


def _exchange(request: dict[str, Any], body: bytes, content_type: str, status: int = 200) -> Exchange:
    exchange = Exchange("POST", "/v1/chat/completions", {}, bytearray(json.dumps(request).encode()), status,
                        {"content-type": content_type, "x-request-id": "req_1"}, bytearray(body), True)
    return exchange


def sse_of(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads)


def test_stream_checks(openai_schemas: OpenAISchemas) -> None:
    stream = {"model": "m", "messages": [], "stream": True}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    finish = chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
    good = sse_of(chunk(), finish, chunk(choices=[], usage=usage), b"[DONE]")
    check_exchange(_exchange(stream, good, "text/event-stream"), openai_schemas)
    bad_cases = [
        _exchange(stream, json.dumps(completion()).encode(), "application/json"),  # JSON for stream:true
        _exchange(stream, sse_of(chunk(), b"[DONE]", finish), "text/event-stream"),  # [DONE] not last
        _exchange(stream, sse_of(chunk(), finish), "text/event-stream"),  # neither [DONE] nor error
        _exchange(stream, sse_of(chunk(), chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                                usage=usage), chunk(choices=[], usage=usage), b"[DONE]"),
                  "text/event-stream"),  # usage twice: summing clients double count
        _exchange(stream, sse_of(chunk(), chunk(id="other"), finish, b"[DONE]"), "text/event-stream"),
        _exchange({"model": "m"}, json.dumps({"error": {"message": "m"}}).encode(), "application/json", 400),
    ]
    for exchange in bad_cases:
        with pytest.raises(AssertionError):
            check_exchange(exchange, openai_schemas)
