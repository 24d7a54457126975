"""Test-only builders of OpenAI chunk bytes, written the slow, obvious way (a dict, then json.dumps),
so the gateway's hot-path `ChunkEncoder` can be compared against them byte for byte."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deepseek2api.api.openai.render import SYSTEM_FINGERPRINT


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def chunk_dict(
    id: str,
    created: int,
    model: str,
    delta: Mapping[str, Any],
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def sse(payload: Mapping[str, Any]) -> bytes:
    """One SSE event: `data: <one-line JSON>` and a blank line."""
    return b"data: " + _dumps(payload).encode() + b"\n\n"


def chunk_bytes(
    id: str,
    created: int,
    model: str,
    delta: Mapping[str, Any],
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> bytes:
    """A `chat.completion.chunk` SSE event (one choice, index 0)."""
    return sse(chunk_dict(id, created, model, delta, finish_reason, usage))


def usage_chunk_bytes(id: str, created: int, model: str, usage: Mapping[str, Any]) -> bytes:
    """OpenAI's usage-only chunk (`choices: []`), sent before [DONE] when include_usage is on."""
    return sse(
        {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [],
            "usage": usage,
        }
    )

