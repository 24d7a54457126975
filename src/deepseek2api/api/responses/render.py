"""OpenAI Responses wire format, response side: Response objects, output items and stream events.

`OutputBuilder` is the one place output items are made: fed the runner's events it keeps the items
(for the final Response) and, when streaming, returns the SSE bytes of AGENTS.md §3: per item
`output_item.added` → its deltas → its `.done` events → `output_item.done`, item ids stable from
added to done, one rising `sequence_number` over the whole stream. A non-streamed response is the
same builder fed the finished text, so both carry the same items.

Every event also has an `event:` line, as OpenAI sends them. The text delta (one per upstream
token) is encoded from a prefix made once per item; only the text is JSON-encoded per piece.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ...chat.assemble import OutFinish
from ...chat.tools.events import OutToolCall
from ...chat.tools.spec import ToolKind, ToolSpec
from ...chat.usage import TurnUsage
from ...chat.web_search import WebSearchTool, without_links
from ..errors import ApiError
from ..sse import KEEPALIVE, SSE_TYPE

_encode_str = json.encoder.encode_basestring


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage_body(usage: TurnUsage | None) -> dict[str, Any] | None:
    """Responses `usage` (no prompt cache on the web chat: cached tokens are always 0)."""
    if usage is None:
        return None
    output = usage.completion_tokens
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + output,
    }


_LINK = re.compile(r"\[(\d{1,6})\]\(([^()\s]+)\)")


def url_citations(text: str, finish: OutFinish) -> list[dict[str, Any]]:
    """`url_citation` annotations for the `[N](url)` links the assembler rendered from search results."""
    if not finish.citations:
        return []
    titles = {r.url: r.title or r.url for r in finish.citations if r.url}
    annotations: list[dict[str, Any]] = []
    for match in _LINK.finditer(text):
        url = match.group(2).replace("%20", " ").replace("%28", "(").replace("%29", ")")
        if url in titles or match.group(2) in titles:
            annotations.append({"type": "url_citation", "url": url, "title": titles.get(url) or url,
                                "start_index": match.start(), "end_index": match.end()})
    return annotations


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What every Response object of one request repeats (created, in progress, completed …)."""

    id: str
    created_at: int
    model: str
    echo: Mapping[str, Any]
    parallel_tool_calls: bool
    previous_response_id: str | None
    store: bool
    effort: str | None
    summary: str | None
    max_output_tokens: int | None

    def body(self, status: str, output: Sequence[Mapping[str, Any]], usage: dict[str, Any] | None = None, *,
             error: dict[str, Any] | None = None, incomplete: str | None = None) -> dict[str, Any]:
        echo = self.echo
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": echo.get("instructions"),
            "max_output_tokens": self.max_output_tokens,
            "max_tool_calls": None,
            "model": self.model,
            "output": list(output),
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id,
            "prompt_cache_key": echo.get("prompt_cache_key"),
            "reasoning": {"effort": self.effort, "summary": self.summary},
            "service_tier": echo.get("service_tier", "default"),
            "store": self.store,
            "temperature": echo.get("temperature", 1.0),
            "text": echo.get("text") or {"format": {"type": "text"}},
            "tool_choice": echo.get("tool_choice", "auto"),
            "tools": echo.get("tools") or [],
            "top_p": echo.get("top_p", 1.0),
            "truncation": echo.get("truncation", "disabled"),
            "usage": usage,
            "user": echo.get("user"),
            "metadata": echo.get("metadata") or {},
        }
        for key in ("user", "prompt_cache_key", "usage"):  # absent rather than null (the schema has no null)
            if body[key] is None:
                del body[key]
        return body


_FAILED_CODES = {"context_length_exceeded": "context_length_exceeded", "content_filter": "invalid_prompt"}


def failure_error(error: ApiError) -> dict[str, Any]:
    """`response.error` for a turn that failed after the stream started (codes Codex understands)."""
    code = _FAILED_CODES.get(error.code or "")
    if code is None:
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
    return {"code": code, "message": error.message}


