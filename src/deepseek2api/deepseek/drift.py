"""The drift canary: what the stream decoder met and does not know.

DeepSeek adds stream fields without notice (docs/deepseek-changes.md). The decoder ignores what it does
not know, so answers stay right, but the operator should hear that the protocol moved before it moves
somewhere that matters. The decoder reports each unknown shape here; this counts them by kind (the
`/metrics` counter `deepseek2api_upstream_unknown_shapes`), logs each new shape once with a short sample
of its structure (names, keys and value types: never the text of a reply), and keeps the last few for
`deepseek2api check --live` and the console's probe.

One canary per process (like the log redactor): decoders are made in many places and must not need
wiring; a shape seen by any of them is news once.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

log = logging.getLogger("deepseek2api.drift")

KINDS = ("event", "path", "fragment", "status")  # unknown event names, patch paths, fragment types, statuses
MAX_SHAPES = 512  # distinct shapes remembered (log-once memory); more are still counted
SAMPLE_CHARS = 120

# Known vocabulary (the captures in tests/data, the simulator's formats, docs/protocol.md).
KNOWN_EVENTS = frozenset({"ready", "update_session", "title", "hint", "close", "error", "finish", "message",
                          "keep-alive", "keepalive", "ping"})
KNOWN_PATH_WORDS = frozenset({
    "response", "fragments", "blocks", "content", "thinking_content", "status", "quasi_status",
    "accumulated_token_usage", "elapsed_secs", "thinking_elapsed_secs", "has_pending_fragment",
    "has_pending_block", "search_status", "search_results", "results", "queries", "references", "auto_continue",
    "conversation_mode", "incomplete_message", "message_id", "parent_id", "model", "role", "thinking_enabled",
    "search_enabled", "ban_edit", "ban_regenerate", "inserted_at", "files", "feedback", "tips", "title", "stage_id",
    "id", "type", "style", "hide_on_wip", "request_message_id", "response_message_id", "model_type", "url",
    "cite_index", "site_name", "site_icon", "snippet", "published_at", "query", "token_usage",
})
KNOWN_FRAGMENT_TYPES = frozenset({"RESPONSE", "THINK", "THINKING", "SEARCH", "TIP", "TOOL_SEARCH", "TOOL_OPEN",
                                  "TEMPLATE_RESPONSE", "READ_LINK", "REQUEST", "TEXT"})
KNOWN_STATUSES = frozenset({"FINISHED", "INCOMPLETE", "CONTENT_FILTER", "WIP", "PENDING", "RUNNING", "QUEUED",
                            "STREAMING", "NONE", "NULL", "", "INSUFFICIENT_SYSTEM_RESOURCE", "SEARCHING",
                            "FAILED", "ERROR", "CANCELLED", "SUCCESS"})


def value_shape(value: Any) -> str:
    """The type of a value, never the value itself (it may be model or user text)."""
    if isinstance(value, dict):
        keys = ",".join(sorted(str(k) for k in value)[:12])
        return f"object{{{keys}}}"
    if isinstance(value, list):
        return f"list[{len(value)}]"
    if value is None:
        return "null"
    return type(value).__name__


def path_template(tokens: tuple[str, ...]) -> str:
    """`response/fragments/#/content`: indexes folded, so one shape is one template."""
    return "/".join("#" if t.lstrip("-").isdigit() else t for t in tokens)


class DriftCanary:
    """Counts of unknown shapes by kind, the shapes seen (each logged once), the latest samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # decoders may run in worker threads (decode_body in tests, tools)
        self.counts: collections.Counter[str] = collections.Counter({kind: 0 for kind in KINDS})
        self._seen: dict[tuple[str, str], str] = {}
        self.recent: collections.deque[tuple[str, str]] = collections.deque(maxlen=20)

    def saw(self, kind: str, shape: str, sample: str = "") -> None:
        """One occurrence of an unknown `shape` (a name, a path template, a type, a status word)."""
        shape = shape[:SAMPLE_CHARS]
        sample = sample[:SAMPLE_CHARS]
        with self._lock:
            self.counts[kind] += 1
            key = (kind, shape)
            if key in self._seen:
                return
            if len(self._seen) < MAX_SHAPES:
                self._seen[key] = sample
            self.recent.append(key)
        log.warning("DeepSeek's stream carries something new (%s %r%s); the answer is decoded as before. "
                    "If answers look wrong, see docs/deepseek-changes.md", kind, shape,
                    f"; sample: {sample}" if sample else "")

    def shapes(self) -> list[dict[str, str]]:
        """Every distinct unknown shape seen so far (kind, shape, sample)."""
        with self._lock:
            return [{"kind": k, "shape": s, "sample": sample} for (k, s), sample in self._seen.items()]

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


CANARY = DriftCanary()
