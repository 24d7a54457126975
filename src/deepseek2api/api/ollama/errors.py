"""Ollama's error dialect: `{"error": "…"}` with the HTTP status (the ollama clients raise `ResponseError`
with that text and status). A stream that already started ends with the same object as its last line."""

from __future__ import annotations

import json
from typing import Final

from ..dialect import RenderedDialect
from ..errors import ApiError

PREFIX: Final = "/api/"


def is_ollama_path(path: str) -> bool:
    return path.startswith(PREFIX)


def error_line(error: ApiError) -> bytes:
    return json.dumps({"error": error.message}, ensure_ascii=False, separators=(",", ":")).encode()


def render(error: ApiError, request_id: str | None) -> tuple[int, bytes]:
    """Status and body of `error` on an Ollama path (a RenderedDialect in server.py's table)."""
    return error.status, error_line(error)


def stream_event(error: ApiError, request_id: str | None) -> bytes:
    """The last line of an NDJSON stream that already started (the clients raise it as `ResponseError`)."""
    return error_line(error) + b"\n"


OLLAMA: Final = RenderedDialect(render, stream_event)  # registered for is_ollama_path in server.py's table
