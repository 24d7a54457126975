"""Process-level tuning for a long-running gateway process: the garbage collector and the C heap.

Measured with `bench/` (numbers in bench/README.md):
- `gc.freeze()` once the app is built: the modules, routes and models created at start-up live for
  the whole process, yet every full collection walked them all again while streams were running.
- two malloc arenas instead of glibc's default of eight per core: worker threads (PoW solving, token
  counting) each grew their own arena, which kept ~7 MB more RSS at 200 concurrent streams.
- `malloc_trim` after loading the tokenizer: parsing tokenizer.json leaves ~20 MB of freed heap that
  glibc would otherwise keep.

Only the server entry points call `tune_for_serving()`; library users and tests are left alone.
Everything here is best effort and a no-op where it does not apply (non-glibc platforms).
"""

from __future__ import annotations

import ctypes
import gc

_M_ARENA_MAX = -8  # mallopt() parameter number in glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def tune_for_serving() -> None:
    """Call once the app is built and before the server starts its threads."""
    gc.freeze()
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, 2)


def return_free_heap() -> None:
    """Give freed malloc memory back to the OS (glibc's malloc_trim)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
