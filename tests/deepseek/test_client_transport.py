"""DeepSeekClient transport: wire shape (headers, bodies), proxies, sessions, timeouts, broken connections."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_support import (
    ALICE,
    DEVICE_ID,
    RawServer,
    Socks5Proxy,
    client,
    closed_port,
    collect,
    content_of,
    errors_of,
    fresh_loopback_sim,
    fresh_sim,
    login,
    loopback_sim,
    profile_for,
    read_http_request,
)
from deepseek2api.background import BackgroundServer
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import ContentDelta, Finished, Ready
from deepseek2api.deepseek.profile import ClientProfile
from deepseek2api.deepseek.proxy_url import redact_proxy as redact_url
from deepseek2api.simulator import reply_for

__all__ = ["client", "fresh_loopback_sim", "fresh_sim", "loopback_sim"]  # fixtures from client_support

PROXY_PASSWORD = "Pr0xy-S3cret"
TOKEN = "tok-0123456789abcdef"
SSE_READY = b'event: ready\ndata: {"request_message_id":1,"response_message_id":2}\n\n'
SSE_TEXT = (b'data: {"v":{"response":{"message_id":2,"fragments":[{"id":1,"type":"RESPONSE","content":"Hi"}],'
            b'"status":"WIP"}}}\n\n')
SSE_FINISHED = b'data: {"p":"response/status","o":"SET","v":"FINISHED"}\n\n'


def _ok(biz_data: Any) -> Response:
    body = {"code": 0, "msg": "", "data": {"biz_code": 0, "biz_msg": "", "biz_data": biz_data}}
    return Response(json.dumps(body), media_type="application/json")


class CaptureUpstream:
    """Records every request (method, path, headers, JSON body) and answers with canned successes."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append({
            "method": request.method, "path": request.url.path, "headers": request.headers,
            "body": json.loads(raw) if raw else None,
        })
        path = request.url.path
        if path.endswith("/users/login"):
            return _ok({"code": 0, "msg": "", "user": {"token": TOKEN}})
        if path.endswith("/chat_session/create"):
            return _ok({"id": "sess-old-shape"})  # the pre-2026 answer shape
        if path.endswith(("/chat/completion", "/chat/continue")):
            return Response(SSE_READY + SSE_TEXT + SSE_FINISHED, media_type="text/event-stream; charset=utf-8")
        return _ok(None)

    def app(self) -> Starlette:
        paths = ["/api/v0/users/login", "/api/v0/users/current", "/api/v0/chat_session/create",
                 "/api/v0/chat_session/delete", "/api/v0/chat/completion", "/api/v0/chat/continue",
                 "/api/v0/chat/stop_stream"]
        return Starlette(routes=[Route(p, self.handle, methods=["GET", "POST"]) for p in paths])


@pytest.fixture(scope="module")
def capture():
    upstream = CaptureUpstream()
    with BackgroundServer(upstream.app()) as server:
        upstream.base_url = server.base_url  # type: ignore[attr-defined]
        yield upstream


def _custom_profile(base_url: str, **overrides: Any) -> ClientProfile:
    headers = {"User-Agent": "UA-test/1.0", "x-client-version": "9.9.9", "x-client-platform": "test",
               "Accept": "application/json", "Authorization": "Bearer stale-from-config"}
    return ClientProfile(base_url=base_url, headers=headers, impersonate=None, login_os="ios", **overrides)


