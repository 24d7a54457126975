"""Typed upstream events: the only thing the decoder hands to the rest of the gateway.

Renderers never see DeepSeek's JSON; they see these. The set is closed on purpose (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ErrorKind


@dataclass(frozen=True, slots=True)
class Ready:
    """The `ready` event: ids of the stored user turn and of the reply being generated."""

    request_message_id: int | None
    response_message_id: int | None
    model_type: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """New text of a THINK fragment (becomes `reasoning_content`)."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """New text of a RESPONSE fragment (becomes `content`)."""

    text: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One web-search hit; `cite_index` is what `[citation:N]` markers refer to (1-based)."""

    cite_index: int | None
    url: str
    title: str = ""
    snippet: str = ""
    site_name: str = ""
    published_at: float | None = None  # unix seconds, when upstream says (a web_search result's page age)


@dataclass(frozen=True, slots=True)
class SearchResults:
    """The current full list of search results (upstream resends the list as it grows)."""

    results: tuple[SearchResult, ...]


@dataclass(frozen=True, slots=True)
class Usage:
    """`accumulated_token_usage` as reported by upstream (generated tokens, reasoning included)."""

    accumulated_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A terminal `response/status`: FINISHED, INCOMPLETE, CONTENT_FILTER, STOPPED, ERROR…"""

    status: str


@dataclass(frozen=True, slots=True)
class Title:
    """The auto-generated session title (first turn only)."""

    text: str


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """Upstream said no, or the stream broke. Always the last event of a stream."""

    kind: ErrorKind
    message: str
    retry_after: float | None = None
    until: float | None = field(default=None)  # unix seconds, for mutes


UpstreamEvent = (
    Ready | ReasoningDelta | ContentDelta | SearchResults | Usage | Finished | Title | UpstreamError
)
