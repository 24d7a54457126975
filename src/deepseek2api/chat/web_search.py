"""A hosted web-search tool offered by an agent, answered with DeepSeek's own search mode.

Claude Code's WebSearch (Anthropic `web_search_20250305` and later) and Codex's web search (Responses
`web_search`, `web_search_preview`, dated variants) do not ask the model to call a function: they expect
the server to search and to say so in its answer (docs/web-search.md). The web chat searches once per
turn when its search switch is on, so a request offering such a tool runs with search on, and the
surfaces render the results DeepSeek used as their own search blocks.

The operator's limits are honoured by filtering what DeepSeek returned, never by inventing results:
`allowed_domains` keeps only results on those domains (and their subdomains), `blocked_domains` drops
results on them, and `max_uses: 0` (no search allowed) leaves search off.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..deepseek.events import SearchResult
from .turn import Turn

_QUERY_CHARS = 200  # a search query is a line, not the whole message
_LINK = re.compile(r"\[(\d{1,6})\]\(([^()\s]+)\)")  # the `[N](url)` links chat/assemble.py renders


@dataclass(frozen=True, slots=True)
class WebSearchTool:
    """The hosted search tool of one request, with its limits (empty: no limit)."""

    max_uses: int | None = None
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()

    @property
    def filters(self) -> bool:
        """Whether some results may have to be hidden (then the answer's links are checked first)."""
        return bool(self.allowed_domains or self.blocked_domains)

    @property
    def enabled(self) -> bool:
        """False only when the client allowed no search at all (`max_uses: 0`)."""
        return self.max_uses is None or self.max_uses > 0

    def keeps(self, url: str) -> bool:
        """Whether a result at `url` may be shown under the allowed/blocked domain lists."""
        host = (urlsplit(url).hostname or "").lower()
        if not host:
            return False
        if self.allowed_domains and not any(_on_domain(host, d) for d in self.allowed_domains):
            return False
        return not any(_on_domain(host, d) for d in self.blocked_domains)

    def results(self, found: Iterable[SearchResult]) -> tuple[SearchResult, ...]:
        """The results the client may see, in DeepSeek's order, each URL once."""
        seen: set[str] = set()
        kept: list[SearchResult] = []
        for result in found:
            if result.url and result.url not in seen and self.keeps(result.url):
                seen.add(result.url)
                kept.append(result)
        return tuple(kept)


def _on_domain(host: str, domain: str) -> bool:
    domain = domain.strip().lower()
    if "://" in domain:
        domain = urlsplit(domain).hostname or ""
    domain = domain.split("/", 1)[0].removeprefix("*.").removeprefix("www.")
    if not domain:
        return False
    host = host.removeprefix("www.")
    return host == domain or host.endswith("." + domain)


def domains(value: object) -> tuple[str, ...]:
    """A client's domain list (strings only; anything else is ignored)."""
    if not isinstance(value, list):
        return ()
    return tuple(d.strip() for d in value if isinstance(d, str) and d.strip())


def responses_web_search(tools: object) -> WebSearchTool | None:
    """The Responses hosted search tool (`web_search`, `web_search_preview`, dated variants: any type
    starting with "web_search"), with `filters.allowed_domains` / `filters.blocked_domains`, or None."""
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, dict) and str(tool.get("type") or "").startswith("web_search"):
            filters = tool.get("filters")
            filters = filters if isinstance(filters, dict) else {}
            return WebSearchTool(allowed_domains=domains(filters.get("allowed_domains")),
                                 blocked_domains=domains(filters.get("blocked_domains")))
    return None


def with_search(turn: Turn) -> Turn:
    """The turn with DeepSeek's search switch on."""
    if turn.model.search:
        return turn
    return dataclasses.replace(turn, model=dataclasses.replace(turn.model, search=True))


def query_of(turn: Turn) -> str:
    """What the search is about: DeepSeek does not report its own query, so the last user message stands
    for it (its first line, at most 200 characters) — the text DeepSeek's search started from."""
    for message in reversed(turn.messages):
        if message.role == "user" and message.content.strip():
            text = " ".join(message.content.split())
            return text[:_QUERY_CHARS]
    return ""


def cited_links(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of each `[N](url)` citation link in the answer text."""
    return [(m.start(), m.end(), _unquote(m.group(2))) for m in _LINK.finditer(text)]


def _unquote(url: str) -> str:
    return url.replace("%20", " ").replace("%28", "(").replace("%29", ")")


def without_links(text: str, keep: Sequence[str]) -> str:
    """The answer with citation links to results the client may not see removed (their text stays)."""
    allowed = set(keep)
    return _LINK.sub(lambda m: m.group(0) if _unquote(m.group(2)) in allowed else "", text)
