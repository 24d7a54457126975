"""OpenAI Chat Completions wire format, response side: chunks, bodies and model listings.

Every chunk is one line of compact JSON followed by a blank line. The hot path (one chunk per
upstream token) goes through `ChunkEncoder`, which encodes the constant head once per stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ...chat.assemble import OutFinish
from ...chat.model_limits import ModelLimits
from ...chat.tools.events import OutToolCall
from ...chat.turn import ModelRegistry, ModelSpec
from ...chat.usage import TurnUsage
from ..errors import ApiError
from ..sse import KEEPALIVE, SSE_TYPE

SYSTEM_FINGERPRINT = "fp_deepseek2api"
MODELS_CREATED = 1735689600  # 2025-01-01T00:00:00Z: a stable `created` for every listed model
DONE = b"data: [DONE]\n\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_encode_str = json.encoder.encode_basestring  # == _dumps(a str), in C
_DELTA_TAIL = '},"logprobs":null,"finish_reason":null}]}\n\n'  # closes a text delta chunk (see ChunkEncoder)


def new_completion_id() -> str:
    """A fresh `chatcmpl-…` id (the most familiar shape for clients)."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    """`created`: integer unix seconds."""
    return int(time.time())


def turn_usage_body(usage: TurnUsage) -> dict[str, Any]:
    return usage_body(usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)


def citation_fields(finish: OutFinish) -> dict[str, Any]:
    """Search results as extra response fields: `citations` (URLs) and `search_results` (details)."""
    if not finish.citations:
        return {}
    results = [
        {"index": r.cite_index, "url": r.url, "title": r.title, "snippet": r.snippet, "site_name": r.site_name}
        for r in finish.citations
    ]
    return {"citations": [r.url for r in finish.citations], "search_results": results}


def usage_body(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> dict[str, Any]:
    """OpenAI `usage` plus DeepSeek's extras (cache hit always 0: the web chat has no prompt cache)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": prompt_tokens,
    }


