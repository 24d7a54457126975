"""What every API surface reports about each request it served: one `FinishedRequest` per request,
handed to an injected `RequestObserver` (never a global registry).

The composition root builds one `RequestRecorder` (api/admin/requestlog.py: it updates the Prometheus
metrics and the console's live tail) and hands it to each surface: OpenAI chat completions, Anthropic Messages and
Responses each call `report(...)` beside their access line and wrap the time a request holds an account
in `in_flight(observer, surface)`. A surface without an observer passes `None`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..chat.runner import TurnTrace
from ..chat.turn import Turn


@dataclass(frozen=True, slots=True)
class FinishedRequest:
    """One request as the operator sees it: names and numbers only (no key, prompt or token).

    `ttft`: seconds from receiving the request to its first content or reasoning token (a stream),
    or to the complete answer (a non-stream response: that is when the client's first byte leaves).
    """

    surface: str  # openai | anthropic | responses | tester
    model: str  # as the client sent it (the metrics fold unknown names into "other")
    stream: bool
    status: int  # HTTP status; 499 when the client hung up
    duration: float  # seconds
    ttft: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    account_id: str | None = None  # the console's tail shows it; never a metric label
    request_id: str = ""
    resolved_model: str | None = None  # the model id the name resolved to (`DeepSeek-R1`, `claude-*` → theirs)


class RequestObserver(Protocol):
    def request_finished(self, done: FinishedRequest) -> None:
        """Call exactly once per request, on the event loop, when its outcome is known."""
        ...

    def in_flight(self, surface: str) -> AbstractContextManager[None]:
        """`with observer.in_flight("openai"):` around the time a request runs its turn."""
        ...


@contextlib.asynccontextmanager
async def in_flight(observer: RequestObserver | None, surface: str) -> AsyncIterator[None]:
    """`async with in_flight(observer, "openai"):` the observer's in-flight block (nothing without one),
    usable in the same `async with` as the tracker and the turn."""
    if observer is None:
        yield
        return
    with observer.in_flight(surface):
        yield


def report(observer: RequestObserver | None, surface: str, turn: Turn, trace: TurnTrace, started: float,
           status: int) -> None:
    """What a surface calls beside its access-log line: the request as the runner's trace saw it
    (first output, usage, account). `started` is the surface's `time.perf_counter()` at arrival."""
    if observer is None:
        return
    usage = trace.usage
    observer.request_finished(FinishedRequest(
        surface=surface, model=turn.model_name, stream=turn.stream, status=status,
        duration=time.perf_counter() - started,
        ttft=trace.first_output - started if trace.first_output is not None else None,
        tokens_in=usage.prompt_tokens if usage is not None else None,
        tokens_out=usage.completion_tokens if usage is not None else None,
        account_id=trace.account_id, request_id=turn.request_id, resolved_model=turn.model.id))


__all__ = ["FinishedRequest", "RequestObserver", "in_flight", "report"]
