"""Anthropic Messages wire format, response side: the message body and the stream's events.

Stream order (AGENTS.md §2): `message_start` → per content block `content_block_start`, deltas,
`content_block_stop` (indices contiguous from 0: thinking, text, tool_use in output order) →
`message_delta` (stop reason, usage) → `message_stop`. Every event carries an `event:` line: the
Python SDK silently skips events without one. A thinking block ends with a `signature_delta` whose
signature the gateway can check when the client sends the block back (signature.py).
"""

from __future__ import annotations

import base64
import json
import random
import string
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from ...chat.assemble import OutFinish
from ...chat.usage import TurnUsage
from ...chat.web_search import WebSearchTool, cited_links
from ...deepseek.events import SearchResult
from ..errors import ApiError
from ..sse import SSE_TYPE
from .dialect import anthropic_sse_bytes
from .signature import ThinkingSigner

_ALPHABET = string.ascii_letters + string.digits
_RANDOM = random.SystemRandom()
_encode_str = json.encoder.encode_basestring  # == json.dumps(a str), in C

PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
MESSAGE_STOP: Final = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class ToolCall(Protocol):
    """A finished call (chat/tools/events.py OutToolCall, or a record on OutFinish)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> str: ...


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _random(prefix: str) -> str:
    return prefix + "".join(_RANDOM.choices(_ALPHABET, k=24))


def new_message_id() -> str:
    return _random("msg_")


def tool_use_id(call_id: str) -> str:
    """The core's `call_…` ids in Anthropic's `toolu_…` shape (the id stays the same call's)."""
    if call_id.startswith("toolu_"):
        return call_id
    return "toolu_" + (call_id.removeprefix("call_"))


def tool_input(arguments: str) -> dict[str, Any]:
    """The call's arguments as the `input` object (function tools always carry a JSON object)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"input": arguments}  # a freeform tool's raw text
    return value if isinstance(value, dict) else {"input": value}


def stop_reason(finish_reason: str, stop_sequence: str | None, has_calls: bool) -> str:
    if has_calls:
        return "tool_use"
    if stop_sequence is not None:
        return "stop_sequence"
    if finish_reason == "length":
        return "max_tokens"
    if finish_reason == "content_filter":
        return "refusal"
    return "end_turn"


def usage_body(usage: TurnUsage | None, searches: int | None = None) -> dict[str, Any]:
    """`usage`; with `searches` (a turn offered the hosted search tool) also `server_tool_use`."""
    body: dict[str, Any] = {"input_tokens": usage.prompt_tokens if usage else 0,
                            "output_tokens": usage.completion_tokens if usage else 0,
                            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    if searches is not None:
        body["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    return body


# ---- web search (chat/web_search.py): server_tool_use → web_search_tool_result → cited text -----------

_CITED_CHARS = 150  # Anthropic's `cited_text` is at most 150 characters


def server_tool_id() -> str:
    return _random("srvtoolu_")


def _opaque(result: SearchResult) -> str:
    """`encrypted_content` / `encrypted_index`: opaque to the client, which only sends it back."""
    raw = _dumps({"url": result.url, "title": result.title, "snippet": result.snippet})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _page_age(result: SearchResult) -> str | None:
    if result.published_at is None:
        return None
    day = time.gmtime(result.published_at)
    return f"{time.strftime('%B', day)} {day.tm_mday}, {day.tm_year}"


def search_blocks(tool_id: str, query: str, results: Sequence[SearchResult]) -> list[dict[str, Any]]:
    """The `server_tool_use` of the search and its `web_search_tool_result` (the results shown)."""
    content = [{"type": "web_search_result", "url": r.url, "title": r.title or r.url,
                "page_age": _page_age(r), "encrypted_content": _opaque(r)} for r in results]
    return [{"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
            {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": content}]


def _citation(result: SearchResult) -> dict[str, Any]:
    cited = (result.snippet or result.title or result.url)[:_CITED_CHARS]
    return {"type": "web_search_result_location", "url": result.url, "title": result.title or None,
            "cited_text": cited, "encrypted_index": _opaque(result)}


def cited_text_blocks(text: str, results: Sequence[SearchResult]) -> list[dict[str, Any]]:
    """The answer as text blocks, each `[N](url)` link becoming a `web_search_result_location` citation
    on the text before it (as Anthropic splits a cited answer); links to results the client may not see
    are dropped."""
    by_url = {r.url: r for r in results}
    blocks: list[dict[str, Any]] = []
    pending, position = "", 0
    for start, end, url in cited_links(text):
        pending += text[position:start]
        position = end
        result = by_url.get(url)
        if result is None:
            continue
        if pending:
            blocks.append({"type": "text", "text": pending, "citations": [_citation(result)]})
            pending = ""
        elif blocks and blocks[-1].get("citations"):
            blocks[-1]["citations"].append(_citation(result))
    pending += text[position:]
    if pending:
        blocks.append({"type": "text", "text": pending})
    return blocks


def message_body(message_id: str, model: str, content: list[dict[str, Any]], reason: str | None,
                 stop_sequence: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": reason, "stop_sequence": stop_sequence, "usage": usage}


def content_blocks(signer: ThinkingSigner, reasoning: str, text: str,
                   calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """A non-streamed answer's blocks, in the order a stream sends them."""
    blocks: list[dict[str, Any]] = []
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": signer.sign(reasoning)})
    if text:
        blocks.append({"type": "text", "text": text})
    for call in calls:
        blocks.append({"type": "tool_use", "id": tool_use_id(call.id), "name": call.name,
                       "input": tool_input(call.arguments)})
    return blocks


def event(kind: str, data: dict[str, Any]) -> bytes:
    return ("event: " + kind + "\ndata: " + _dumps(data) + "\n\n").encode()


class StreamWriter:
    """One stream's events: opens and closes content blocks as the output changes kind.

    The per-token deltas are built from pre-encoded pieces (one string encode per token)."""

    __slots__ = ("_reason_head", "_text_head", "_thinking", "index", "message_id", "model", "open", "signer")

    def __init__(self, message_id: str, model: str, signer: ThinkingSigner) -> None:
        self.message_id, self.model, self.signer = message_id, model, signer
        self.index = -1  # the current block's index
        self.open: str | None = None  # "thinking" | "text" | None
        self._thinking: list[str] = []
        self._text_head = b""
        self._reason_head = b""

    def start(self) -> bytes:
        """`message_start`; usage is counted at the end and sent on `message_delta`."""
        message = message_body(self.message_id, self.model, [], None, None, usage_body(None))
        return event("message_start", {"type": "message_start", "message": message})

    def _begin(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.open = kind if kind in ("thinking", "text") else None
        head = ('event: content_block_delta\ndata: {"type":"content_block_delta","index":' + str(self.index)
                + ',"delta":{"type":')
        if kind == "text":
            self._text_head = (head + '"text_delta","text":').encode()
        elif kind == "thinking":
            self._reason_head = (head + '"thinking_delta","thinking":').encode()
        return out + event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                   "content_block": block})

    def _close(self) -> bytes:
        if self.open is None:  # nothing open (a tool_use block closes itself)
            return b""
        out = b""
        if self.open == "thinking":
            signature = self.signer.sign("".join(self._thinking))
            self._thinking.clear()
            out = event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                "delta": {"type": "signature_delta", "signature": signature}})
        self.open = None
        stop = event("content_block_stop", {"type": "content_block_stop", "index": self.index})
        return out + stop

    def reasoning(self, text: str) -> bytes:
        out = b"" if self.open == "thinking" else self._begin("thinking", {"type": "thinking", "thinking": "",
                                                                           "signature": ""})
        self._thinking.append(text)
        return out + self._reason_head + (_encode_str(text) + "}}\n\n").encode()

    def text(self, text: str) -> bytes:
        out = b"" if self.open == "text" else self._begin("text", {"type": "text", "text": ""})
        return out + self._text_head + (_encode_str(text) + "}}\n\n").encode()

    def tool_call(self, call: ToolCall) -> bytes:
        """A whole call: start (id, name, empty input), its arguments as one `input_json_delta`, stop."""
        out = self._begin("tool_use", {"type": "tool_use", "id": tool_use_id(call.id), "name": call.name,
                                       "input": {}})
        partial = _dumps(tool_input(call.arguments))
        out += event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                             "delta": {"type": "input_json_delta", "partial_json": partial}})
        return out + event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def whole_block(self, block: dict[str, Any]) -> bytes:
        """A finished block as a stream sends it: a `server_tool_use` with its input as one
        `input_json_delta`, a `web_search_tool_result` whole in its start, a text block's citations as
        `citations_delta`s before its text."""
        kind = block["type"]
        if kind == "server_tool_use":
            out = self._begin(kind, {**block, "input": {}})
            out += event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": {
                "type": "input_json_delta", "partial_json": _dumps(block["input"])}})
        elif kind == "text":
            out = self._begin("cited_text", {"type": "text", "text": ""})
            for citation in block.get("citations") or ():
                out += event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                     "delta": {"type": "citations_delta", "citation": citation}})
            out += event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                 "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            out = self._begin(kind, block)
        return out + event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def finish(self, reason: str, stop_sequence: str | None, usage: TurnUsage | None,
               searches: int | None = None) -> bytes:
        """Close the open block, then `message_delta` with the final usage, then `message_stop`.
        `searches`: the web searches run (a turn offered the hosted search tool), else None."""
        out = self._close()
        counts = usage_body(usage, searches)
        delta_usage = {"input_tokens": counts["input_tokens"], "output_tokens": counts["output_tokens"]}
        if searches is not None:
            delta_usage["server_tool_use"] = counts["server_tool_use"]
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": stop_sequence},
                 "usage": delta_usage}
        return out + event("message_delta", delta) + MESSAGE_STOP