async def test_requests_carry_profile_headers_and_protocol_bodies(capture):
    capture.requests.clear()
    base = capture.base_url
    async with DeepSeekClient(_custom_profile(base)) as ds:
        token = await ds.login(email="a@example.test", password="pw-1", device_id=DEVICE_ID)
        await ds.login(mobile="13900001111", password="pw-2", device_id="dev-2")
        session_id = await ds.create_session(token)
        events = await collect(ds.completion(token, session_id=session_id, prompt="héllo", pow_header="POW-1",
                                             thinking=True, search=False, model_type="expert"))
        more = await collect(ds.continue_stream(token, session_id=session_id, message_id=2, pow_header="POW-2"))
        await ds.stop_stream(token, session_id=session_id, response_message_id=2)
        await ds.delete_session(token, session_id=session_id)
        await ds.current_user(token)
    assert token == TOKEN and session_id == "sess-old-shape"
    assert content_of(events) == "Hi" and Finished("FINISHED") in events and Finished("FINISHED") in more
    reqs = capture.requests
    assert [r["path"].removeprefix("/api/v0/") for r in reqs] == [
        "users/login", "users/login", "chat_session/create", "chat/completion", "chat/continue",
        "chat/stop_stream", "chat_session/delete", "users/current"]
    assert all(r["headers"]["user-agent"] == "UA-test/1.0" for r in reqs)
    assert all(r["headers"]["x-client-version"] == "9.9.9" for r in reqs)
    login_email, login_mobile, create, completion, cont, stop, delete, current = reqs
    assert login_email["body"] == {"email": "a@example.test", "password": "pw-1", "device_id": DEVICE_ID, "os": "ios"}
    assert login_mobile["body"] == {"mobile": "13900001111", "area_code": None, "password": "pw-2",
                                    "device_id": "dev-2", "os": "ios"}
    for anonymous in (login_email, login_mobile):  # login is anonymous, whatever the profile holds
        assert "authorization" not in anonymous["headers"]
    for authed in (create, completion, cont, stop, delete, current):
        assert authed["headers"].getlist("authorization") == [f"Bearer {TOKEN}"]
    assert login_email["headers"]["content-type"] == "application/json"
    assert create["body"] == {"agent": "chat"}
    assert completion["body"] == {
        "chat_session_id": "sess-old-shape", "parent_message_id": None, "model_type": "expert", "prompt": "héllo",
        "ref_file_ids": [], "thinking_enabled": True, "search_enabled": False, "preempt": False}
    assert completion["headers"]["x-ds-pow-response"] == "POW-1"
    assert completion["headers"]["referer"] == f"{base}/a/chat/s/sess-old-shape"
    assert cont["body"] == {"chat_session_id": "sess-old-shape", "message_id": 2, "fallback_to_resume": True}
    assert cont["headers"]["x-ds-pow-response"] == "POW-2"
    assert cont["headers"]["referer"] == f"{base}/a/chat/s/sess-old-shape"
    assert stop["body"] == {"chat_session_id": "sess-old-shape", "response_message_id": 2}
    assert delete["body"] == {"chat_session_id": "sess-old-shape"}
    assert current["method"] == "GET"
    assert "x-ds-pow-response" not in create["headers"]


# ------------------------------------------------------------------------------------ network failures


async def test_connection_refused_is_network(fresh_loopback_sim):
    base = f"http://127.0.0.1:{closed_port()}"
    async with DeepSeekClient(profile_for(base)) as ds:
        with pytest.raises(UpstreamFailure) as caught:
            await ds.login(email=ALICE.email, password=ALICE.password, device_id=DEVICE_ID)
        assert caught.value.kind is ErrorKind.NETWORK
        assert ALICE.password not in str(caught.value)
        with pytest.raises(UpstreamFailure) as caught:
            await ds.create_session(TOKEN)
        assert caught.value.kind is ErrorKind.NETWORK and TOKEN not in caught.value.error.message
        events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="POW-SECRET",
                                             thinking=False, search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.NETWORK] and len(events) == 1
    assert TOKEN not in events[0].message and "POW-SECRET" not in events[0].message


