"""Helpers for the decoder tests: compose SSE bodies, feed them in pieces, compare event streams."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepseek2api.deepseek.decode import INTERNAL_ERROR_PREFIX, StreamDecoder
from deepseek2api.deepseek.events import ContentDelta, ReasoningDelta, UpstreamError, UpstreamEvent

SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "upstream-samples"
CAPTURES = ("longtext-deepseek-v4-flash-20260429", "markdown-format-example-20260405")


def load_capture(name: str) -> tuple[bytes, dict]:
    folder = SAMPLES_DIR / name
    return (folder / "upstream.stream.sse").read_bytes(), json.loads((folder / "expected.json").read_text("utf-8"))


def sse(*events: Any) -> bytes:
    """Compose a body. Items: a dict/str payload (default event), ("name", payload), or raw bytes."""
    out: list[bytes] = []
    for item in events:
        if isinstance(item, bytes):
            out.append(item)
            continue
        name = None
        if isinstance(item, tuple):
            name, item = item
        payload = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        block = (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"
        out.append(block.encode("utf-8"))
    return b"".join(out)


def summarize(events: Iterable[UpstreamEvent]) -> tuple[str, str, list[UpstreamEvent]]:
    """(reasoning, content, other events in order): equal whatever the split merged into one delta."""
    reasoning: list[str] = []
    content: list[str] = []
    others: list[UpstreamEvent] = []
    for event in events:
        if isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ContentDelta):
            content.append(event.text)
        else:
            others.append(event)
    return "".join(reasoning), "".join(content), others


def feed_chunks(chunks: Iterable[bytes], decoder: StreamDecoder | None = None, *, close: bool = True) -> list[UpstreamEvent]:
    decoder = decoder or StreamDecoder()
    events: list[UpstreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    if close:
        events.extend(decoder.close())
    return events


def random_chunks(body: bytes, rng: random.Random, max_size: int = 64) -> list[bytes]:
    chunks = []
    pos = 0
    while pos < len(body):
        size = rng.randint(1, max_size)
        chunks.append(body[pos : pos + size])
        pos += size
    return chunks


def byte_chunks(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def assert_no_internal_error(events: Iterable[UpstreamEvent]) -> None:
    for event in events:
        if isinstance(event, UpstreamError):
            assert not event.message.startswith(INTERNAL_ERROR_PREFIX), event.message


def assert_well_formed(events: list[UpstreamEvent]) -> None:
    """Invariants every output obeys: an error is last and alone, at most one Finished per round."""
    errors = [i for i, e in enumerate(events) if isinstance(e, UpstreamError)]
    assert len(errors) <= 1
    if errors:
        assert errors[0] == len(events) - 1
    assert_no_internal_error(events)