class ChunkEncoder:
    """Hot-path chunk encoding for one stream: the constant head is encoded once.

    Produces exactly one `data: {chat.completion.chunk}` event per call, with one small `json.dumps`
    (the delta) per chunk (tests/openai_wire.py builds the same bytes the slow way, to compare).
    """

    __slots__ = ("_head", "created", "id", "model")

    def __init__(self, id: str, created: int, model: str) -> None:
        self.id, self.created, self.model = id, created, model
        self._head = (
            'data: {"id":' + _dumps(id) + ',"object":"chat.completion.chunk","created":' + str(int(created))
            + ',"model":' + _dumps(model) + ',"system_fingerprint":' + _dumps(SYSTEM_FINGERPRINT)
            + ',"choices":[{"index":0,"delta":'
        ).encode()

    def chunk(
        self,
        delta: Mapping[str, Any],
        finish_reason: str | None = None,
        usage: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> bytes:
        """`extra`: additional top-level fields (search results on the finish chunk)."""
        tail = ',"logprobs":null,"finish_reason":' + (_dumps(finish_reason) if finish_reason else "null") + "}]"
        if usage is not None:
            tail += ',"usage":' + _dumps(usage)
        for key, value in (extra or {}).items():
            tail += "," + _dumps(key) + ":" + _dumps(value)
        return self._head + (_dumps(delta) + tail + "}\n\n").encode()

    def role(self, thinking: bool) -> bytes:
        """The first chunk (DeepSeek's shape: an empty reasoning_content announces thinking)."""
        if thinking:
            return self.chunk({"role": "assistant", "content": None, "reasoning_content": ""})
        return self.chunk({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        # the per-token chunk: same bytes as chunk({"content": text}), without building and dumping a dict
        return self._head + ('{"content":' + _encode_str(text) + _DELTA_TAIL).encode()

    def reasoning(self, text: str) -> bytes:
        return self._head + ('{"reasoning_content":' + _encode_str(text) + _DELTA_TAIL).encode()

    def tool_call(self, call: OutToolCall, legacy: bool = False) -> bytes:
        """Two chunks for one complete call: id, type and name once (the SDKs concatenate repeats), then
        the arguments. `legacy`: the `functions` API's `function_call` delta (one call per answer)."""
        if legacy:
            head: dict[str, Any] = {"function_call": {"name": call.name, "arguments": ""}}
            rest: dict[str, Any] = {"function_call": {"arguments": call.arguments}}
        else:
            head = {"tool_calls": [{"index": call.index, "id": call.id, "type": "function",
                                    "function": {"name": call.name, "arguments": ""}}]}
            rest = {"tool_calls": [{"index": call.index, "function": {"arguments": call.arguments}}]}
        return self.chunk(head) + self.chunk(rest)

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        """OpenAI's usage-only chunk (`choices: []`), sent before [DONE] when include_usage is on."""
        return ("data: " + _dumps({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [], "usage": usage,
        }) + "\n\n").encode()


def completion_body(
    id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    usage: Mapping[str, Any] | None,
    reasoning_content: str | None = None,
    tool_calls: Sequence[OutToolCall] = (),
    legacy: bool = False,
) -> dict[str, Any]:
    """A non-streaming `chat.completion` (`reasoning_content` only when thinking produced any).

    With calls, `content` is the text before them or null; `legacy` answers the `functions` API with
    `function_call` (its one call) instead of `tool_calls`.
    """
    if tool_calls and not content:
        content = None
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    message["refusal"] = None
    if tool_calls and legacy:
        message["function_call"] = {"name": tool_calls[0].name, "arguments": tool_calls[0].arguments}
        finish_reason = "function_call"
    elif tool_calls:
        message["tool_calls"] = [tool_call_body(call) for call in tool_calls]
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def tool_call_body(call: OutToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def finish_reason_for(finish: OutFinish, legacy: bool) -> str:
    """The wire finish reason (`function_call` for a legacy `functions` request that got its call)."""
    if legacy and finish.tool_calls:
        return "function_call"
    return finish.finish_reason


_WORDS = {"deepseek": "DeepSeek", "v3": "V3", "v4": "V4", "r1": "R1"}


def display_name(name: str) -> str:
    """"deepseek-reasoner-search" → "DeepSeek Reasoner Search"."""
    return " ".join(_WORDS.get(word.lower(), word.capitalize()) for word in name.replace("_", "-").split("-") if word)


_CREATED_AT = datetime.fromtimestamp(MODELS_CREATED, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_body(spec: ModelSpec, name: str | None = None, limits: ModelLimits | None = None) -> dict[str, Any]:
    """One model in the OpenAI + Anthropic union shape (CONFORMANCE.md §0 rule 10), with its limits
    (chat/model_limits.py) under Anthropic's names (`max_input_tokens`, `max_tokens`) and the names
    OpenAI-compatible clients read (`context_window`, `context_length`, `max_output_tokens`)."""
    model_id = name or spec.id
    limit = (limits or _DEFAULT_LIMITS).of(spec, model_id)
    return {
        "id": model_id,
        "object": "model",
        "type": "model",
        "created": MODELS_CREATED,
        "created_at": _CREATED_AT,
        "owned_by": "deepseek",
        "display_name": display_name(model_id),
        "context_window": limit.context_window,
        "context_length": limit.context_window,
        "max_output_tokens": limit.max_output_tokens,
        "max_input_tokens": limit.context_window,
        "max_tokens": limit.max_output_tokens,
    }


_DEFAULT_LIMITS = ModelLimits()


def model_list_body(specs: Sequence[ModelSpec] | ModelRegistry, limits: ModelLimits | None = None) -> dict[str, Any]:
    """`GET /v1/models`: each id followed by its aliases, parseable by the openai and anthropic SDKs."""
    if isinstance(specs, ModelRegistry):
        names = specs.names()
    else:
        names = [(n, s) for s in specs for n in (s.id, *s.aliases)]
    data = [model_body(spec, name, limits) for name, spec in names]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


class ChatCodec:
    """The chat completions wire format of one request (api/codec.py's `StreamCodec`).

    Usage goes on exactly ONE chunk: clients that add up usage over the chunks (LangChain's stream_usage)
    would count it twice otherwise. `usage_chunk` "both": OpenAI's usage-only chunk when the client asked
    for it (`include_usage`), else DeepSeek's placement on the finish chunk; "openai": only the former;
    "deepseek": only the latter. `legacy`: the `functions` API (one call per answer, `function_call`)."""

    keepalive: Final = KEEPALIVE
    media_type: Final = SSE_TYPE
    __slots__ = ("encoder", "legacy", "request_id", "text", "reasoning", "thinking", "usage_chunk",
                 "usage_on_finish")

    def __init__(self, request_id: str, model: str, *, thinking: bool, legacy: bool, include_usage: bool,
                 usage_chunk: str) -> None:
        self.encoder = ChunkEncoder(new_completion_id(), now(), model)
        self.request_id, self.thinking, self.legacy = request_id, thinking, legacy
        self.usage_chunk = include_usage and usage_chunk in ("both", "openai")
        self.usage_on_finish = usage_chunk == "deepseek" or (usage_chunk == "both" and not self.usage_chunk)
        self.text = self.encoder.content  # the hot path: no extra call per token
        self.reasoning = self.encoder.reasoning

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", self.request_id.encode())]

    def start(self) -> bytes:
        return self.encoder.role(self.thinking)

    def tool_call(self, call: OutToolCall) -> bytes:
        if self.legacy and call.index > 0:  # the functions API had one call per answer
            return b""
        return self.encoder.tool_call(call, self.legacy)

    async def finish(self, finish: OutFinish) -> bytes:
        usage = turn_usage_body(finish.usage) if finish.usage is not None else None
        data = self.encoder.chunk({}, finish_reason_for(finish, self.legacy),
                                  usage if self.usage_on_finish else None, citation_fields(finish))
        if self.usage_chunk and usage is not None:
            data += self.encoder.usage(usage)
        return data + DONE

    def failed(self, error: ApiError, started: bool) -> bytes:
        return error.sse_bytes()  # no [DONE] after it

    async def body(self, finish: OutFinish, calls: Sequence[OutToolCall]) -> dict[str, Any]:
        reasoning = finish.reasoning_text
        usage = turn_usage_body(finish.usage) if finish.usage is not None else None
        body = completion_body(new_completion_id(), now(), self.encoder.model, finish.content_text,
                               finish.finish_reason, usage, reasoning if (self.thinking or reasoning) else None,
                               finish.tool_calls, self.legacy)
        body.update(citation_fields(finish))
        return body
