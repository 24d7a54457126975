"""The access log: exactly one line per HTTP request, whoever answered it.

The middleware opens a `AccessEntry` for every request. A serving object (a chat surface) that will
write the request's line itself — it knows the account, the tokens and how a stream really ended —
claims the entry through `AccessRecord.claim`; every other request (401s, 404s, 400s of malformed
bodies, 413s, `/v1/models`, `/health`) gets its line from the middleware when the response is done.
So key guessing shows up in the log (key `unknown`, never the key), and nothing is logged twice.

Every client-controlled value goes through `logs.log_value`, so a model name with a line break or a
path with `%0a` cannot split a line or forge a field. The request id is always the gateway's own
(`req_…`); an `X-Request-Id` / `X-Client-Request-Id` the client sent is logged beside it as
`client_request_id`, so a client can neither repeat an existing id nor pick one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..logs import log_value

if TYPE_CHECKING:
    from ..chat.usage import TurnUsage

access_log = logging.getLogger("deepseek2api.access")  # a stable name: operators filter on it

QUIET_PATHS = frozenset({"/health", "/healthz", "/ready", "/metrics"})  # probes: successes at debug level


class Trace(Protocol):
    """What the line shows of a turn (chat/runner.py TurnTrace)."""

    account_id: str | None
    attempts: int
    upstream_tokens: int | None


@dataclass(slots=True)
class AccessEntry:
    """What the middleware knows of a request, kept in `scope["state"]["access"]`."""

    request_id: str
    client_request_id: str | None
    method: str
    path: str
    started: float
    key_name: str | None = None  # set once the caller is authenticated
    error_code: str | None = None  # set by the error handlers (api/dialect.py)
    claimed: bool = False  # a serving object writes this request's line
    status: int = 0  # the status the client got (0: none was sent)


def entry_of(scope: Any) -> AccessEntry | None:
    """The request's entry (from an ASGI scope or a Starlette `Request`)."""
    state = scope.get("state") if isinstance(scope, dict) else getattr(scope, "scope", {}).get("state")
    entry = state.get("access") if isinstance(state, dict) else None
    return entry if isinstance(entry, AccessEntry) else None


def note_key(scope: Any, key_name: str) -> None:
    """Remember who the caller is, for a line the middleware writes."""
    entry = entry_of(scope)
    if entry is not None:
        entry.key_name = key_name


def claim(scope: Any) -> None:
    """A surface that writes its own access line says so (the middleware then writes none)."""
    entry = entry_of(scope)
    if entry is not None:
        entry.claimed = True


def note_error(scope: Any, code: str | None) -> None:
    entry = entry_of(scope)
    if entry is not None and code:
        entry.error_code = code


def cancelled_outcome(stalled: bool) -> tuple[int, str]:
    """Status and error code of a turn that was cancelled: the client hung up (499), or stopped reading
    (200, cut by the gateway's write timeout: api/sse.py)."""
    return (200, "write_timeout") if stalled else (499, "client_closed")


def write_line(entry: AccessEntry, *, status: int, key_name: str | None = None, model: str | None = None,
               stream: bool | None = None, error_code: str | None = None, trace: Trace | None = None,
               usage: TurnUsage | None = None, started: float | None = None) -> None:
    """One access line; names and numbers only, never keys, tokens or passwords."""
    latency_ms = (time.perf_counter() - (started if started is not None else entry.started)) * 1000
    quiet = status < 400 and entry.path in QUIET_PATHS
    if not access_log.isEnabledFor(logging.DEBUG if quiet else logging.INFO):
        return
    key = key_name or entry.key_name or ("unknown" if status == 401 else "-")
    error = error_code or entry.error_code
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "request_id=%s client_request_id=%s key=%s method=%s path=%s account=%s model=%s stream=%s status=%s%s "
        "latency_ms=%.0f attempts=%s prompt_tokens=%s completion_tokens=%s upstream_tokens=%s",
        entry.request_id, log_value(entry.client_request_id or ""), log_value(key), log_value(entry.method),
        log_value(entry.path), log_value(trace.account_id or "") if trace else "-", log_value(model or ""),
        "-" if stream is None else str(stream).lower(), status, f" error={log_value(error)}" if error else "",
        latency_ms, trace.attempts if trace else "-",
        usage.prompt_tokens if usage else "-", usage.completion_tokens if usage else "-",
        trace.upstream_tokens if trace is not None and trace.upstream_tokens is not None else "-",
    )


@dataclass(slots=True)
class AccessRecord:
    """The line of a request a serving object answers; `write` it exactly once when the turn is over."""

    entry: AccessEntry
    key_name: str
    model: str
    stream: bool
    started: float
    status: int = 200
    error_code: str | None = None
    usage: TurnUsage | None = None

    @classmethod
    def claim(cls, request: Any, request_id: str, key_name: str, model: str, stream: bool) -> AccessRecord:
        """Take over the request's line from the middleware (which then writes none)."""
        entry = entry_of(request)
        if entry is None:  # an app without the middleware (some tests): a line of its own
            entry = AccessEntry(request_id, None, "POST", "-", time.perf_counter())
        entry.claimed = True
        entry.key_name = key_name
        return cls(entry, key_name, model, stream, entry.started)

    @property
    def request_id(self) -> str:
        return self.entry.request_id

    def write(self, trace: Trace | None) -> None:
        write_line(self.entry, status=self.status, key_name=self.key_name, model=self.model, stream=self.stream,
                   error_code=self.error_code, trace=trace, usage=self.usage, started=self.started)
