"""Ollama API wire format, response side: NDJSON chunks, the final `done` object, and the model listings.

`/api/chat` chunks carry `message` (`content`, `thinking`, `tool_calls` with object arguments);
`/api/generate` chunks carry `response` (and `thinking`). The last object has `done: true`,
`done_reason`, the token counts (`prompt_eval_count`, `eval_count`) and the durations in
nanoseconds, as Ollama reports them. A keep-alive is an empty chunk: Ollama clients parse every line
as JSON, so a blank line would break them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ...chat.assemble import OutFinish
from ...chat.tools.events import OutToolCall
from ...chat.turn import ModelSpec
from ..errors import ApiError
from .errors import error_line

CONTEXT_LENGTH: Final = 131_072  # DeepSeek's context (the web chat attaches longer histories as a file)
API_VERSION: Final = "0.12.6"  # the Ollama API version this surface speaks (clients check a minimum)
_MODIFIED = "2026-01-01T00:00:00Z"
Kind = Literal["chat", "generate"]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_encode_str = json.encoder.encode_basestring


def created_at() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def done_reason(finish: OutFinish) -> str:
    return {"length": "length", "content_filter": "content_filter"}.get(finish.finish_reason, "stop")


def tool_calls(calls: tuple[OutToolCall, ...] | list[OutToolCall]) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except ValueError:
            arguments = {"input": call.arguments}
        out.append({"id": call.id, "function": {"index": call.index, "name": call.name,
                                                "arguments": arguments if isinstance(arguments, dict)
                                                else {"input": arguments}}})
    return out


class Timing:
    """The durations Ollama reports, in nanoseconds, from the request's arrival."""

    __slots__ = ("first", "started")

    def __init__(self) -> None:
        self.started = time.perf_counter_ns()
        self.first: int | None = None

    def mark(self) -> None:
        if self.first is None:
            self.first = time.perf_counter_ns()

    def fields(self, finish: OutFinish) -> dict[str, Any]:
        now = time.perf_counter_ns()
        first = self.first or now
        usage = finish.usage
        return {"done_reason": done_reason(finish), "total_duration": now - self.started, "load_duration": 0,
                "prompt_eval_count": usage.prompt_tokens if usage else 0,
                "prompt_eval_duration": first - self.started,
                "eval_count": usage.completion_tokens if usage else 0, "eval_duration": now - first}


def final_body(kind: Kind, model: str, finish: OutFinish | None, timing: Timing, *, forced_call: bool = False,
               load: bool = False) -> dict[str, Any]:
    """The whole answer of `stream: false` (or the `done` line's fields, with `finish` only counted)."""
    body: dict[str, Any] = {"model": model, "created_at": created_at()}
    if finish is None:  # an empty request: Ollama's "load the model"
        body.update({"message": {"role": "assistant", "content": ""}} if kind == "chat" else {"response": ""})
        body.update({"done": True, "done_reason": "load" if load else "stop"})
        return body
    text = "" if forced_call and finish.tool_calls else finish.content_text
    if kind == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if finish.reasoning_text:
            message["thinking"] = finish.reasoning_text
        if finish.tool_calls:
            message["tool_calls"] = tool_calls(finish.tool_calls)
        body["message"] = message
    else:
        body["response"] = text
        if finish.reasoning_text:
            body["thinking"] = finish.reasoning_text
    body["done"] = True
    body.update(timing.fields(finish))
    return body


