"""The contract between the turn endpoint (api/endpoint.py) and a surface's wire format: `StreamCodec`.

A surface writes one codec class in its `render.py`; the endpoint makes one instance per request and
calls it as the turn's events arrive. The codec only turns events into bytes (and, at the finish, may
do the surface's own async work, such as storing the response); when to send, keep-alives, failover,
the status line, cancellation and the access line are the endpoint's. So the codec never sees a
socket, a lease or a status code.

Call order on a stream (each at most once unless said):
    start()                         before the first event's own bytes
    text(t) / reasoning(t)          any number of times, in the order they come
    tool_call(c)                    once per finished call
    await finish(f)                 the last event; `channel.settle()` follows it
    failed(error, started)          instead of finish when the turn failed after the first byte
On a non-stream request only `await body(finish, calls)` is called. Every method returning bytes may
return `b""` to send nothing (a held-back text, a call a legacy API cannot show).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..chat.assemble import OutFinish
    from ..chat.tools.events import OutToolCall
    from .errors import ApiError


class StreamCodec(Protocol):
    """One request's wire format (see the module docstring for the call order)."""

    @property
    def media_type(self) -> bytes:
        """The stream's content type: `api/sse.py`'s `SSE_TYPE` for an event stream, or the surface's own
        (Ollama's NDJSON, Gemini's streamed JSON array). A non-stream body is always `application/json`."""
        ...

    @property
    def keepalive(self) -> bytes:
        """What the stream sends when it has been silent for `server.keepalive_interval` seconds (it must
        parse in the surface's clients wherever it lands; it may be the first bytes of the stream)."""
        ...

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers (the request id under the name the surface's SDKs read)."""
        ...

    def start(self) -> bytes:
        """The stream's opening events (role chunk, `message_start`, `response.created`...)."""
        ...

    def text(self, text: str) -> bytes:
        """Answer text (the hot path: one call per upstream token)."""
        ...

    def reasoning(self, text: str) -> bytes:
        """Visible reasoning text."""
        ...

    def tool_call(self, call: OutToolCall) -> bytes:
        """One complete tool call."""
        ...

    async def finish(self, finish: OutFinish) -> bytes:
        """The end of a successful stream (finish reason, usage, the terminator)."""
        ...

    def failed(self, error: ApiError, started: bool) -> bytes:
        """The last event of a stream whose turn failed after the first byte went out; `started` says
        whether `start()` did (only keep-alives may have been sent)."""
        ...

    async def body(self, finish: OutFinish, calls: Sequence[OutToolCall]) -> dict[str, Any]:
        """The whole answer of a non-stream request as its JSON body; `calls` are the calls in the order
        the runner emitted them."""
        ...


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """A failed turn on the stream's queue (api/sse.py `StreamError`): answered as HTTP when it is the
    first item, otherwise sent as `data` (the codec's `failed` bytes) to end the stream."""

    error: ApiError
    data: bytes

    def sse_bytes(self) -> bytes:
        return self.data


__all__ = ["StreamCodec", "StreamFailure"]
