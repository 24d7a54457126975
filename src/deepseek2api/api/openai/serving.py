"""OpenAI chat completions: request → ChatRequest → runner → OpenAI JSON or SSE chunks.

The hot path (one chunk per upstream token) is kept cheap: the chunk envelope is encoded once per
request and each chunk only JSON-encodes its text; chunks already queued go out in one write.
Usage is counted once per turn, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from ...chat.assemble import OutContent, OutEvent, OutFinish, OutReasoning
from ...chat.prompt import build_prompt
from ...chat.request import ChatRequest
from ...chat.runner import TurnFailed, TurnTrace
from ...chat.usage import count_many
from ..auth import Caller
from ..errors import ApiError, bad_request, from_upstream
from ..sse import KEEPALIVE, EventChannel, EventStreamResponse
from .protocol import (DONE, ChunkEncoder, RequestInvalid, completion_body, new_completion_id, now,
                       to_chat_request, usage_body, validate_request)

if TYPE_CHECKING:
    from ...server import Gateway

access_log = logging.getLogger("deepseek2api.access")


@dataclass(frozen=True, slots=True)
class TurnUsage:
    prompt_tokens: int
    content_tokens: int
    reasoning_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return usage_body(self.prompt_tokens, self.content_tokens + self.reasoning_tokens, self.reasoning_tokens)


async def count_usage(prompt: str, content: str, reasoning: str) -> TurnUsage:
    """Count with DeepSeek's tokenizer in a worker thread (long answers take milliseconds)."""
    return TurnUsage(*await asyncio.to_thread(count_many, (prompt, content, reasoning)))


def citation_fields(finish: OutFinish) -> dict[str, Any]:
    """Search results as extra response fields: `citations` (URLs) and `search_results` (details)."""
    if not finish.citations:
        return {}
    results = [
        {"index": r.cite_index, "url": r.url, "title": r.title, "snippet": r.snippet, "site_name": r.site_name}
        for r in finish.citations
    ]
    return {"citations": [r.url for r in finish.citations], "search_results": results}


@dataclass(slots=True)
class AccessRecord:
    """One access-log line; holds names and numbers only, never keys, tokens or emails' passwords."""

    request_id: str
    key_name: str
    model: str
    stream: bool
    started: float
    status: int = 200
    error_code: str | None = None
    usage: TurnUsage | None = None

    def write(self, trace: TurnTrace) -> None:
        latency_ms = (time.perf_counter() - self.started) * 1000
        usage = self.usage
        access_log.info(
            "request_id=%s key=%s account=%s model=%s stream=%s status=%s%s latency_ms=%.0f attempts=%d "
            "prompt_tokens=%s completion_tokens=%s upstream_tokens=%s",
            self.request_id, self.key_name, trace.account_id or "-", self.model, str(self.stream).lower(),
            self.status, f" error={self.error_code}" if self.error_code else "", latency_ms, trace.attempts,
            usage.prompt_tokens if usage else "-",
            (usage.content_tokens + usage.reasoning_tokens) if usage else "-",
            trace.upstream_tokens if trace.upstream_tokens is not None else "-",
        )


