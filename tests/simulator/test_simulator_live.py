"""The simulator on a real loopback port: per-account stream limit, violations, stop_stream, disconnects."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from deepseek2api.simulator import SimulatorServer, SimUser, reply_for
from simulator_support import (
    COMPLETION,
    EMAIL,
    auth,
    complete,
    completion_body,
    decode,
    login,
    new_session,
    pow_header,
    small_config,
)


class _Stream:
    """An open completion stream that can be read piecewise (httpx allows one iteration only)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_bytes()
        self.seen = b""

    async def read_until(self, marker: bytes) -> bytes:
        async for chunk in self._chunks:
            self.seen += chunk
            if marker in self.seen:
                break
        return self.seen

    async def read_rest(self) -> bytes:
        async for chunk in self._chunks:
            self.seen += chunk
        return self.seen

    async def aclose(self) -> None:
        await self.response.aclose()


async def _open_stream(client: httpx.AsyncClient, token: str, session_id: str, prompt: str) -> _Stream:
    headers = auth(token) | {"x-ds-pow-response": await pow_header(client, token)}
    request = client.build_request("POST", COMPLETION, json=completion_body(session_id, prompt), headers=headers)
    return _Stream(await client.send(request, stream=True))


async def _stats(client: httpx.AsyncClient) -> dict:
    return (await client.get("/_sim/stats")).json()


async def _wait_idle(client: httpx.AsyncClient) -> dict:
    deadline = time.monotonic() + 10
    while True:
        stats = await _stats(client)
        if stats["active_total"] == 0 or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["429", "hint"])
async def test_second_stream_on_one_account_is_a_violation(mode: str) -> None:
    config = small_config(tokens_per_second=100, over_limit=mode, over_limit_grace=0.0)
    with SimulatorServer(config) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            first_session, other_session = await new_session(client, token), await new_session(client, token)
            first = await _open_stream(client, token, first_session, "hold [sim:words=300]")
            try:
                await first.read_until(b'"RESPONSE"')
                second = await complete(client, token, other_session, "second")
                if mode == "429":
                    assert second.status_code == 429 and second.headers["retry-after"] == "1"
                else:
                    assert second.status_code == 200
                    events = [b for b in second.text.split("\n\n") if b]
                    assert events[0].startswith("event: hint") and "rate_limit_reached" in events[0]
                    assert events[-1].startswith("event: close")
                # another account is not affected
                bob = await login(client, "bob@example.org", "bob-pw")
                assert decode((await complete(client, bob, await new_session(client, bob), "bob")).content).status \
                    == "FINISHED"
                stats = await _stats(client)
                assert stats["violations"] == 1
                assert stats["active_streams"][EMAIL] == 1 and stats["max_concurrent"][EMAIL] == 1
                await client.post("/api/v0/chat/stop_stream", headers=auth(token),
                                  json={"chat_session_id": first_session, "response_message_id": 2})
                rest = await first.read_rest()
                assert b'"STOPPED"' in rest
            finally:
                await first.aclose()
            assert (await _wait_idle(client))["active_total"] == 0
            again = await complete(client, token, first_session, "after", parent=2)
            assert decode(again.content).status == "FINISHED"
            assert (await _stats(client))["violations"] == 1


async def test_a_limit_of_two_allows_two_streams() -> None:
    with SimulatorServer(small_config(tokens_per_second=100, max_streams_per_account=2, over_limit_grace=0)) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            sessions = [await new_session(client, token) for _ in range(3)]
            streams = [await _open_stream(client, token, s, "hold [sim:stall=30]") for s in sessions[:2]]
            try:
                for stream in streams:
                    await stream.read_until(b"update_session")
                assert (await complete(client, token, sessions[2], "third")).status_code == 429
                stats = await _stats(client)
                assert stats["max_concurrent"][EMAIL] == 2 and stats["violations"] == 1
            finally:
                for stream in streams:
                    await stream.aclose()
            assert (await _wait_idle(client))["active_total"] == 0