@pytest.mark.parametrize("scheme", ["http", "https", "socks4", "socks5", "socks5h"])
async def test_dead_proxy_is_network_and_the_password_stays_secret(fresh_loopback_sim, scheme):
    proxy = f"{scheme}://proxyuser:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}"
    async with DeepSeekClient(profile_for(fresh_loopback_sim.base_url)) as ds:
        with pytest.raises(UpstreamFailure) as caught:
            await ds.login(email=ALICE.email, password=ALICE.password, device_id=DEVICE_ID, proxy=proxy)
        events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h", thinking=False,
                                             search=False, proxy=proxy))
    for error in (caught.value.error, events[-1]):
        assert error.kind is ErrorKind.NETWORK
        assert PROXY_PASSWORD not in error.message and "proxyuser" not in error.message
        assert f"{scheme}://***@127.0.0.1" in error.message
    assert PROXY_PASSWORD not in str(caught.value)
    assert fresh_loopback_sim.state.stats()["requests"].get("login", 0) == 0  # nothing went around the proxy


async def test_socks5_proxy_carries_every_call(fresh_loopback_sim):
    async with Socks5Proxy("proxyuser", PROXY_PASSWORD) as proxy:
        async with DeepSeekClient(profile_for(fresh_loopback_sim.base_url)) as ds:
            url = proxy.url("socks5h")
            token = await login(ds, ALICE, proxy=url)
            session_id, header = await ds.prepare_completion(token, proxy=url)
            events = await collect(ds.completion(token, session_id=session_id, prompt="via proxy", pow_header=header,
                                                 thinking=False, search=False, proxy=url))
            assert content_of(events) == reply_for("via proxy", thinking=False, search=False).content
            sim_port = int(fresh_loopback_sim.base_url.rsplit(":", 1)[1])
            assert proxy.targets and all(target == ("127.0.0.1", sim_port) for target in proxy.targets)

            bad = proxy.url("socks5", password="wrong-Pr0xy-pw")
            with pytest.raises(UpstreamFailure) as caught:
                await ds.create_session(token, proxy=bad)
            assert caught.value.kind is ErrorKind.NETWORK
            assert "wrong-Pr0xy-pw" not in str(caught.value) and proxy.auth_failures == 1


async def test_http_proxy_receives_the_request_with_its_credentials(fresh_loopback_sim):
    seen: list[tuple[str, dict[str, str]]] = []

    async def forward_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, _ = await read_http_request(reader)
        seen.append((line, headers))
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    async with RawServer(forward_proxy) as server:
        proxy = f"http://proxyuser:{PROXY_PASSWORD}@127.0.0.1:{server.port}"
        async with DeepSeekClient(profile_for(fresh_loopback_sim.base_url)) as ds:
            with pytest.raises(UpstreamFailure) as caught:
                await login(ds, ALICE, proxy=proxy)
    assert PROXY_PASSWORD not in str(caught.value)
    line, headers = seen[0]
    assert line == f"POST {fresh_loopback_sim.base_url}/api/v0/users/login HTTP/1.1"
    expected = base64.b64encode(f"proxyuser:{PROXY_PASSWORD}".encode()).decode()
    assert headers["proxy-authorization"] == f"Basic {expected}"


async def test_one_session_per_proxy_reused_across_calls(fresh_loopback_sim):
    dead_a = f"socks5h://u:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}"
    dead_b = f"http://127.0.0.1:{closed_port()}"
    ds = DeepSeekClient(profile_for(fresh_loopback_sim.base_url), max_clients=37)
    token = await login(ds, ALICE)
    await ds.create_session(token, proxy="")  # "" is direct too
    direct = ds.transport._sessions[None]
    for proxy in (dead_a, dead_b, dead_a):
        with pytest.raises(UpstreamFailure):
            await ds.create_session(token, proxy=proxy)
    first_a = ds.transport._sessions[dead_a]
    with pytest.raises(UpstreamFailure):
        await ds.create_session(token, proxy=dead_a)
    assert set(ds.transport._sessions) == {None, dead_a, dead_b}
    assert ds.transport._sessions[None] is direct and ds.transport._sessions[dead_a] is first_a
    assert all(s.max_clients == 37 for s in ds.transport._sessions.values())
    assert ds.transport._sessions[dead_a].proxies == {"all": dead_a} and ds.transport._sessions[None].proxies == {}
    assert direct.impersonate == ClientProfile().impersonate == "chrome131_android"
    await ds.aclose()
    assert ds.transport._sessions == {}
    with pytest.raises(RuntimeError):
        await ds.create_session(token)