class ChatCompletions:
    """`POST /v1/chat/completions`."""

    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway

    async def handle(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await _read_json(request)
        try:
            parsed = validate_request(body)
            chat = to_chat_request(parsed, self.gateway.registry, request_id)
        except RequestInvalid as invalid:
            raise ApiError(invalid.status, invalid.message, invalid.type, invalid.param, invalid.code) from None
        prompt = build_prompt(chat.messages)
        record = AccessRecord(request_id, caller.key_name, chat.model_name, chat.stream, time.perf_counter())
        if chat.stream:
            return await self._stream(chat, prompt, caller, record)
        return await self._complete(chat, prompt, caller, record, request.receive)

    async def _complete(self, chat: ChatRequest, prompt: str, caller: Caller, record: AccessRecord,
                        receive: Receive) -> Response:
        """The whole answer as one JSON body, sent as soon as the reply is complete.

        The turn runs in its own task: the response goes out when `OutFinish` arrives, while the turn
        finishes its upstream cleanup (delete the web session) still holding the account. A client
        that hangs up before that cancels the turn (lease back, upstream stopped): otherwise an upstream
        that never ends would keep its account busy forever.
        """
        gateway = self.gateway
        trace = TurnTrace()
        finished: asyncio.Future[OutFinish] = asyncio.get_running_loop().create_future()

        async def run_turn() -> None:
            try:
                turn = self._run(chat, prompt, caller, trace, buffered=True)
                async with gateway.inflight(), aclosing(turn) as outs:
                    async for out in outs:
                        if isinstance(out, OutFinish) and not finished.done():
                            finished.set_result(out)  # carries the whole text (the assembler kept it)
            except asyncio.CancelledError:
                finished.cancel()
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the request through the future
                if not finished.done():
                    finished.set_exception(exc)

        task = gateway.spawn(run_turn())
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((finished, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when we are cancelled ourselves (server shutdown)
            watcher.cancel()
            if not finished.done():
                task.cancel()
                await asyncio.wait((task,))  # the turn's cleanup runs to the end
        if finished.cancelled():
            record.status, record.error_code = 499, "client_closed"
            record.write(trace)
            raise ApiError(499, "The client closed the connection before the reply was complete.",
                           "invalid_request_error", None, "client_closed")
        failure = finished.exception()
        if failure is not None:
            error = self._api_error(failure, caller, trace)
            assert error is not None
            record.status, record.error_code = error.status, error.code
            record.write(trace)
            raise error from None
        finish = finished.result()
        content_text, reasoning_text = finish.content_text, finish.reasoning_text
        usage = await count_usage(prompt, content_text, reasoning_text)
        body = completion_body(new_completion_id(), now(), chat.model_name, content_text, finish.finish_reason,
                               usage.as_dict(),
                               reasoning_text if (chat.model.thinking or reasoning_text) else None)
        body.update(citation_fields(finish))
        record.usage = usage
        record.write(trace)
        return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                        media_type="application/json")

    async def _stream(self, chat: ChatRequest, prompt: str, caller: Caller, record: AccessRecord) -> Response:
        gateway = self.gateway
        settings = gateway.settings
        encoder = ChunkEncoder(new_completion_id(), now(), chat.model_name)
        trace = TurnTrace()
        # Usage goes on exactly ONE chunk: clients that add up usage over the chunks (LangChain's
        # stream_usage) would count it twice otherwise. "both": OpenAI's usage-only chunk when the client
        # asked for it (include_usage), else DeepSeek's placement on the finish chunk.
        usage_chunk = chat.include_usage and settings.output.usage_chunk in ("both", "openai")
        usage_on_finish = settings.output.usage_chunk == "deepseek" or (
            settings.output.usage_chunk == "both" and not usage_chunk)

        async def produce(channel: EventChannel) -> None:
            started = False
            try:
                async with gateway.inflight(), aclosing(self._run(chat, prompt, caller, trace)) as outs:
                    async for out in outs:
                        if not started:
                            channel.put(encoder.role(chat.model.thinking))
                            started = True
                        if isinstance(out, OutContent):
                            await channel.write(encoder.content(out.text))  # the hot path
                        elif isinstance(out, OutReasoning):
                            await channel.write(encoder.reasoning(out.text))
                        elif isinstance(out, OutFinish):  # the whole text is on it: no copy kept here
                            usage = await count_usage(prompt, out.content_text, out.reasoning_text)
                            record.usage = usage
                            usage_dict = usage.as_dict()
                            on_finish = usage_dict if usage_on_finish else None
                            channel.put(encoder.chunk({}, out.finish_reason, on_finish, citation_fields(out)))
                            if usage_chunk:
                                channel.put(encoder.usage(usage_dict))
                            channel.put(DONE)
                            channel.settle()
            except BaseException as exc:
                error = self._api_error(exc, caller, trace)
                if error is None:
                    record.status, record.error_code = 499, "client_closed"
                    raise
                record.status, record.error_code = error.status, error.code
                # Before any byte the handler can still answer with a real HTTP error.
                channel.queue.put_nowait(error)  # bytes once the stream started, HTTP before
            finally:
                record.write(trace)

        channel = EventChannel()
        channel.start(produce)
        gateway.track(channel.producer)
        keepalive = settings.server.keepalive_interval
        first = await channel.first(keepalive)
        if isinstance(first, ApiError):
            raise first
        if first is None:
            first = KEEPALIVE
        headers = [(b"x-request-id", record.request_id.encode())]
        return EventStreamResponse(channel, keepalive=keepalive, headers=headers, first=first)

    def _run(self, chat: ChatRequest, prompt: str, caller: Caller, trace: TurnTrace,
             buffered: bool = False) -> AsyncIterator[OutEvent]:
        return self.gateway.runner.run(chat, prompt, self.gateway.leases_for(caller), trace, buffered=buffered)

    def _api_error(self, exc: BaseException, caller: Caller, trace: TurnTrace) -> ApiError | None:
        """Translate a turn failure into an ApiError; None for cancellation (client gone)."""
        if isinstance(exc, TurnFailed):
            return from_upstream(exc.error, attempts=trace.attempts,
                                 passthrough=caller.passthrough_token is not None)
        error = self.gateway.pool_error(exc)
        if error is not None:
            return error
        if isinstance(exc, Exception):
            logging.getLogger("deepseek2api.runner").exception("unexpected failure in a chat turn")
            return ApiError(500, "internal error in the gateway; see its log", "server_error", None, "internal_error")
        return None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("The request body is empty; send a JSON object.", None, "invalid_json")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("The request body is not valid UTF-8.", None, "invalid_json") from None
    except RecursionError:  # json raises this (not a ValueError) for very deep nesting
        raise bad_request("The request body is not valid JSON: nested too deeply.", None, "invalid_json") from None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.", None, "invalid_json") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(body):
        raise bad_request("The request body contains a lone UTF-16 surrogate (U+D800-U+DFFF, escaped or raw), "
                          "which is not valid Unicode text.", None, "invalid_json")
    return body


# Cheap pre-check for a `\\udXXX` escape or a raw surrogate (json.loads decodes bytes with surrogatepass).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them."""
    raise ValueError(f"{name} is not allowed in JSON")


def _has_lone_surrogate(body: Any) -> bool:
    """True when a string holds half a surrogate pair (it could not be encoded to send upstream)."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