async def test_stop_stream_ends_the_reply_with_stopped() -> None:
    with SimulatorServer(small_config(tokens_per_second=100)) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            session_id = await new_session(client, token)
            prompt = "stop me [sim:words=300]"
            stream = await _open_stream(client, token, session_id, prompt)
            try:
                await stream.read_until(b'"RESPONSE"')
                r = await client.post("/api/v0/chat/stop_stream", headers=auth(token),
                                      json={"chat_session_id": session_id, "response_message_id": 2})
                assert r.json()["code"] == 0 and r.json()["data"]["biz_code"] == 0
                body = await stream.read_rest()
            finally:
                await stream.aclose()
            got = decode(body)
            full = reply_for(prompt, thinking=False, search=False).content
            assert got.status == "STOPPED" and got.names[-1] == "close"
            assert full.startswith(got.content) and len(got.content) < len(full)
            stats = await _wait_idle(client)
            assert stats["stop_streams"] == 1 and stats["stopped"] == 1 and stats["violations"] == 0


async def test_client_disconnect_during_a_stall_frees_the_slot() -> None:
    with SimulatorServer(small_config(over_limit_grace=0)) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            session_id = await new_session(client, token)
            stream = await _open_stream(client, token, session_id, "stall [sim:stall=60]")
            await stream.read_until(b"update_session")
            assert (await _stats(client))["active_total"] == 1
            await stream.aclose()
            stats = await _wait_idle(client)
            assert stats["active_total"] == 0
            r = await complete(client, token, await new_session(client, token), "next")
            assert decode(r.content).status == "FINISHED"
            assert (await _stats(client))["violations"] == 0


async def test_next_request_right_after_close_is_not_a_violation() -> None:
    """The slot is freed before `close` is sent, so a client may go on the moment it reads it."""
    with SimulatorServer(small_config(over_limit_grace=0)) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            for i in range(15):
                session_id = await new_session(client, token)
                stream = await _open_stream(client, token, session_id, f"turn {i}")
                try:
                    body = await stream.read_until(b"event: close")
                finally:
                    await stream.aclose()
                assert decode(body).status == "FINISHED", body[-300:]
            assert (await _stats(client))["violations"] == 0


async def test_many_accounts_stream_concurrently() -> None:
    users = [SimUser(email=f"u{i}@sim.test", password="pw") for i in range(20)]
    with SimulatorServer(small_config(users=users)) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=30,
                                     limits=httpx.Limits(max_connections=50)) as client:
            async def one(i: int) -> None:
                token = await login(client, f"u{i}@sim.test", "pw")
                session_id = await new_session(client, token)
                r = await complete(client, token, session_id, f"hello {i} [sim:words=50]", thinking=True)
                expected = reply_for(f"hello {i} [sim:words=50]", thinking=True, search=False)
                got = decode(r.content)
                assert (got.content, got.reasoning) == (expected.content, expected.reasoning)

            await asyncio.gather(*(one(i) for i in range(20)))
            stats = await _wait_idle(client)
            assert stats["violations"] == 0 and stats["completions"] == 20 and stats["streams_finished"] == 20


async def test_stop_interrupts_a_stall_and_the_stream_still_decodes() -> None:
    decode_module = pytest.importorskip("deepseek2api.deepseek.decode")
    with SimulatorServer(small_config()) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=20) as client:
            token = await login(client)
            session_id = await new_session(client, token)
            stream = await _open_stream(client, token, session_id, "stall [sim:stall=60]")
            try:
                await stream.read_until(b"update_session")
                await client.post("/api/v0/chat/stop_stream", headers=auth(token),
                                  json={"chat_session_id": session_id, "response_message_id": 2})
                body = await stream.read_rest()
            finally:
                await stream.aclose()
    got = decode(body)
    assert got.status == "STOPPED" and got.content == "" and got.names[-1] == "close"
    events = decode_module.decode_body(body)
    assert [type(e).__name__ for e in events if type(e).__name__ == "UpstreamError"] == []