@dataclass(slots=True)
class _OpenItem:
    kind: str  # "message" | "reasoning" | "web_search_call"
    id: str
    index: int
    prefix: bytes  # the delta event up to the delta text
    texts: list[str] = field(default_factory=list)


class OutputBuilder:
    """Output items from the runner's events; SSE bytes for each when `streaming` (see the module doc)."""

    def __init__(self, meta: ResponseMeta, tools: Sequence[ToolSpec], *, streaming: bool) -> None:
        self.meta = meta
        self.streaming = streaming
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self._open: _OpenItem | None = None
        self._tools = {tool.name: tool for tool in tools}
        self._call_ids: set[str] = set()

    # ---- events ---------------------------------------------------------------------------

    def event(self, kind: str, payload: dict[str, Any]) -> bytes:
        """One SSE event; `sequence_number` is added here (so it rises in the order events are made)."""
        payload["sequence_number"] = self.sequence
        self.sequence += 1
        return ("event: " + kind + "\ndata: " + _dumps({"type": kind, **payload}) + "\n\n").encode()

    def start(self) -> list[bytes]:
        """`response.created` then `response.in_progress`."""
        body = self.meta.body("in_progress", [])
        return [self.event("response.created", {"response": body}),
                self.event("response.in_progress", {"response": body})]

    def _delta(self, item: _OpenItem, text: str) -> bytes:
        item.texts.append(text)
        if not self.streaming:
            return b""
        seq = self.sequence
        self.sequence += 1
        return item.prefix + (_encode_str(text) + ',"sequence_number":' + str(seq) + "}\n\n").encode()

    def web_search(self, query: str) -> list[bytes]:
        """A `web_search_call` item (action `search` with the query), open until the next item: added,
        `response.web_search_call.in_progress`, `.searching`; `.completed` and done when it closes."""
        out = self._close()
        index = len(self.output)
        item_id = _item_id("ws")
        item = {"type": "web_search_call", "id": item_id, "status": "in_progress",
                "action": {"type": "search", "query": query}}
        self.output.append(item)
        self._open = _OpenItem("web_search_call", item_id, index, b"")
        if self.streaming:
            ids = {"item_id": item_id, "output_index": index}
            out.append(self.event("response.output_item.added", {"output_index": index, "item": dict(item)}))
            out.append(self.event("response.web_search_call.in_progress", dict(ids)))
            out.append(self.event("response.web_search_call.searching", dict(ids)))
        return out

    def reasoning(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        item = self._open
        if item is None or item.kind != "reasoning":
            out += self._close()
            item = self._open_reasoning(out)
        out.append(self._delta(item, text))
        return out

    def content(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        item = self._open
        if item is None or item.kind != "message":
            out += self._close()
            item = self._open_message(out)
        out.append(self._delta(item, text))
        return out

    def tool_call(self, call_id: str, name: str, arguments: str) -> list[bytes]:
        """One complete call as a `function_call` (or `custom_tool_call`) item, namespace restored."""
        if call_id in self._call_ids:
            return []
        self._call_ids.add(call_id)
        out = self._close()
        spec = self._tools.get(name)
        index = len(self.output)
        item: dict[str, Any]
        if spec is not None and spec.kind is ToolKind.CUSTOM:
            item = {"type": "custom_tool_call", "id": _item_id("ctc"), "call_id": call_id, "name": name, "input": ""}
        else:
            item = {"type": "function_call", "id": _item_id("fc"), "call_id": call_id, "name": name,
                    "arguments": "", "status": "in_progress"}
        if spec is not None and spec.namespace:
            item["namespace"] = spec.namespace
            item["name"] = spec.original_name or name
        self.output.append(item)
        if self.streaming:
            out.append(self.event("response.output_item.added", {"output_index": index, "item": dict(item)}))
            ids = {"item_id": item["id"], "output_index": index}
            if item["type"] == "custom_tool_call":
                out.append(self.event("response.custom_tool_call_input.delta", {**ids, "delta": arguments}))
                out.append(self.event("response.custom_tool_call_input.done", {**ids, "input": arguments}))
            else:
                out.append(self.event("response.function_call_arguments.delta", {**ids, "delta": arguments}))
                out.append(self.event("response.function_call_arguments.done",
                                      {**ids, "name": item["name"], "arguments": arguments}))
        if item["type"] == "custom_tool_call":
            item["input"] = arguments
        else:
            item["arguments"] = arguments
            item["status"] = "completed"
        if self.streaming:
            out.append(self.event("response.output_item.done", {"output_index": index, "item": item}))
        return out

    def finish(self, finish: OutFinish, calls: Iterable[Any] = ()) -> tuple[list[bytes], dict[str, Any]]:
        """Close the open item, add calls only the finish carries, and the final Response."""
        out = self._close(finish)
        for call in calls:
            out += self.tool_call(call.id, call.name, call.arguments)
        if not any(i["type"] in ("message", "function_call", "custom_tool_call") for i in self.output):
            self._open_message(out)  # an empty answer is still one (empty) message
            out += self._close(finish)
        incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish.finish_reason)
        if incomplete and any(i["type"] in ("function_call", "custom_tool_call") for i in self.output):
            incomplete = None
        status = "incomplete" if incomplete else "completed"
        body = self.meta.body(status, self.output, usage_body(finish.usage), incomplete=incomplete)
        if self.streaming:
            out.append(self.event(f"response.{status}", {"response": body}))
        return out, body

    def failed(self, error: ApiError) -> bytes:
        """The last event of a stream whose turn failed after the first byte."""
        streaming, self.streaming = self.streaming, False  # the open item ends with the response, no events
        item = self._open
        self._close()
        self.streaming = streaming
        if item is not None and item.kind == "message":
            self.output[item.index]["status"] = "incomplete"
        elif item is not None and item.kind == "web_search_call":
            self.output[item.index]["status"] = "failed"
        body = self.meta.body("failed", self.output, error=failure_error(error))
        return self.event("response.failed", {"response": body})

    # ---- items ----------------------------------------------------------------------------

    def _open_reasoning(self, out: list[bytes]) -> _OpenItem:
        index = len(self.output)
        item_id = _item_id("rs")
        self.output.append({"type": "reasoning", "id": item_id, "summary": []})
        prefix = ('event: response.reasoning_summary_text.delta\ndata: {"type":"response.reasoning_summary_text.delta",'
                  '"item_id":"' + item_id + '","output_index":' + str(index) + ',"summary_index":0,"delta":').encode()
        self._open = _OpenItem("reasoning", item_id, index, prefix)
        if self.streaming:
            out.append(self.event("response.output_item.added", {"output_index": index, "item": {
                "type": "reasoning", "id": item_id, "summary": []}}))
            out.append(self.event("response.reasoning_summary_part.added", {
                "item_id": item_id, "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}))
        return self._open

    def _open_message(self, out: list[bytes]) -> _OpenItem:
        index = len(self.output)
        item_id = _item_id("msg")
        self.output.append({"type": "message", "id": item_id, "status": "in_progress", "role": "assistant",
                            "content": []})
        prefix = ('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"'
                  + item_id + '","output_index":' + str(index) + ',"content_index":0,"logprobs":[],"delta":').encode()
        self._open = _OpenItem("message", item_id, index, prefix)
        if self.streaming:
            out.append(self.event("response.output_item.added", {"output_index": index, "item": {
                "type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}}))
            out.append(self.event("response.content_part.added", {
                "item_id": item_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}))
        return self._open

    def _close(self, finish: OutFinish | None = None) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        text = "".join(item.texts)
        ids: dict[str, Any] = {"item_id": item.id, "output_index": item.index}
        out: list[bytes] = []
        part: dict[str, Any]
        done: dict[str, Any]
        if item.kind == "web_search_call":
            done = {**self.output[item.index], "status": "completed"}
            if self.streaming:
                out.append(self.event("response.web_search_call.completed", dict(ids)))
        elif item.kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            done = {"type": "reasoning", "id": item.id, "summary": [part]}
            if self.streaming:
                out.append(self.event("response.reasoning_summary_text.done",
                                      {**ids, "summary_index": 0, "text": text}))
                out.append(self.event("response.reasoning_summary_part.done", {**ids, "summary_index": 0,
                                                                               "part": part}))
        else:
            annotations = url_citations(text, finish) if finish is not None else []
            part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
            done = {"type": "message", "id": item.id, "status": "completed", "role": "assistant", "content": [part]}
            if self.streaming:
                out.append(self.event("response.output_text.done", {**ids, "content_index": 0, "text": text,
                                                                    "logprobs": []}))
                out.append(self.event("response.content_part.done", {**ids, "content_index": 0, "part": part}))
        self.output[item.index] = done
        if self.streaming:
            out.append(self.event("response.output_item.done", {"output_index": item.index, "item": done}))
        return out




Save = Callable[[dict[str, Any]], Awaitable[None]]


class ResponsesCodec:
    """The Responses wire format of one request (api/codec.py's `StreamCodec`). `save` stores the finished
    Response (serving.py): awaited before the stream's last events, so a follow-up that names it at
    once finds it. With the hosted web search tool (`search`, asked `query`) a `web_search_call` item
    opens the output; with its domain filters the answer's links are checked before it is sent, so the
    text waits for the end."""

    keepalive: Final = KEEPALIVE
    media_type: Final = SSE_TYPE

    def __init__(self, request_id: str, meta: ResponseMeta, tools: Sequence[ToolSpec], save: Save, *,
                 streaming: bool, search: WebSearchTool | None = None, query: str = "") -> None:
        self.request_id = request_id
        self.builder = OutputBuilder(meta, tools, streaming=streaming)
        self.save = save
        self.search, self.query = search, query
        self.held: list[str] | None = [] if search is not None and search.filters else None

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", self.request_id.encode())]

    def start(self) -> bytes:
        opening = b"".join(self.builder.start())
        if self.search is not None:
            opening += b"".join(self.builder.web_search(self.query))
        return opening

    def text(self, text: str) -> bytes:
        if self.held is not None:
            self.held.append(text)
            return b""
        return b"".join(self.builder.content(text))

    def reasoning(self, text: str) -> bytes:
        return b"".join(self.builder.reasoning(text))

    def tool_call(self, call: OutToolCall) -> bytes:
        return b"".join(self.builder.tool_call(call.id, call.name, call.arguments))

    async def finish(self, finish: OutFinish) -> bytes:
        out = b""
        if self.search is not None:
            text, finish = filtered(self.search, "".join(self.held or ()), finish)
            if self.held:
                out = b"".join(self.builder.content(text))
        events, body = self.builder.finish(finish, finish.tool_calls)
        await self.save(body)
        return out + b"".join(events)

    def failed(self, error: ApiError, started: bool) -> bytes:
        """After keep-alives only, the stream still opens (`response.created`) before it fails."""
        opening = b"" if started else b"".join(self.builder.start())
        return opening + self.builder.failed(error)

    async def body(self, finish: OutFinish, calls: Sequence[OutToolCall]) -> dict[str, Any]:
        builder = self.builder
        text = finish.content_text
        if self.search is not None:
            builder.web_search(self.query)
            text, finish = filtered(self.search, text, finish)
        if finish.reasoning_text:
            builder.reasoning(finish.reasoning_text)
        if text:
            builder.content(text)
        for call in calls:
            builder.tool_call(call.id, call.name, call.arguments)
        _, body = builder.finish(finish, finish.tool_calls)
        await self.save(body)
        return body


def filtered(search: WebSearchTool, text: str, finish: OutFinish) -> tuple[str, OutFinish]:
    """The answer and its finish with only the search results the tool's domain filters let through."""
    results = search.results(finish.citations)
    if len(results) == len(finish.citations):
        return text, finish
    return without_links(text, [r.url for r in results]), dataclasses.replace(finish, citations=results)


__all__ = ["OutputBuilder", "ResponseMeta", "ResponsesCodec", "failure_error", "new_response_id", "url_citations",
           "usage_body"]
