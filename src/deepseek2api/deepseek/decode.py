"""Upstream SSE decoder: DeepSeek's web-chat stream (any format generation) → typed `UpstreamEvent`s.

This is the only place that knows the wire shapes of docs/protocol.md. It runs on every token, so the
common event — `data: {"v":"text"}` inheriting an APPEND on a fragment's content — takes a short path
(one `json.loads`, one list append) and never rebuilds long strings or buffers.

Choices worth knowing (the protocol leaves them open):

* Line endings are `\\n` or `\\r\\n`; a lone `\\r` is not a line break (DeepSeek never sends one, and
  honouring it would make every chunk that ends in `\\r` ambiguous).
* Each `data:` line is decoded on its own as soon as it is complete (no waiting for the blank line):
  DeepSeek puts one JSON value per line, and waiting would delay tokens by a chunk.
* Text kinds: only THINK/THINKING fragments (and Gen B `thinking_content`) give `ReasoningDelta`; only
  RESPONSE fragments (and Gen B `content`) give `ContentDelta`. TIP, SEARCH, TOOL_* and unknown types
  never do.
* Text is tracked per fragment (emitted length plus the value it was measured on). A SET that merely
  extends a fragment emits the extension; a SET that rewrites it (content filter, §6.7) emits nothing.
* Content filter: once a `CONTENT_FILTER` status is seen — also when it sits later in the same BATCH as
  the rewrite — the canned refusal that replaces the answer is NOT emitted; the consumer gets
  `Finished("CONTENT_FILTER")` and decides what to show. Text already emitted stays emitted.
* Continue rounds (§6.9 step 9): a new round re-sends the whole message, so each kind (reasoning,
  content) skips as many characters as were already emitted for it in earlier rounds, and emits only
  what lies beyond.
* One `Finished` per round: an explicit `response/status` (or BATCH `status`) wins; a BATCH
  `quasi_status` is held back and used only when the round ends without one; a terminal status inside a
  round's opening snapshot counts only when the round ends cleanly (`event: close` / `[DONE]`), because
  a continue round's snapshot may still carry the previous round's `INCOMPLETE`.
* `Usage` is emitted when `accumulated_token_usage` is written with a new positive value; values inside
  a snapshot are only an echo of stored state (0 at the start, the old total in a continue round).
* A success envelope line (e.g. a `file/upload_file` answer before the stream) is ignored; an envelope
  that reports an error ends the stream with `UpstreamError`.
* Drift canary (drift.py): an event name, a patch path, a fragment type or a status value the decoder
  does not know is reported once per reply to the process's `CANARY` (counted in /metrics, logged
  once per new shape with a structural sample, never text) and otherwise ignored as before. The
  checks sit off the per-token hot path: a path is judged once per distinct path string.
* The decoder never raises on upstream input. An internal bug surfaces as
  `UpstreamError(PROTOCOL, "internal decoder error: …")` rather than an exception in the stream loop.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from orjson import JSONDecodeError as _OrjsonError
from orjson import loads as _orjson_loads

from . import drift
from .errors import ErrorKind, classify_envelope, classify_hint, looks_like_html
from .events import (
    ContentDelta,
    Finished,
    Ready,
    ReasoningDelta,
    SearchResult,
    SearchResults,
    Title,
    UpstreamError,
    UpstreamEvent,
    Usage,
)
from .patch import PathCache, walk
from .patch import Text as _Text
from .patch import list_index as _list_index
from .patch import text_len as _text_len
from .patch import text_str as _text_str

__all__ = ["INTERNAL_ERROR_PREFIX", "StreamDecoder", "decode_body"]

INTERNAL_ERROR_PREFIX = "internal decoder error"

_REASONING = 0
_CONTENT = 1
_DELTA_TYPES = (ReasoningDelta, ContentDelta)

_TEXT_KEYS = frozenset({"content", "thinking_content"})
_RESULT_KEYS = frozenset({"results", "search_results"})
_STATUS_KEYS = frozenset({"status", "quasi_status"})
_FRAGMENT_LISTS = ("fragments", "blocks")
_NOT_TERMINAL = frozenset({"", "WIP", "PENDING", "RUNNING", "QUEUED", "STREAMING", "NONE", "NULL"})
_GEN_A_FINISH = {"stop": "FINISHED", "length": "INCOMPLETE", "content_filter": "CONTENT_FILTER"}

_WAF_MESSAGE = "upstream answered with an HTML page (WAF or captcha)"
_HEAD_LIMIT = 64 * 1024  # bytes of a round kept to diagnose a body that was no stream at all
_PATH_CACHE_LIMIT = 1024
_MAX_BATCH_DEPTH = 8
_MISSING: Any = object()
_JSON_ERRORS = (ValueError, RecursionError)


def _loads(data: bytes) -> Any:
    """`json.loads`, through orjson first: one upstream event per token, and orjson parses a small event
    ~10x faster (bench/README.md). Whatever orjson refuses (NaN, huge integers, lone surrogates,
    deep nesting, UTF-16 …) goes to `json.loads`, so results and errors stay exactly the standard library's."""
    try:
        return _orjson_loads(data)
    except _OrjsonError:
        return json.loads(data)

