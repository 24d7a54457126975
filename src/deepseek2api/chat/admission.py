"""A turn tells whoever streams it that it got an account ("admitted"), without knowing who that is.

A stream must not commit HTTP 200 while its turn still waits in the pool's queue: a turn that then
gets no account has to be able to answer a real 429 with `Retry-After`. So the
response sends nothing at all until the turn is admitted, and only then starts keep-alives.

The runner announces admission through a context variable rather than a parameter: the stream
machinery (api/sse.py `EventChannel.start`) installs the listener in the producer task it creates,
so every API surface that runs its turn in such a task gets the behaviour without passing anything
along. Outside such a task (a non-stream reply, a test) the announcement goes nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

_listener: ContextVar[Callable[[], None] | None] = ContextVar("turn_admission_listener", default=None)


def listen(callback: Callable[[], None]) -> None:
    """Call `callback` when a turn run from the current task (or tasks it starts) gets its account."""
    _listener.set(callback)


def admitted() -> None:
    """The turn holds an account now (called by the runner for every lease it takes)."""
    callback = _listener.get()
    if callback is not None:
        callback()