def count_body(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


class MessagesCodec:
    """The Messages wire format of one request (api/codec.py's `StreamCodec`).

    A forced tool call (`tool_choice` any/tool) has no text before it: text is held back until the
    answer shows whether a call comes, dropped when one does and sent at the finish when none did; the
    non-stream body drops it the same way. With the hosted web search tool (`search`, asked `query`),
    the answer's text follows its search blocks, whose results are known only at the end (and is split
    at its citations), so it is held back too."""

    keepalive: Final = PING
    media_type: Final = SSE_TYPE

    def __init__(self, request_id: str, model: str, signer: ThinkingSigner, *, forces_call: bool,
                 search: WebSearchTool | None = None, query: str = "") -> None:
        self.request_id, self.signer, self.model = request_id, signer, model
        self.writer = StreamWriter(new_message_id(), model, signer)
        self.forces_call = forces_call
        self.search, self.query = search, query
        self.held: list[str] = []
        self.called = False
        self.reasoning: Callable[[str], bytes] = self.writer.reasoning
        # the hot path: straight to the writer, no extra call per token, unless text is held back
        self.text: Callable[[str], bytes] = self._hold if forces_call or search is not None else self.writer.text

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"request-id", self.request_id.encode())]

    def start(self) -> bytes:
        return self.writer.start()

    def _hold(self, text: str) -> bytes:
        if self.called:
            return self.writer.text(text)
        self.held.append(text)
        return b""

    def tool_call(self, call: ToolCall) -> bytes:
        self.called = True
        if self.search is None:
            self.held.clear()
        return self.writer.tool_call(call)

    async def finish(self, finish: OutFinish) -> bytes:
        calls = bool(finish.tool_calls) or self.called
        out = b""
        searches: int | None = None
        if self.search is not None:
            text = "" if calls and self.forces_call else "".join(self.held)
            searched, searches = searched_blocks(self.search, self.query, finish, text)
            out = b"".join(self.writer.whole_block(block) for block in searched)
        elif self.held and not calls:
            out = self.writer.text("".join(self.held))
        reason = stop_reason(finish.finish_reason, finish.stop_sequence, calls)
        return out + self.writer.finish(reason, finish.stop_sequence, finish.usage, searches)

    def failed(self, error: ApiError, started: bool) -> bytes:
        return anthropic_sse_bytes(error, self.request_id)

    async def body(self, finish: OutFinish, calls: Sequence[ToolCall]) -> dict[str, Any]:
        tool_calls = finish.tool_calls
        text = "" if tool_calls and self.forces_call else finish.content_text  # a forced call has no text before it
        searches: int | None = None
        if self.search is None:
            content = content_blocks(self.signer, finish.reasoning_text, text, tool_calls)
        else:
            searched, searches = searched_blocks(self.search, self.query, finish, text)
            content = content_blocks(self.signer, finish.reasoning_text, "", ())
            content += searched + content_blocks(self.signer, "", "", tool_calls)
        return message_body(new_message_id(), self.model, content,
                            stop_reason(finish.finish_reason, finish.stop_sequence, bool(tool_calls)),
                            finish.stop_sequence, usage_body(finish.usage, searches))


def searched_blocks(search: WebSearchTool, query: str, finish: OutFinish,
                    text: str) -> tuple[list[dict[str, Any]], int]:
    """A searched turn's blocks after its thinking — the search (when DeepSeek searched) and the answer
    with its citations — and the number of searches for `usage.server_tool_use`."""
    if not finish.citations:  # DeepSeek answered without searching: no search to show
        return ([{"type": "text", "text": text}] if text else []), 0
    results = search.results(finish.citations)
    blocks = search_blocks(server_tool_id(), query, results)
    return blocks + cited_text_blocks(text, results), 1
