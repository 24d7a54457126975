"""Gemini API wire format, response side: `GenerateContentResponse` bodies and the streamed chunks.

A stream is the same responses one after another: `?alt=sse` as SSE `data:` lines (what the SDKs and
the Gemini CLI ask for), otherwise one JSON array written element by element, as Google's servers do.
Every chunk carries `candidates[0].content.parts` (text, `thought: true` text, `functionCall`),
`modelVersion` and `responseId`; the last one adds `finishReason`, `usageMetadata` and, for a search
turn, `groundingMetadata` built from DeepSeek's citations. A keep-alive is a chunk with an empty text
part: the SDKs parse every line as JSON, so an SSE comment would break them.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Sequence
from typing import Any, Final

from ...chat.assemble import OutFinish
from ...chat.model_limits import ModelLimits
from ...chat.tools.events import OutToolCall
from ...chat.turn import ModelSpec
from ...chat.usage import TurnUsage
from ...deepseek.events import SearchResult
from ..errors import ApiError
from ..sse import SSE_TYPE
from .errors import gemini_body
from .protocol import GeminiOptions

_ALPHABET = string.ascii_letters + string.digits
_RANDOM = random.SystemRandom()
_encode_str = json.encoder.encode_basestring  # == json.dumps(a str), in C

_DEFAULT_LIMITS: Final = ModelLimits()  # the `model_limits` defaults, when the router is given none
METHODS: Final = ("generateContent", "streamGenerateContent", "countTokens")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_response_id() -> str:
    return "".join(_RANDOM.choices(_ALPHABET, k=22))


def finish_reason(finish: OutFinish) -> str:
    if finish.finish_reason == "length":
        return "MAX_TOKENS"
    if finish.finish_reason == "content_filter":
        return "SAFETY"
    return "STOP"  # a stop sequence, a plain end, and a function call all end as STOP


def usage_metadata(usage: TurnUsage | None) -> dict[str, int]:
    if usage is None:
        return {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}
    body = {"promptTokenCount": usage.prompt_tokens, "candidatesTokenCount": usage.content_tokens,
            "totalTokenCount": usage.prompt_tokens + usage.completion_tokens}
    if usage.reasoning_tokens:
        body["thoughtsTokenCount"] = usage.reasoning_tokens
    return body


def function_call(call: OutToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        args = {"input": call.arguments}
    return {"functionCall": {"id": call.id, "name": call.name, "args": args if isinstance(args, dict)
                             else {"input": args}}}


def grounding(citations: tuple[SearchResult, ...]) -> dict[str, Any]:
    """`groundingMetadata` from the search results the answer cites (in cite order)."""
    chunks = [{"web": {"uri": r.url, "title": r.title or r.site_name or r.url}} for r in citations]
    return {"groundingChunks": chunks, "webSearchQueries": []}


def _candidate(parts: list[dict[str, Any]], finish: OutFinish | None, options: GeminiOptions) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish_reason(finish)
        if options.search or finish.citations:
            candidate["groundingMetadata"] = grounding(finish.citations)
    return candidate


def response_body(finish: OutFinish, model: str, response_id: str, options: GeminiOptions,
                  forced_call: bool) -> dict[str, Any]:
    """A whole `GenerateContentResponse`: parts in the order a stream sends them."""
    parts: list[dict[str, Any]] = []
    if options.include_thoughts and finish.reasoning_text:
        parts.append({"text": finish.reasoning_text, "thought": True})
    if finish.content_text and not (forced_call and finish.tool_calls):
        parts.append({"text": finish.content_text})
    parts.extend(function_call(call) for call in finish.tool_calls)
    if not parts:
        parts.append({"text": ""})
    return {"candidates": [_candidate(parts, finish, options)], "usageMetadata": usage_metadata(finish.usage),
            "modelVersion": model, "responseId": response_id}


class GeminiCodec:
    """One request's wire format (api/codec.py): the streamed chunks, or the whole body. The text chunk
    is built from pre-encoded pieces: one string encode per token. Under a forced function call the
    text is held until the call comes (then dropped), or sent before the last chunk if none does."""

    __slots__ = ("_array", "_called", "_head", "_held", "_sep", "_tail", "forced", "media_type", "model",
                 "options", "response_id")

    def __init__(self, model: str, response_id: str, options: GeminiOptions, *, sse: bool,
                 forced_call: bool = False) -> None:
        self.model, self.response_id, self.options, self.forced = model, response_id, options, forced_call
        self._array = not sse
        self.media_type = b"application/json; charset=utf-8" if self._array else SSE_TYPE
        self._sep = b""  # the JSON array's separator: none before its first element
        self._held: list[str] | None = [] if forced_call else None
        self._called = False
        self._head = b'{"candidates":[{"content":{"parts":[{"text":'  # text and thought parts alike
        self._tail = ('}],"role":"model"},"index":0}],"modelVersion":' + _encode_str(model)
                      + ',"responseId":' + _encode_str(response_id) + "}").encode()

    def _frame(self, data: bytes) -> bytes:
        if self._array:
            out, self._sep = self._sep + data, b",\r\n"
            return out
        return b"data: " + data + b"\n\n"

    def _chunk(self, body: dict[str, Any]) -> bytes:
        return self._frame(_dumps(body).encode())

    @property
    def keepalive(self) -> bytes:
        if self._array:
            return b"\n"  # whitespace between elements (or before the array): still one JSON array
        return b"data: " + self._head + b'""' + self._tail + b"\n\n"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return []  # the request id goes out as x-request-id on every answer (api/dialect.py)

    def start(self) -> bytes:
        return b"[" if self._array else b""

    def text(self, text: str) -> bytes:
        if self._held is not None and not self._called:
            self._held.append(text)
            return b""
        return self._frame(self._head + _encode_str(text).encode() + self._tail)

    def reasoning(self, text: str) -> bytes:
        if not self.options.include_thoughts:
            return b""  # thinking that was not asked to be shown is only counted (thoughtsTokenCount)
        return self._frame(self._head + _encode_str(text).encode() + b',"thought":true' + self._tail)

    def tool_call(self, call: OutToolCall) -> bytes:
        self._called = True
        if self._held:
            self._held.clear()
        return self._chunk({"candidates": [_candidate([function_call(call)], None, self.options)],
                            "modelVersion": self.model, "responseId": self.response_id})

    async def finish(self, finish: OutFinish) -> bytes:
        held = b""
        if self._held and not (finish.tool_calls or self._called):
            self._called = True  # the held text goes out now, as text
            held = self.text("".join(self._held))
        body = {"candidates": [_candidate([{"text": ""}], finish, self.options)],
                "usageMetadata": usage_metadata(finish.usage), "modelVersion": self.model,
                "responseId": self.response_id}
        return held + self._chunk(body) + (b"]" if self._array else b"")

    def failed(self, error: ApiError, started: bool) -> bytes:
        if not self._array:
            return self._frame(_dumps(gemini_body(error)).encode())
        opening = b"" if started else b"["  # only keep-alives (whitespace) went out before
        return opening + self._frame(_dumps(gemini_body(error)).encode()) + b"]"

    async def body(self, finish: OutFinish, calls: Sequence[OutToolCall]) -> dict[str, Any]:
        return response_body(finish, self.model, self.response_id, self.options, self.forced)


def model_body(name: str, spec: ModelSpec, limits: ModelLimits | None = None) -> dict[str, Any]:
    """One `Model` of `GET models`, with the limits `/v1/models` reports (the `model_limits` settings)."""
    limit = (limits or _DEFAULT_LIMITS).of(spec, name)
    return {"name": f"models/{name}", "baseModelId": name, "version": "001", "displayName": name,
            "description": f"DeepSeek {spec.id} through this gateway"
                           + (" (thinking)" if spec.thinking else "") + (" (web search)" if spec.search else ""),
            "inputTokenLimit": limit.context_window, "outputTokenLimit": limit.max_output_tokens,
            "supportedGenerationMethods": list(METHODS), "thinking": spec.thinking,
            "temperature": 1.0, "topP": 0.95, "maxTemperature": 2.0}


def count_body(tokens: int) -> dict[str, Any]:
    return {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