async def test_plain_libcurl_without_impersonation(fresh_loopback_sim):
    async with DeepSeekClient(profile_for(fresh_loopback_sim.base_url, impersonate=None)) as ds:
        token = await login(ds, ALICE)
        assert ds.transport._sessions[None].impersonate is None
        assert (await ds.current_user(token))["token"] == token


# ------------------------------------------------------------------------------ timeouts, broken streams


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_http_request(reader)
    await asyncio.sleep(60)  # never answers (cancelled when the test server closes)


async def test_no_first_byte_is_network():
    async with RawServer(_hang) as server:
        profile = profile_for(server.base_url, first_byte_timeout=0.5, idle_timeout=0.5)
        async with DeepSeekClient(profile) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.NETWORK]
    assert events[-1].message == "POST /api/v0/chat/completion: no response from upstream within 0.5 s"


async def test_json_call_timeout_is_network():
    async with RawServer(_hang) as server:
        async with DeepSeekClient(profile_for(server.base_url, request_timeout=0.5, connect_timeout=0.5)) as ds:
            with pytest.raises(UpstreamFailure) as caught:
                await ds.create_session(TOKEN)
    assert caught.value.kind is ErrorKind.NETWORK and TOKEN not in str(caught.value)


def _chunked_stream(*pieces: bytes, terminate: bool):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        if terminate:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        # without the terminating chunk the connection is dropped mid-body

    return handler


async def test_connection_dropped_mid_stream_is_network():
    async with RawServer(_chunked_stream(SSE_READY, SSE_TEXT, terminate=False)) as server:
        async with DeepSeekClient(profile_for(server.base_url)) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert isinstance(events[0], Ready) and ContentDelta("Hi") in events
    assert [e.kind for e in errors_of(events)] == [ErrorKind.NETWORK]


async def test_connection_dropped_after_the_finish_is_harmless():
    async with RawServer(_chunked_stream(SSE_READY, SSE_TEXT, SSE_FINISHED, terminate=False)) as server:
        async with DeepSeekClient(profile_for(server.base_url)) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert not errors_of(events) and Finished("FINISHED") in events


async def test_clean_end_without_status_is_stream_cut():
    async with RawServer(_chunked_stream(SSE_READY, SSE_TEXT, terminate=True)) as server:
        async with DeepSeekClient(profile_for(server.base_url)) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.STREAM_CUT]


async def test_endless_non_sse_answer_is_read_only_up_to_a_bound():
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        piece = b"x" * 65536
        for _ in range(10_000):  # ~650 MB if anyone read it all
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()

    async with RawServer(endless) as server:
        async with DeepSeekClient(profile_for(server.base_url)) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.PROTOCOL]


async def test_json_error_answer_to_a_stream_request_is_classified():
    async def envelope(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        body = b'{"code":40003,"msg":"Authorization Failed (invalid token)","data":null}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()

    async with RawServer(envelope) as server:
        async with DeepSeekClient(profile_for(server.base_url)) as ds:
            events = await collect(ds.completion(TOKEN, session_id="s", prompt="p", pow_header="h",
                                                 thinking=False, search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.TOKEN_INVALID] and len(events) == 1


def test_redact_url():
    assert redact_url(None) == "direct"
    assert redact_url("") == "direct"
    assert redact_url("http://h:8080") == "http://h:8080"
    assert redact_url("socks5h://user:p%40ss@h:1080") == "socks5h://***@h:1080"
    assert redact_url("https://u:p@proxy.example:8443/") == "https://***@proxy.example:8443/"


async def test_control_characters_in_a_token_are_refused(client):
    with pytest.raises(UpstreamFailure) as caught:
        await client.create_session("tok\r\nX-Injected: 1")
    assert caught.value.kind is ErrorKind.TOKEN_INVALID
