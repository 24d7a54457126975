"""AsgiTransport: an ASGI app called in-process behaves like a server on a socket, as the client needs it.

Each test drives a tiny hand-written ASGI app, so what the transport does (stream chunk by chunk, hang up
by cancelling the app, turn a crash into a dropped connection) is seen without the simulator in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client_support import collect, errors_of
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import ContentDelta, Ready
from deepseek2api.deepseek.profile import ClientProfile
from deepseek2api.deepseek.transport import Timeouts, TransportError, TransportErrorKind
from deepseek2api.deepseek.transport_asgi import AsgiTransport

TIMEOUTS = Timeouts(5.0, 5.0)
SSE_READY = b'event: ready\ndata: {"request_message_id":1,"response_message_id":2}\n\n'
SSE_TEXT = (b'data: {"v":{"response":{"message_id":2,"fragments":[{"id":1,"type":"RESPONSE","content":"Hi"}],'
            b'"status":"WIP"}}}\n\n')


async def _start(send: Any, status: int = 200, content_type: bytes = b"text/event-stream") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"Content-Type", content_type)]})


async def _body(send: Any, chunk: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def test_a_request_reaches_the_app_and_its_whole_answer_comes_back() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.update(scope=scope, body=message["body"])
        await _start(send, 201, b"application/json")
        await _body(send, b'{"a":')
        await _body(send, b"1}", more=False)

    transport = AsgiTransport(app)
    response = await transport.request("POST", "http://sim.test/api/v0/x?y=1", headers={"X-Token": "t"},
                                       body=b"{}", proxy=None, timeouts=TIMEOUTS)
    await transport.aclose()
    assert (response.status, response.content) == (201, b'{"a":1}')
    assert response.headers["content-type"] == "application/json"
    scope = seen["scope"]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/api/v0/x", b"y=1")
    assert (b"x-token", b"t") in scope["headers"] and (b"host", b"sim.test") in scope["headers"]
    assert seen["body"] == b"{}"


async def test_a_streamed_answer_arrives_chunk_by_chunk() -> None:
    """The app writes its second chunk only once the reader has the first: buffering would deadlock."""
    first_read = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await _body(send, b"one")
        await asyncio.wait_for(first_read.wait(), 10)
        await _body(send, b"two", more=False)

    transport = AsgiTransport(app)
    stream = await transport.open_stream("POST", "http://sim.test/s", headers={}, body=b"", proxy=None,
                                         timeouts=TIMEOUTS)
    chunks = aiter(stream)
    assert await asyncio.wait_for(anext(chunks), 10) == b"one"
    first_read.set()
    assert [chunk async for chunk in chunks] == [b"two"]
    await stream.aclose()
    await transport.aclose()


async def test_closing_a_stream_early_cancels_the_app() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await _body(send, b"first")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    transport = AsgiTransport(app)
    stream = await transport.open_stream("POST", "http://sim.test/s", headers={}, body=b"", proxy=None,
                                         timeouts=TIMEOUTS)
    assert await anext(aiter(stream)) == b"first"
    await asyncio.wait_for(stream.aclose(), 10)
    assert cancelled.is_set()
    await transport.aclose()


async def test_cancelling_the_wait_for_headers_cancels_the_app() -> None:
    running, cancelled = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    transport = AsgiTransport(app)
    opening = asyncio.ensure_future(transport.open_stream("POST", "http://sim.test/s", headers={}, body=b"",
                                                          proxy=None, timeouts=TIMEOUTS))
    await asyncio.wait_for(running.wait(), 10)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert cancelled.is_set()
    await transport.aclose()


async def test_closing_the_transport_hangs_up_on_open_streams() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    transport = AsgiTransport(app)
    await transport.open_stream("POST", "http://sim.test/s", headers={}, body=b"", proxy=None, timeouts=TIMEOUTS)
    await asyncio.wait_for(transport.aclose(), 10)
    assert cancelled.is_set()
    with pytest.raises(RuntimeError):
        await transport.request("GET", "http://sim.test/", headers={}, body=None, proxy=None, timeouts=TIMEOUTS)


@pytest.mark.parametrize("sent_before", [0, 1])
async def test_a_crashing_app_is_a_dropped_connection(sent_before: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if sent_before:
            await _start(send)
            await _body(send, b"partial")
        raise ValueError("boom")

    transport = AsgiTransport(app)
    with pytest.raises(TransportError) as caught:
        stream = await transport.open_stream("POST", "http://sim.test/s", headers={}, body=b"", proxy=None,
                                             timeouts=TIMEOUTS)
        assert [chunk async for chunk in stream] == [b"partial"]  # reached only when the headers were sent
    assert caught.value.kind is TransportErrorKind.NETWORK
    await transport.aclose()


async def test_an_app_returning_mid_body_is_a_dropped_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await _body(send, b"partial")

    transport = AsgiTransport(app)
    with pytest.raises(TransportError) as caught:
        await transport.request("GET", "http://sim.test/", headers={}, body=None, proxy=None, timeouts=TIMEOUTS)
    assert caught.value.kind is TransportErrorKind.NETWORK
    await transport.aclose()


async def test_a_request_that_never_completes_times_out() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(60)

    transport = AsgiTransport(app)
    with pytest.raises(TransportError) as caught:
        await transport.request("GET", "http://sim.test/", headers={}, body=None, proxy=None,
                                timeouts=Timeouts(0.1, 0.1))
    assert caught.value.kind is TransportErrorKind.NETWORK
    await transport.aclose()


async def test_the_client_reports_a_stream_cut_by_the_app_as_network() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await _body(send, SSE_READY)
        await _body(send, SSE_TEXT)
        raise ConnectionResetError("gone")

    async with DeepSeekClient(ClientProfile(base_url="http://sim.test"), transport=AsgiTransport(app)) as ds:
        events = await collect(ds.completion("tok", session_id="s", prompt="p", pow_header="h", thinking=False,
                                             search=False))
    assert isinstance(events[0], Ready) and ContentDelta("Hi") in events
    assert [e.kind for e in errors_of(events)] == [ErrorKind.NETWORK] and events[-1] is errors_of(events)[0]
