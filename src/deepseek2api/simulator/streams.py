"""SSE writers: one class per upstream format generation (docs/protocol.md), each turning the same abstract
steps (begin a fragment, add text, finish …) into the bytes that generation put on the wire.

The layout copies the real 2026 captures in `upstream-samples/`: the first characters live inside the
opening snapshot, `p`/`o` are left out whenever they equal the previous event's (so most events are a
bare `{"v":"…"}`), a new fragment arrives as an APPEND to `response/fragments`, the answer ends with a
TIP fragment (UI chrome, never content), a BATCH with `accumulated_token_usage` and `quasi_status`, a
`response/status` SET, and the named events `update_session`, `title`, `close`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

TIP_TEXT = "本回答由 AI 生成，内容仅供参考，请仔细甄别。"
CLOSE = {"click_behavior": "none", "auto_resume": False}


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as upstream sends it (raw non-ASCII, no spaces)."""
    return _encode(value).encode("utf-8")


def data_event(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\n\n"


def named_event(name: str, value: Any) -> bytes:
    return b"event: " + name.encode("ascii") + b"\ndata: " + dumps(value) + b"\n\n"


def hint_event(content: str, finish_reason: str) -> bytes:
    """An error hint followed by `close` (input too long, over-limit in hint mode …)."""
    return (named_event("hint", {"type": "error", "content": content, "finish_reason": finish_reason})
            + named_event("close", CLOSE))


@dataclass(frozen=True)
class MessageMeta:
    """Ids and flags of the assistant message being streamed."""

    request_message_id: int
    message_id: int
    model_type: str
    thinking: bool
    search: bool
    inserted_at: float


class StreamWriter(Protocol):
    """The abstract steps of one reply; each returns the bytes to send (possibly empty)."""

    def opening(self, now: float) -> bytes: ...
    def resume(self, usage: int) -> bytes: ...
    def begin_search(self, queries: list[str]) -> bytes: ...
    def results(self, results: list[dict[str, Any]]) -> bytes: ...
    def search_done(self, results: list[dict[str, Any]]) -> bytes: ...
    def begin(self, kind: str, first: str) -> bytes: ...
    def text(self, piece: str) -> bytes: ...
    def think_done(self, elapsed: float) -> bytes: ...
    def tip(self) -> bytes: ...
    def finish(self, status: str, usage: int) -> bytes: ...
    def content_filter(self, refusal: str, usage: int) -> bytes: ...
    def closing(self, now: float, title: str | None) -> bytes: ...


class _Patches:
    """Writes `{p,o,v}` patches, leaving out `p`/`o` when they repeat (docs/protocol.md)."""

    def __init__(self) -> None:
        self._p: str | None = None
        self._o: str | None = None

    def forget_path(self) -> None:
        """After a snapshot nothing can be inherited: the next patch names its path and op."""
        self._p = self._o = None

    def patch(self, p: str, o: str, v: Any) -> bytes:
        if p == self._p and o == self._o:
            return b'data: {"v":' + dumps(v) + b"}\n\n"
        obj: dict[str, Any] = {}
        if p != self._p:
            obj["p"] = p
        if o != self._o:
            obj["o"] = o
        obj["v"] = v
        self._p, self._o = p, o
        return data_event(obj)


class _Fragment:
    __slots__ = ("fields", "parts")

    def __init__(self, fields: dict[str, Any], first: str | None = None) -> None:
        self.fields = fields
        self.parts: list[str] | None = None if first is None else [first]

    def public(self) -> dict[str, Any]:
        out = dict(self.fields)
        if self.parts is not None:
            out["content"] = "".join(self.parts)
        return out

    def text(self) -> str:
        return "".join(self.parts) if self.parts else ""


class FragmentWriter(_Patches):
    """Gen C (`response.fragments[]`, uppercase types) and, with `blocks=True`, Gen C′ (`response.blocks[]`,
    lowercase types, a new block APPENDed as one object)."""

    def __init__(self, meta: MessageMeta, *, blocks: bool = False, finish_event: bool = False) -> None:
        super().__init__()
        self.meta = meta
        self.blocks = blocks
        self.key = "blocks" if blocks else "fragments"
        self.finish_event = finish_event
        self.fragments: list[_Fragment] = []
        self._next_id = 2
        self._content_path = f"response/{self.key}/-1/content"

    def _type(self, name: str) -> str:
        return name.lower() if self.blocks else name

    def _new(self, kind: str, first: str | None, **extra: Any) -> _Fragment:
        fields: dict[str, Any] = {"id": self._next_id, "type": self._type(kind)}
        if first is not None:
            fields["content"] = first  # keeps upstream's key order: id, type, content, …
        fields.update(extra)
        self._next_id += 1
        fragment = _Fragment(fields, first)
        self.fragments.append(fragment)
        return fragment

    def _response_object(self, status: str, usage: int) -> dict[str, Any]:
        m = self.meta
        obj: dict[str, Any] = {
            "message_id": m.message_id, "parent_id": m.request_message_id, "model": "", "role": "ASSISTANT",
            "thinking_enabled": m.thinking, "ban_edit": False, "ban_regenerate": False, "status": status,
            "incomplete_message": None, "accumulated_token_usage": usage, "files": [], "feedback": None,
            "inserted_at": m.inserted_at, "search_enabled": m.search,
            self.key: [f.public() for f in self.fragments],
            "conversation_mode": "SEARCH" if m.search else "DEFAULT",
            "has_pending_block" if self.blocks else "has_pending_fragment": False,
            "auto_continue": False, "search_triggered": m.search,
        }
        return obj

    def _snapshot(self, usage: int = 0) -> bytes:
        self.forget_path()
        return data_event({"v": {"response": self._response_object("WIP", usage)}})

    def _append_fragment(self, fragment: _Fragment) -> bytes:
        if len(self.fragments) == 1:
            return self._snapshot()
        value: Any = fragment.public() if self.blocks else [fragment.public()]
        return self.patch(f"response/{self.key}", "APPEND", value)

    def opening(self, now: float) -> bytes:
        m = self.meta
        ready: dict[str, Any] = {"response_message_id": m.message_id}
        if not self.blocks:  # the C′ captures show only the response id
            ready = {"request_message_id": m.request_message_id, "response_message_id": m.message_id,
                     "model_type": m.model_type}
        return named_event("ready", ready) + named_event("update_session", {"updated_at": now})

    def resume(self, usage: int) -> bytes:
        """chat/continue: the whole message so far (THINK text included), then appends go on."""
        return self._snapshot(usage)

    def begin_search(self, queries: list[str]) -> bytes:
        fragment = self._new("SEARCH", None, status="WIP", content=None,
                             queries=[{"query": q} for q in queries], results=[])
        return self._append_fragment(fragment)

    def results(self, results: list[dict[str, Any]]) -> bytes:
        self.fragments[-1].fields["results"] = results
        return self.patch(f"response/{self.key}/-1/results", "SET", results)

    def search_done(self, results: list[dict[str, Any]]) -> bytes:
        self.fragments[-1].fields["status"] = "FINISHED"
        return self.patch(f"response/{self.key}/-1/status", "SET", "FINISHED")

    def begin(self, kind: str, first: str) -> bytes:
        after_search = bool(self.fragments) and self.fragments[-1].fields["type"] == self._type("SEARCH")
        if kind == "THINK":
            fragment = self._new("THINK", first, elapsed_secs=None, references=[], stage_id=1)
        else:
            fragment = self._new("RESPONSE", first, references=[], stage_id=1)
        if after_search and kind == "RESPONSE" and not self.blocks:
            # the search-only layout: the answer fragment arrives inside a BATCH (docs/protocol.md)
            out = self.patch("response", "BATCH", [
                {"p": "fragments", "o": "APPEND", "v": [fragment.public()]},
                {"p": "has_pending_fragment", "o": "SET", "v": False},
            ])
            return out
        return self._append_fragment(fragment)

    def text(self, piece: str) -> bytes:
        parts = self.fragments[-1].parts
        assert parts is not None
        parts.append(piece)
        return self.patch(self._content_path, "APPEND", piece)

    def think_done(self, elapsed: float) -> bytes:
        self.fragments[-1].fields["elapsed_secs"] = elapsed
        return self.patch(f"response/{self.key}/-1/elapsed_secs", "SET", elapsed)

    def tip(self) -> bytes:
        fragment = self._new("TIP", TIP_TEXT, style="WARNING", hide_on_wip=True)
        return self._append_fragment(fragment)

    def finish(self, status: str, usage: int) -> bytes:
        items: list[dict[str, Any]] = [{"p": "accumulated_token_usage", "v": usage},
                                       {"p": "quasi_status", "v": status}]
        if status == "INCOMPLETE":
            items.append({"p": "auto_continue", "v": True})
        # stopped before the first token: the snapshot still comes first, with no fragment
        out = b"" if self.fragments or self._p else self._snapshot()
        out += self.patch("response", "BATCH", items) + self.patch("response/status", "SET", status)
        if self.finish_event:
            out += named_event("finish", {})
        return out

    def content_filter(self, refusal: str, usage: int) -> bytes:
        """Moderation: the answer fragment is replaced by a canned refusal, status CONTENT_FILTER (§6.7)."""
        for fragment in self.fragments:
            if fragment.fields["type"] == self._type("RESPONSE"):
                fragment.parts = [refusal]
        return self.patch("response", "BATCH", [
            {"p": self.key, "o": "SET", "v": [f.public() for f in self.fragments]},
            {"p": "accumulated_token_usage", "v": usage},
            {"p": "status", "o": "SET", "v": "CONTENT_FILTER"},
        ])

    def closing(self, now: float, title: str | None) -> bytes:
        out = named_event("update_session", {"updated_at": now})
        if title:
            out += named_event("title", {"content": title})
        return out + named_event("close", CLOSE)

    def texts(self) -> tuple[str, str]:
        """(reasoning, content) emitted so far — what history_messages shows."""
        think = "".join(f.text() for f in self.fragments if f.fields["type"] == self._type("THINK"))
        answer = "".join(f.text() for f in self.fragments if f.fields["type"] == self._type("RESPONSE"))
        return think, answer


class FlatWriter(_Patches):
    """Gen B (mid-2025): patches on flat `response.content` / `thinking_content` / `search_*` fields."""

    def __init__(self, meta: MessageMeta) -> None:
        super().__init__()
        self.meta = meta
        self.thinking_parts: list[str] = []
        self.content_parts: list[str] = []
        self.elapsed: float | None = None
        self.search_results: list[dict[str, Any]] | None = None
        self._current = self.content_parts
        self._path = "response/content"
        self._opened = False

    def _snapshot(self, usage: int) -> bytes:
        self.forget_path()
        m = self.meta
        thinking = "".join(self.thinking_parts) if self.thinking_parts else None
        return data_event({"v": {"response": {
            "message_id": m.message_id, "parent_id": m.request_message_id, "model": "", "role": "ASSISTANT",
            "content": "".join(self.content_parts), "thinking_enabled": m.thinking,
            "thinking_content": thinking, "thinking_elapsed_secs": self.elapsed, "status": "WIP",
            "accumulated_token_usage": usage, "files": [], "tips": [], "search_enabled": m.search,
            "search_status": "FINISHED" if self.search_results is not None else None,
            "search_results": self.search_results,
        }}})

    def opening(self, now: float) -> bytes:
        """The empty snapshot starts the first round; a continue round starts with `resume()` instead."""
        if self._opened:
            return b""
        self._opened = True
        return self._snapshot(0)

    def resume(self, usage: int) -> bytes:
        return self._snapshot(usage)

    def begin_search(self, queries: list[str]) -> bytes:
        return self.patch("response/search_status", "SET", "SEARCHING")

    def results(self, results: list[dict[str, Any]]) -> bytes:
        self.search_results = results
        return self.patch("response/search_results", "SET", results)

    def search_done(self, results: list[dict[str, Any]]) -> bytes:
        return self.patch("response/search_status", "SET", "FINISHED")

    def begin(self, kind: str, first: str) -> bytes:
        if kind == "THINK":
            self._current, self._path = self.thinking_parts, "response/thinking_content"
        else:
            self._current, self._path = self.content_parts, "response/content"
        return self.text(first)

    def text(self, piece: str) -> bytes:
        self._current.append(piece)
        return self.patch(self._path, "APPEND", piece)

    def think_done(self, elapsed: float) -> bytes:
        self.elapsed = elapsed
        return self.patch("response/thinking_elapsed_secs", "SET", elapsed)

    def tip(self) -> bytes:
        return b""

    def finish(self, status: str, usage: int) -> bytes:
        items: list[dict[str, Any]] = [{"p": "accumulated_token_usage", "v": usage}, {"p": "status", "v": status}]
        if status == "INCOMPLETE":
            items.append({"p": "auto_continue", "v": True})
        return self.patch("response", "BATCH", items)

    def content_filter(self, refusal: str, usage: int) -> bytes:
        self.content_parts[:] = [refusal]
        return self.patch("response", "BATCH", [
            {"p": "content", "o": "SET", "v": refusal},
            {"p": "accumulated_token_usage", "v": usage},
            {"p": "status", "o": "SET", "v": "CONTENT_FILTER"},
        ])

    def closing(self, now: float, title: str | None) -> bytes:
        return b""

    def texts(self) -> tuple[str, str]:
        return "".join(self.thinking_parts), "".join(self.content_parts)


class ChoicesWriter:
    """Gen A (until mid-2025): OpenAI-like `choices[].delta` chunks, ending with `data: [DONE]`."""

    _FINISH_REASONS: ClassVar[dict[str, str]] = {"FINISHED": "stop", "STOPPED": "stop", "INCOMPLETE": "length"}

    def __init__(self, meta: MessageMeta, created: int) -> None:
        self.meta = meta
        self.created = created
        self._type = "text"
        self.thinking_parts: list[str] = []
        self.content_parts: list[str] = []

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, usage: int = 0) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish_reason is not None:
            choice["finish_reason"] = finish_reason
        return data_event({"choices": [choice], "model": "", "chunk_token_usage": usage, "created": self.created,
                           "message_id": self.meta.message_id, "parent_id": self.meta.request_message_id})

    def opening(self, now: float) -> bytes:
        return b""

    def resume(self, usage: int) -> bytes:
        return b""

    def begin_search(self, queries: list[str]) -> bytes:
        return b""

    def results(self, results: list[dict[str, Any]]) -> bytes:
        return b""

    def search_done(self, results: list[dict[str, Any]]) -> bytes:
        items = [{k: r[k] for k in ("url", "title", "snippet", "published_at", "site_name", "site_icon")}
                 for r in results]
        indexes = [{"cite_index": r["cite_index"], "url": r["url"]} for r in results]
        return (self._chunk({"type": "search_result", "search_results": items})
                + self._chunk({"type": "search_index", "search_indexes": indexes}))

    def begin(self, kind: str, first: str) -> bytes:
        self._type = "thinking" if kind == "THINK" else "text"
        return self.text(first)

    def text(self, piece: str) -> bytes:
        (self.thinking_parts if self._type == "thinking" else self.content_parts).append(piece)
        return self._chunk({"content": piece, "type": self._type}, usage=(len(piece) + 1) // 2)

    def think_done(self, elapsed: float) -> bytes:
        return b""

    def tip(self) -> bytes:
        return b""

    def finish(self, status: str, usage: int) -> bytes:
        reason = self._FINISH_REASONS.get(status, status.lower())
        return self._chunk({"content": "", "type": "text", "role": "assistant"}, finish_reason=reason)

    def content_filter(self, refusal: str, usage: int) -> bytes:
        self.content_parts[:] = [refusal]
        return (self._chunk({"content": refusal, "type": "text"})
                + self._chunk({"content": "", "type": "text", "role": "assistant"}, finish_reason="content_filter"))

    def closing(self, now: float, title: str | None) -> bytes:
        return b"data: [DONE]\n\n"

    def texts(self) -> tuple[str, str]:
        return "".join(self.thinking_parts), "".join(self.content_parts)


def make_writer(fmt: str, meta: MessageMeta, *, finish_event: bool = False) -> Any:
    """The writer for a canonical format name ("C", "C'", "B", "A")."""
    if fmt == "C":
        return FragmentWriter(meta, finish_event=finish_event)
    if fmt == "C'":
        return FragmentWriter(meta, blocks=True, finish_event=finish_event)
    if fmt == "B":
        return FlatWriter(meta)
    return ChoicesWriter(meta, created=int(meta.inserted_at))