class OllamaCodec:
    """One request's wire format (api/codec.py): an NDJSON stream, or one JSON object. Text lines are
    built from pre-encoded pieces. Under a forced tool call the text is held until the call comes (then
    dropped), or sent before the last line if none does."""

    __slots__ = ("_called", "_held", "_reason_head", "_tail", "_text_head", "forced", "kind", "model", "stamp",
                 "timing")
    media_type: Final = b"application/x-ndjson"

    def __init__(self, kind: Kind, model: str, timing: Timing, *, forced_call: bool = False) -> None:
        self.kind, self.model, self.timing, self.forced = kind, model, timing, forced_call
        self._held: list[str] | None = [] if forced_call else None
        self._called = False
        self.stamp = created_at()  # once per stream: the chunks' `created_at`
        head = '{"model":' + _encode_str(model) + ',"created_at":"' + self.stamp + '",'
        if kind == "chat":
            self._text_head = (head + '"message":{"role":"assistant","content":').encode()
            self._reason_head = (head + '"message":{"role":"assistant","content":"","thinking":').encode()
            self._tail = b'},"done":false}\n'
        else:
            self._text_head = (head + '"response":').encode()
            self._reason_head = (head + '"response":"","thinking":').encode()
            self._tail = b',"done":false}\n'

    @property
    def keepalive(self) -> bytes:
        return self._text_head + b'""' + self._tail  # an empty line of text: every client reads it

    def headers(self) -> list[tuple[bytes, bytes]]:
        return []  # the request id goes out as x-request-id on every answer (api/dialect.py)

    def start(self) -> bytes:
        return b""

    def text(self, text: str) -> bytes:
        self.timing.mark()
        if self._held is not None and not self._called:
            self._held.append(text)
            return b""
        return self._text_head + _encode_str(text).encode() + self._tail

    def reasoning(self, text: str) -> bytes:
        self.timing.mark()
        return self._reason_head + _encode_str(text).encode() + self._tail

    def tool_call(self, call: OutToolCall) -> bytes:
        self.timing.mark()
        self._called = True
        if self._held:
            self._held.clear()
        body = {"model": self.model, "created_at": self.stamp,
                "message": {"role": "assistant", "content": "", "tool_calls": tool_calls([call])}, "done": False}
        return _dumps(body).encode() + b"\n"

    async def finish(self, finish: OutFinish) -> bytes:
        held = b""
        if self._held and not (finish.tool_calls or self._called):
            self._called = True  # the held text goes out now, as text
            held = self.text("".join(self._held))
        body: dict[str, Any] = {"model": self.model, "created_at": created_at()}
        body.update({"message": {"role": "assistant", "content": ""}} if self.kind == "chat" else {"response": ""})
        body["done"] = True
        body.update(self.timing.fields(finish))
        return held + _dumps(body).encode() + b"\n"

    def failed(self, error: ApiError, started: bool) -> bytes:
        return error_line(error) + b"\n"

    async def body(self, finish: OutFinish, calls: Sequence[OutToolCall]) -> dict[str, Any]:
        return final_body(self.kind, self.model, finish, self.timing, forced_call=self.forced)


def details(spec: ModelSpec) -> dict[str, Any]:
    return {"parent_model": "", "format": "deepseek-web", "family": "deepseek", "families": ["deepseek"],
            "parameter_size": "", "quantization_level": ""}


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def tag_body(name: str, spec: ModelSpec) -> dict[str, Any]:
    """One entry of `/api/tags`: `name:latest`, with Ollama's fields (no local weights: size 0)."""
    tagged = name if ":" in name else f"{name}:latest"
    return {"name": tagged, "model": tagged, "modified_at": _MODIFIED, "size": 0, "digest": _digest(tagged),
            "details": details(spec)}


def ps_body(name: str, spec: ModelSpec) -> dict[str, Any]:
    """One entry of `/api/ps`: every model is always ready (nothing to load)."""
    return {**tag_body(name, spec), "expires_at": "2099-01-01T00:00:00Z", "size_vram": 0,
            "context_length": CONTEXT_LENGTH}


def capabilities(spec: ModelSpec) -> list[str]:
    return ["completion", "tools", "thinking", "vision"]  # thinking is a switch (`think`); images are attached


def show_body(name: str, spec: ModelSpec) -> dict[str, Any]:
    """`/api/show`: details, `model_info` with the context length, and `capabilities`."""
    return {"license": "", "modelfile": f"# {name}: DeepSeek {spec.id} served by DeepSeek2API\n", "parameters": "",
            "template": "", "details": details(spec),
            "model_info": {"general.architecture": "deepseek", "general.basename": spec.id,
                           "deepseek.context_length": CONTEXT_LENGTH},
            "capabilities": capabilities(spec), "modified_at": _MODIFIED}
