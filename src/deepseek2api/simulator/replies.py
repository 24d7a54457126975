"""Synthetic, deterministic answers, and the `[sim:…]` directives that steer the simulator from a prompt.

The reply is a pure function of the prompt and the two toggles, so a test (even one that goes through
the whole gateway) can compute the exact text it must receive. Every reply says it comes from the
simulator: nobody should mistake it for a model's answer.

Directives may appear anywhere in the prompt (tests going through the gateway can only control the
prompt): `[sim:fault=NAME]` (repeatable; comma lists allowed), `[sim:words=N]` (N extra filler words),
`[sim:stall=SECONDS]`, `[sim:reply=TEXT]` (exact content, no `]` inside), `[sim:format=C|C'|B|A]`,
`[sim:rounds=N]` (with the incomplete fault: N INCOMPLETE rounds before FINISHED), `[sim:split=N|random]`
(N characters per streamed piece, or 1–6 at random). They are removed from the text the reply echoes.
Tool calls and answers to tool results (`[sim:tool=…]`, `[sim:markup=…]`, `[sim:tool_in=reasoning]`)
are described in `toolcalls.py`.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from .demo_answers import json_answer
from .toolcalls import plan_tools

_DIRECTIVE = re.compile(r"\[sim:([A-Za-z_]+)(?:=([^\]]*))?\]")
_MARKER = re.compile(r"<｜[^｜]{0,40}｜>")
_USER_MARKER = "<｜User｜>"
_EXCERPT_CHARS = 120

SIMULATOR_NOTICE = "This is a synthetic reply from the DeepSeek2API simulator."

_FILLER = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "stream", "token", "simulator", "gateway",
)

_SITES = (
    ("https://docs.example.com/simulator/overview", "Simulator overview", "docs.example.com"),
    ("https://handbook.example.org/deepseek2api/testing", "Testing with the DeepSeek2API simulator",
     "handbook.example.org"),
    ("https://notes.example.net/offline-demos", "Offline demos and synthetic answers", "notes.example.net"),
)


@dataclass(frozen=True)
class Directives:
    """What a prompt asks of the simulator."""

    faults: tuple[str, ...] = ()
    words: int | None = None
    stall: float | None = None
    reply: str | None = None
    format: str | None = None
    rounds: int | None = None
    split: tuple[int, int] | None = None


@dataclass(frozen=True)
class Reply:
    """One synthetic answer. `content` keeps `[citation:N]` markers raw; `results` are SEARCH items."""

    reasoning: str
    content: str
    title: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    split: tuple[int, int] | None = None  # characters per streamed piece, overriding the config


def parse_directives(prompt: str) -> Directives:
    """All `[sim:…]` directives in `prompt`; malformed values are ignored."""
    faults: list[str] = []
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(prompt):
        key, value = match.group(1).lower(), (match.group(2) or "").strip()
        if key == "fault":
            faults.extend(part.strip().lower() for part in value.split(",") if part.strip())
        elif key in ("words", "rounds"):
            try:
                found[key] = max(0, int(value))
            except ValueError:
                pass
        elif key == "stall":
            try:
                found["stall"] = max(0.0, float(value))
            except ValueError:
                pass
        elif key == "reply":
            found["reply"] = match.group(2) or ""
        elif key == "format" and value:
            found["format"] = value
        elif key == "split" and value:
            if value == "random":
                found["split"] = (1, 6)
            elif value.isdigit() and int(value) > 0:
                found["split"] = (int(value), int(value))
    return Directives(faults=tuple(faults), **found)


def strip_directives(text: str) -> str:
    return _DIRECTIVE.sub("", text)


def last_user_text(prompt: str) -> str:
    """The last user turn of a flattened prompt (docs/protocol.md), without role markers or directives."""
    text = prompt
    cut = text.rfind(_USER_MARKER)
    if cut >= 0:
        text = text[cut + len(_USER_MARKER):]
    marker = _MARKER.search(text)
    if marker and cut >= 0:
        text = text[: marker.start()]
    text = _MARKER.sub(" ", text)
    return " ".join(strip_directives(text).split())


def excerpt_of(prompt: str) -> str:
    """The normalised excerpt of the last user text that replies echo."""
    text = last_user_text(prompt)
    if not text:
        return "(empty message)"
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1].rstrip() + "…"


def filler_words(n: int, seed_text: str) -> str:
    """`n` deterministic filler words (a long reply for `[sim:words=N]`)."""
    start = zlib.crc32(seed_text.encode("utf-8")) % len(_FILLER)
    return " ".join(_FILLER[(start + 7 * i) % len(_FILLER)] for i in range(n))


def search_results_for(excerpt: str) -> list[dict[str, Any]]:
    """2 or 3 stable fake web results (cite_index 1-based), chosen by the excerpt."""
    count = 2 + zlib.crc32(excerpt.encode("utf-8")) % 2
    results = []
    for i, (url, title, site) in enumerate(_SITES[:count], start=1):
        results.append({
            "url": url,
            "title": title,
            "snippet": f"Result {i} for “{excerpt[:40]}”: synthetic text served by the DeepSeek2API simulator.",
            "cite_index": i,
            "published_at": 1775000000.0 + i,
            "site_name": site,
            "site_icon": None,
            "query_indexes": [0],
        })
    return results


def title_for(excerpt: str) -> str:
    words = excerpt.split()
    head = " ".join(words[:4]) if words else "conversation"
    return f"Simulated: {head[:40]}"


def reply_for(prompt: str, *, thinking: bool, search: bool) -> Reply:
    """The deterministic answer to `prompt` (see the module doc for directives)."""
    directives = parse_directives(prompt)
    excerpt = excerpt_of(prompt)
    results = search_results_for(excerpt) if search else []
    plan = plan_tools(prompt, thinking=thinking) if directives.reply is None else None
    if plan is not None:
        return Reply(reasoning=plan.reasoning, content=plan.content, title=title_for(excerpt),
                     split=directives.split)
    structured = json_answer(prompt, excerpt) if directives.reply is None else None
    if directives.reply is not None:
        content = directives.reply
    elif structured is not None:
        content = structured
    else:
        content = f'{SIMULATOR_NOTICE} You wrote: "{excerpt}"'
        if search:
            content += (" According to the simulated search, the topic is covered by the simulator overview"
                        "[citation:1] and by the testing handbook[citation:2].")
        if directives.words:
            content += " " + filler_words(directives.words, excerpt)
    reasoning = ""
    if thinking:
        reasoning = (f'The user wrote "{excerpt}". I am the DeepSeek2API simulator, so I think about echoing '
                     "the message back with a clear note that the answer is synthetic.")
        if search:
            reasoning += f" The simulated search returned {len(results)} pages; I will cite two of them."
    return Reply(reasoning=reasoning, content=content, title=title_for(excerpt), results=results,
                 queries=[excerpt[:60]] if search else [], split=directives.split)
