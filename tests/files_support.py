"""Helpers of the files tests: real PNG and PDF bytes, data URLs, and `files_stack`, the
end-to-end stack that also checks no uploaded file outlives its session."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from openai import OpenAI

from gateway_support import Stack, running_stack


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    """A real (tiny, grey) PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf_bytes(text: str) -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nBT /F1 12 Tf (" + text.encode() + b") Tj ET\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n")


def create(client: OpenAI, **body: Any) -> Any:
    """`client.chat.completions.create` with plain dicts (the SDK's TypedDicts add nothing to these tests)."""
    return client.chat.completions.create(**body)


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def stored_files(stack: Stack) -> int:
    listing = httpx.get(f"{stack.simulator.base_url}/_sim/files", timeout=10).json()
    return int(listing["stored"])


@contextmanager
def files_stack(*, leftover: int = 0, **options: Any) -> Iterator[Stack]:
    """`running_stack` plus the files invariant: nothing stays upstream once the turns are done
    (`leftover`: files no completion could use, which upstream keeps: there is no call to delete one)."""
    with running_stack(**options) as stack:
        yield stack
        stack.wait_idle()
        assert stored_files(stack) == leftover, "an uploaded file outlived its session"



# The simulator refuses inline prompts over 60k characters, like the web chat's input limit.
LIMITED_SIM = {"max_prompt_chars": 60_000}
SMALL_INLINE = {"inline_prompt_limit": 8_000}