_Json = dict[str, Any]  # a decoded upstream JSON object; each value's type is checked where it is read
_SlotKey = tuple[str | int, ...]  # ("B", "content"), (list name, fragment id) or (list name, "#", index)
_Observed = list[Any]  # [characters counted, the value they were counted on]


def _fragment_kind(fragment: _Json) -> int | None:
    kind = fragment.get("type")
    if type(kind) is str:
        kind = kind.upper()
        if kind == "RESPONSE":
            return _CONTENT
        if kind == "THINK" or kind == "THINKING":
            return _REASONING
    return None


def _fragment_key(list_name: str, fragment: _Json, index: int) -> _SlotKey:
    fid = fragment.get("id")
    if type(fid) is int or type(fid) is str:
        return (list_name, fid)
    return (list_name, "#", index)


def _is_terminal(status: Any) -> TypeGuard[str]:
    return type(status) is str and status.upper() not in _NOT_TERMINAL


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _seconds(value: object) -> float | None:
    """A unix time in seconds, or None (absent, not a number, or a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def _str_or_empty(value: Any) -> str:
    return value if type(value) is str else ""


class _Round:
    """Everything one round (one HTTP body: the completion or a continue) knows. A new round is a new
    instance, so nothing of the previous one can leak into it."""

    __slots__ = ("buf", "head", "round_bytes", "bad_lines", "valid", "closed", "ended", "event", "event_data",
                 "root", "last_tokens", "last_op", "fast", "observed", "dirty", "snapshot", "silent", "finished",
                 "status_writes", "quasi", "snapshot_status", "seen", "skip", "gen_a", "a_usage", "a_results",
                 "a_index")

    def __init__(self, skip: tuple[int, int]) -> None:
        self.buf = bytearray()
        self.head = bytearray()
        self.round_bytes = 0
        self.bad_lines = 0
        self.valid = False
        self.closed = False
        self.ended = False
        self.event: str | None = None
        self.event_data = False
        # Patch state (Gen B/C/C′).
        self.root: _Json = {}
        self.last_tokens: tuple[str, ...] | None = None
        self.last_op: str | None = None
        self.fast: tuple[_Text, _Observed | None, int] | None = None
        self.observed: dict[_SlotKey, _Observed] = {}
        self.dirty = False
        self.snapshot = False
        self.silent = False
        # Status bookkeeping.
        self.finished: str | None = None
        self.status_writes: list[tuple[str, Any]] = []
        self.quasi: str | None = None
        self.snapshot_status: str | None = None
        # Per-kind text positions within this round, and how much of it earlier rounds already emitted.
        self.seen = [0, 0]
        self.skip = list(skip)
        # Gen A.
        self.gen_a = False
        self.a_usage = 0
        self.a_results: list[_Json] = []
        self.a_index: dict[str, int] = {}


class StreamDecoder:
    """Incremental decoder for one reply (one completion plus any continue rounds)."""

    def __init__(self) -> None:
        self._out: list[UpstreamEvent] = []
        self._pend_kind = -1
        self._pend: list[str] = []
        self._failed = False
        self._paths = PathCache(_PATH_CACHE_LIMIT)
        # Across rounds: characters emitted per kind, usage and results already reported.
        self._total = [0, 0]
        self._last_usage: int | None = None
        self._last_results: tuple[SearchResult, ...] = ()
        self._r = _Round((0, 0))
        # drift canary: path strings already judged, and each unknown shape met in this reply
        self._judged: set[str] = set()
        self.unknown: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ drift canary

    def _unknown(self, kind: str, shape: str, sample: str = "") -> None:
        key = (kind, shape)
        if key not in self.unknown:
            self.unknown[key] = sample
            drift.CANARY.saw(kind, shape, sample)

    def _judge_path(self, path: str, tokens: tuple[str, ...], value: Any) -> None:
        self._judged.add(path)
        words = drift.KNOWN_PATH_WORDS
        if any(t not in words and not t.lstrip("-").isdigit() for t in tokens):
            self._unknown("path", drift.path_template(tokens), drift.value_shape(value))

    def _judge_fragment(self, fragment: _Json) -> None:
        kind = fragment.get("type")
        name = kind.upper() if type(kind) is str else repr(type(kind).__name__)
        if name not in drift.KNOWN_FRAGMENT_TYPES:
            self._unknown("fragment", name, drift.value_shape(fragment))

    def _judge_status(self, value: Any) -> None:
        if type(value) is str and value.upper() not in drift.KNOWN_STATUSES:
            self._unknown("status", value.upper()[:40])

    # ------------------------------------------------------------------ public API

    def feed(self, chunk: bytes) -> list[UpstreamEvent]:
        """Decode the next bytes of the current round; returns the events they complete."""
        if self._failed or self._r.closed or self._r.ended:
            return []
        if not isinstance(chunk, bytes):
            if isinstance(chunk, (bytearray, memoryview)):
                chunk = bytes(chunk)
            elif isinstance(chunk, str):
                chunk = chunk.encode("utf-8", "surrogatepass")
            else:
                return []
        if not chunk:
            return []
        self._r.round_bytes += len(chunk)
        head = self._r.head
        if len(head) < _HEAD_LIMIT:
            head += chunk[: _HEAD_LIMIT - len(head)]
        buf = self._r.buf
        if buf:
            nl = chunk.find(b"\n")
            if nl < 0:
                buf += chunk
                return []
            buf += chunk[:nl]
            first = bytes(buf)
            buf.clear()
            lines = chunk[nl + 1 :].split(b"\n")
        else:
            first = None
            lines = chunk.split(b"\n")
        rest = lines.pop()
        if rest:
            buf += rest
        try:
            if first is not None:
                self._line(first)
            line_fn = self._line
            for line in lines:
                if self._failed or self._r.ended:
                    break
                line_fn(line)
        except Exception as exc:  # noqa: BLE001 - the stream loop must never see a decoder bug raise
            self._internal_error(exc)
        return self._take()

    def close(self) -> list[UpstreamEvent]:
        """End of this round's body: flush, then report a cut (or garbage) if the reply is unfinished."""
        if self._failed or self._r.closed:
            return []
        self._r.closed = True
        try:
            if self._r.buf and not self._r.ended:
                last = bytes(self._r.buf)
                self._r.buf.clear()
                self._line(last)
            if not self._failed:
                self._end_round(clean=False)
            if not self._failed and self._r.finished is None:
                self._error(self._unfinished_error())
        except Exception as exc:  # noqa: BLE001
            self._internal_error(exc)
        return self._take()

    def begin_continue_round(self) -> None:
        """The next bytes are a `chat/continue` round of the same message.

        Call `close()` on the previous round first. The new round's opening snapshot repeats the
        message so far; per kind, only text beyond what was already emitted will be emitted.
        """
        self._r = _Round((self._total[0], self._total[1]))

    @property
    def finished_status(self) -> str | None:
        """The terminal status of the current round (FINISHED, INCOMPLETE, CONTENT_FILTER…), if any."""
        return self._r.finished

    @property
    def auto_continue(self) -> bool:
        """Upstream's `auto_continue` flag for the current round (another hint to call continue)."""
        response = self._r.root.get("response")
        return type(response) is dict and response.get("auto_continue") is True

    @property
    def failed(self) -> bool:
        """True once an `UpstreamError` has been emitted; the decoder emits nothing after that."""
        return self._failed

    # ------------------------------------------------------------------ round state

    # ------------------------------------------------------------------ output

    def _take(self) -> list[UpstreamEvent]:
        self._flush_text()
        out = self._out
        self._out = []
        return out

    def _flush_text(self) -> None:
        if self._pend:
            text = self._pend[0] if len(self._pend) == 1 else "".join(self._pend)
            self._out.append(_DELTA_TYPES[self._pend_kind](text))
            self._pend = []
        self._pend_kind = -1

    def _push(self, event: UpstreamEvent) -> None:
        if self._failed:
            return
        if self._pend:
            self._flush_text()
        self._out.append(event)

    def _emit_text(self, kind: int, text: str) -> None:
        """Count `text` as the next characters of `kind` and emit what earlier rounds did not."""
        if self._r.silent or self._failed or not text:
            return
        seen = self._r.seen[kind]
        end = seen + len(text)
        self._r.seen[kind] = end
        skip = self._r.skip[kind]
        if end <= skip:
            return
        if seen < skip:
            text = text[skip - seen :]
        self._total[kind] += len(text)
        if self._pend_kind != kind:
            self._flush_text()
            self._pend_kind = kind
        self._pend.append(text)

    def _error(self, error: UpstreamError) -> None:
        if self._failed:
            return
        self._push(error)
        self._failed = True
        self._r.buf.clear()

    def _internal_error(self, exc: BaseException) -> None:
        self._error(
            UpstreamError(ErrorKind.PROTOCOL, f"{INTERNAL_ERROR_PREFIX}: {type(exc).__name__}: {exc}"[:300])
        )

    def _finish(self, status: str) -> None:
        status = status.upper()
        if status == "CONTENT_FILTER":
            self._r.silent = True
        if self._r.finished is None and not self._failed:
            self._r.finished = status
            self._push(Finished(status))

    def _end_round(self, *, clean: bool) -> None:
        """The round is over (close event, [DONE] or end of body): settle its one `Finished`."""
        self._r.ended = True
        if self._r.finished is not None or self._failed:
            return
        if self._r.quasi is not None:
            self._finish(self._r.quasi)
        elif clean and self._r.snapshot_status is not None:
            self._finish(self._r.snapshot_status)

    def _unfinished_error(self) -> UpstreamError:
        if self._r.round_bytes == 0:
            return UpstreamError(ErrorKind.STREAM_CUT, "upstream sent an empty body instead of a stream")
        if not self._r.valid:
            head = bytes(self._r.head)
            if looks_like_html(head):
                return UpstreamError(ErrorKind.WAF_BLOCKED, _WAF_MESSAGE)
            if self._r.round_bytes <= _HEAD_LIMIT:
                try:
                    envelope = _loads(head)
                except _JSON_ERRORS:
                    envelope = None
                if isinstance(envelope, dict):
                    error = classify_envelope(envelope)
                    if error is not None:
                        return error
            return UpstreamError(
                ErrorKind.PROTOCOL,
                f"upstream sent no parseable stream event ({self._r.bad_lines} unparseable lines)",
            )
        return UpstreamError(ErrorKind.STREAM_CUT, "upstream stream ended before the reply finished")

    # ------------------------------------------------------------------ lines

    def _line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self._r.event is not None:
                if self._r.event == "close" and not self._r.event_data:
                    self._end_round(clean=True)
                self._r.event = None
            return
        if line.startswith(b"data:"):
            data = line[5:]
            if data[:1] == b" ":
                data = data[1:]
            name = self._r.event
            if name is not None:
                self._r.event_data = True
                self._named(name, data)
                return
            try:
                obj = _loads(data)
            except _JSON_ERRORS:
                if data.strip() == b"[DONE]":
                    self._r.valid = True
                    self._done()
                else:
                    self._r.bad_lines += 1
                return
            if type(obj) is dict:
                fast = self._r.fast
                if fast is not None and len(obj) == 1:
                    v = obj.get("v")
                    if type(v) is str:
                        # Hot path: `{"v": "..."}` continuing an APPEND on a fragment's text.
                        text, observed, kind = fast
                        text.parts.append(v)
                        text.n += len(v)
                        if len(text.parts) - text.settled >= 64:
                            text.settle()
                        if observed is not None:
                            observed[0] += len(v)
                            self._emit_text(kind, v)
                        return
                self._message(obj)
            else:
                self._r.bad_lines += 1
            return
        first = line[0]
        if first == 58:  # ":" SSE comment (keep-alive)
            return
        if line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace").lower()
            self._r.event = None if name in ("", "message") else name
            self._r.event_data = False
            return
        if first == 123:  # "{": a bare JSON line (an envelope answer, or a pre-stream round)
            try:
                obj = _loads(line)
            except _JSON_ERRORS:
                self._r.bad_lines += 1
                return
            if type(obj) is dict:
                self._message(obj)
            else:
                self._r.bad_lines += 1
            return
        if not self._r.valid and looks_like_html(line):
            # Judged on this line alone so that the result cannot depend on how bytes were chunked;
            # close() judges the whole head for pages whose first lines are less telling.
            self._error(UpstreamError(ErrorKind.WAF_BLOCKED, _WAF_MESSAGE))
            return
        if line.startswith(b"\xef\xbb\xbf"):  # a BOM in front of the first line
            self._line(line[3:])
            return
        if line.startswith((b"id:", b"retry:")) or line in (b"id", b"retry", b"data", b"event"):
            return
        self._r.bad_lines += 1

    def _done(self) -> None:
        """`data: [DONE]` (Gen A and early B): the round is over."""
        if self._r.finished is None and self._r.gen_a and self._r.quasi is None:
            self._flush_gen_a_usage()
            self._finish("FINISHED")
        self._end_round(clean=True)

    def _named(self, name: str, data: bytes) -> None:
        try:
            obj = _loads(data)
        except _JSON_ERRORS:
            self._r.bad_lines += 1
            return
        self._r.valid = True
        if type(obj) is not dict:
            return
        if name == "ready":
            model_type = obj.get("model_type")
            self._push(
                Ready(
                    request_message_id=_int_or_none(obj.get("request_message_id")),
                    response_message_id=_int_or_none(obj.get("response_message_id")),
                    model_type=model_type if type(model_type) is str else None,
                )
            )
        elif name == "title":
            title = obj.get("content")
            if type(title) is str and title:
                self._push(Title(title))
        elif name == "hint":
            if str(obj.get("type") or "").lower() == "error":
                self._error(classify_hint(obj))
        elif name == "close":
            self._end_round(clean=True)
        elif name == "error":
            self._error(self._error_object(obj.get("error", obj), obj))
        elif name not in drift.KNOWN_EVENTS:
            self._unknown("event", name[:40], drift.value_shape(obj))
        # update_session, finish and unknown names carry nothing we need.

    # ------------------------------------------------------------------ default events

    def _message(self, obj: _Json) -> None:
        if "v" in obj or "p" in obj:
            self._r.valid = True
            self._patch(obj)
        elif "choices" in obj:
            self._r.valid = True
            self._gen_a_chunk(obj)
        elif obj.get("error"):
            self._r.valid = True
            self._error(self._error_object(obj["error"], obj))
        elif "code" in obj or "data" in obj:
            if obj.get("code") == "content_filter":
                self._r.valid = True
                self._finish("CONTENT_FILTER")
                return
            error = classify_envelope(obj)
            if error is not None:
                self._error(error)
            # A success envelope (another endpoint's answer before the stream) is not a stream event.

    @staticmethod
    def _error_object(error: Any, obj: _Json) -> UpstreamError:
        """`{"error": ...}` chunk → an error classified by its message (PROTOCOL when unknown)."""
        code: Any = obj.get("code")
        if isinstance(error, dict):
            message = error.get("message") or error.get("msg") or error.get("content")
            code = error.get("code") or error.get("type") or code
            if not isinstance(message, str) or not message:
                message = json.dumps(error, ensure_ascii=False, default=str)[:200]
        else:
            message = str(error)[:500]
        hint = {"content": f"upstream error: {message}", "finish_reason": str(code) if code else ""}
        return classify_hint(hint)

    # ------------------------------------------------------------------ Gen A

    def _gen_a_chunk(self, obj: _Json) -> None:
        self._r.gen_a = True
        usage = obj.get("chunk_token_usage")
        if type(usage) is int and usage > 0:
            self._r.a_usage += usage
        choices = obj.get("choices")
        if type(choices) is not list:
            return
        for choice in choices:
            if type(choice) is not dict:
                continue
            reason = choice.get("finish_reason")
            if reason == "backend_busy":
                self._error(UpstreamError(ErrorKind.BUSY, "upstream is busy (backend_busy)", retry_after=5.0))
                return
            delta = choice.get("delta")
            if type(delta) is dict:
                self._gen_a_delta(delta)
            if type(reason) is str and reason:
                self._flush_gen_a_usage()
                self._finish(_GEN_A_FINISH.get(reason, reason))

    def _gen_a_delta(self, delta: _Json) -> None:
        changed = False
        results = delta.get("search_results")
        if type(results) is list:
            self._r.a_results.extend(r for r in results if type(r) is dict)
            changed = True
        indexes = delta.get("search_indexes")
        if type(indexes) is list:
            for item in indexes:
                if type(item) is dict and type(item.get("url")) is str and type(item.get("cite_index")) is int:
                    self._r.a_index[item["url"]] = item["cite_index"]
            changed = True
        if changed:
            self._check_results()
        text = delta.get("content")
        if type(text) is str and text:
            kind = delta.get("type")
            if kind == "thinking":
                self._emit_text(_REASONING, text)
            elif kind is None or kind == "text":
                self._emit_text(_CONTENT, text)

    def _flush_gen_a_usage(self) -> None:
        if self._r.a_usage and self._r.a_usage != self._last_usage:
            self._last_usage = self._r.a_usage
            self._push(Usage(self._r.a_usage))

    # ------------------------------------------------------------------ patches (Gen B/C/C′)

    def _patch(self, obj: _Json) -> None:
        self._r.fast = None
        if "v" not in obj:
            return
        value = obj["v"]
        path = obj.get("p", _MISSING)
        if path is _MISSING or path is None:
            if self._r.last_tokens is None or (type(value) is dict and "response" in value):
                tokens: tuple[str, ...] = ()
            else:
                tokens = self._r.last_tokens
        elif type(path) is str:
            tokens = self._paths.parse(path)
            if path not in self._judged:
                self._judge_path(path, tokens, value)
        else:
            return
        op = obj.get("o")
        if type(op) is str:
            op = op.upper()
            inherited = None
        elif op is None:
            inherited = self._r.last_op
        else:
            return
        self._r.last_tokens = tokens
        if op is not None:
            self._r.last_op = op
        self._apply(tokens, op, inherited, value, 0)
        if self._r.dirty:
            self._after_change()

    def _apply(self, tokens: tuple[str, ...], op: str | None, inherited: str | None, value: Any, depth: int) -> None:
        explicit = op is not None
        if not tokens:
            if type(value) is dict and op in (None, "SET"):
                self._r.root = value
                self._r.snapshot = True
                self._r.dirty = True
            elif op == "BATCH" and type(value) is list:
                self._batch(tokens, value, depth)
            return
        last = tokens[-1]
        if op is None:
            if last in _TEXT_KEYS and type(value) is str:
                op = "APPEND"
            elif last in _RESULT_KEYS and type(value) is list:
                op = "SET"
            else:
                op = inherited or "SET"
                if op == "BATCH" and type(value) is not list:
                    op = "SET"
        if op == "BATCH":
            if type(value) is list:
                self._batch(tokens, value, depth)
            return
        if op != "SET" and op != "APPEND":
            return  # an operation we do not know: leave the state alone
        location = walk(self._r.root, tokens)
        if location is None:
            return
        parent, key = location
        if op == "APPEND":
            current = parent.get(key) if type(parent) is dict else parent[key]
            if type(value) is str and last in _TEXT_KEYS and (
                current is None or type(current) is str or type(current) is _Text
            ):
                self._append_text(tokens, parent, key, current, value, depth)
                return
            if type(current) is list:
                if type(value) is list:
                    current.extend(value)
                else:
                    current.append(value)
                self._r.dirty = True
                return
            if explicit:
                if current is None:
                    parent[key] = [value] if type(value) is dict and last in _FRAGMENT_LISTS else value
                elif type(current) is str and type(value) is str:
                    parent[key] = current + value
                elif type(current) is dict and type(value) is dict:
                    current.update(value)
                else:
                    return
                self._r.dirty = True
                return
            # An inherited APPEND onto a scalar (e.g. `response/status` after text appends) is a SET.
        parent[key] = value
        self._r.dirty = True
        if len(tokens) == 2 and last in _STATUS_KEYS and tokens[0] == "response":
            self._r.status_writes.append((last, value))  # explicit writes count even when unchanged
        elif len(tokens) == 1 and last == "response" and type(value) is dict:
            self._r.snapshot = True

    def _batch(self, base: tuple[str, ...], items: list[Any], depth: int) -> None:
        if depth >= _MAX_BATCH_DEPTH:
            return
        for item in items:
            if type(item) is dict and item.get("v") == "CONTENT_FILTER":
                path = item.get("p")
                if type(path) is str and path.endswith("status"):
                    self._r.silent = True  # the rewrite before it in this batch is the canned refusal
        previous = base
        previous_op: str | None = None
        for item in items:
            if type(item) is not dict or "v" not in item:
                continue
            path = item.get("p")
            if path is None:
                tokens = previous
            elif type(path) is str:
                tokens = base + self._paths.parse(path)
                if path not in self._judged:
                    self._judge_path(path, tokens, item["v"])
            else:
                continue
            op = item.get("o")
            if type(op) is str:
                op = op.upper()
            elif op is not None:
                continue
            self._apply(tokens, op, previous_op, item["v"], depth + 1)
            previous = tokens
            if op is not None:
                previous_op = op
        self._r.dirty = True

    def _slot_of(self, tokens: tuple[str, ...], parent: Any, key: Any) -> tuple[int, _SlotKey] | None:
        """Which text kind and tracking key a content path writes to (None for non-answer text)."""
        if type(parent) is not dict or tokens[0] != "response":
            return None
        count = len(tokens)
        if count == 2:
            if key == "content":
                return _CONTENT, ("B", "content")
            if key == "thinking_content":
                return _REASONING, ("B", "thinking_content")
            return None
        if count == 4 and key == "content" and tokens[1] in _FRAGMENT_LISTS:
            kind = _fragment_kind(parent)
            if kind is None:
                return None
            fragments = self._r.root["response"][tokens[1]]
            index = _list_index(fragments, tokens[2])
            return kind, _fragment_key(tokens[1], parent, -1 if index is None else index)
        return None

    def _append_text(
        self, tokens: tuple[str, ...], parent: Any, key: Any, current: Any, value: str, depth: int
    ) -> None:
        kind = 0
        observed: _Observed | None = None
        slot = self._slot_of(tokens, parent, key)
        if slot is not None:
            kind, slot_key = slot
            observed = self._r.observed.get(slot_key)
            if observed is None:
                self._sync_slot(slot_key, kind, current)  # text already there that nobody counted yet
                observed = self._r.observed[slot_key]
        if type(current) is _Text:
            text = current
        else:
            text = _Text(current if type(current) is str else None)
            parent[key] = text
            if observed is not None:
                observed[1] = text
        text.parts.append(value)
        text.n += len(value)
        if len(text.parts) - text.settled >= 64:
            text.settle()
        if observed is not None:
            observed[0] += len(value)
            self._emit_text(kind, value)
        if depth == 0:
            self._r.fast = (text, observed, kind)

    def _sync_slot(self, slot: _SlotKey, kind: int, value: Any) -> None:
        """Emit what a text slot holds beyond what was counted; rewrites are counted, not emitted."""
        length = _text_len(value)
        observed = self._r.observed.get(slot)
        if observed is None:
            self._r.observed[slot] = [length, value]
            if length:
                self._emit_text(kind, _text_str(value))
            return
        old_length, old_value = observed
        if old_value is value:
            if length > old_length:
                self._emit_text(kind, _text_str(value)[old_length:])
        elif length > old_length:
            new = _text_str(value)
            old = _text_str(old_value)[:old_length] if old_length else ""
            if new.startswith(old):
                self._emit_text(kind, new[old_length:])
        observed[0] = length
        observed[1] = value

    def _after_change(self) -> None:
        """After a structural change: emit new text, then status, usage and search results."""
        self._r.dirty = False
        snapshot = self._r.snapshot
        self._r.snapshot = False
        response = self._r.root.get("response")
        if type(response) is not dict:
            return
        for name in _FRAGMENT_LISTS:
            fragments = response.get(name)
            if type(fragments) is list:
                for index, fragment in enumerate(fragments):
                    if type(fragment) is dict:
                        kind = _fragment_kind(fragment)
                        if kind is None:
                            self._judge_fragment(fragment)
                        else:
                            self._sync_slot(_fragment_key(name, fragment, index), kind, fragment.get("content"))
        if "thinking_content" in response:
            self._sync_slot(("B", "thinking_content"), _REASONING, response["thinking_content"])
        if "content" in response:
            self._sync_slot(("B", "content"), _CONTENT, response["content"])

        if snapshot:
            status = response.get("status")
            self._r.snapshot_status = status.upper() if _is_terminal(status) else None
        if self._r.status_writes:
            writes = self._r.status_writes
            self._r.status_writes = []
            for key, value in writes:
                self._judge_status(value)
                terminal = _is_terminal(value)
                if key == "status":
                    if terminal:
                        self._finish(value)
                    else:
                        self._r.snapshot_status = None  # back to WIP: the snapshot's old status is stale
                elif terminal:
                    self._r.quasi = value.upper()
                    if self._r.quasi == "CONTENT_FILTER":
                        self._r.silent = True

        usage = response.get("accumulated_token_usage")
        if type(usage) is int and usage > 0 and usage != self._last_usage and not snapshot:
            # A snapshot only echoes the stored state (0 at the start, the old total in a continue round).
            self._last_usage = usage
            self._push(Usage(usage))
        self._check_results()

    # ------------------------------------------------------------------ search results

    def _check_results(self) -> None:
        items: list[Any] = []
        response = self._r.root.get("response")
        if type(response) is dict:
            for name in _FRAGMENT_LISTS:
                fragments = response.get(name)
                if type(fragments) is list:
                    for fragment in fragments:
                        if type(fragment) is dict:
                            kind = fragment.get("type")
                            results = fragment.get("results")
                            if type(results) is list and type(kind) is str and "SEARCH" in kind.upper():
                                items.extend(results)
            results = response.get("search_results")
            if type(results) is list:
                items.extend(results)
        items.extend(self._r.a_results)
        if not items:
            return
        current = self._build_results(items)
        if current and current != self._last_results:
            self._last_results = current
            self._push(SearchResults(current))

    def _build_results(self, items: list[Any]) -> tuple[SearchResult, ...]:
        by_cite: dict[int, SearchResult] = {}
        by_url: dict[str, SearchResult] = {}
        for item in items:
            if type(item) is not dict:
                continue
            url = _str_or_empty(item.get("url"))
            cite = item.get("cite_index")
            if type(cite) is not int:
                cite = self._r.a_index.get(url) if url else None
            if cite is None and not url:
                continue
            result = SearchResult(
                cite_index=cite,
                url=url,
                title=_str_or_empty(item.get("title")),
                snippet=_str_or_empty(item.get("snippet")),
                site_name=_str_or_empty(item.get("site_name")),
                published_at=_seconds(item.get("published_at")),
            )
            if cite is not None:
                by_cite[cite] = result
            else:
                by_url[url] = result
        cited_urls = {r.url for r in by_cite.values()}
        ordered = [by_cite[c] for c in sorted(by_cite)]
        ordered.extend(r for u, r in by_url.items() if u not in cited_urls)
        return tuple(ordered)


def decode_body(body: bytes) -> list[UpstreamEvent]:
    """Decode a whole round's body at once (tests, captures, non-streaming callers)."""
    decoder = StreamDecoder()
    events = decoder.feed(body)
    events.extend(decoder.close())
    return events
