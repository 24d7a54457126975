"""Every fault the simulator can inject, by header, directive, account queue and probability."""

from __future__ import annotations

import pytest

from deepseek2api.simulator import reply_for
from deepseek2api.simulator.turns import REFUSAL
from simulator_support import (
    CONTINUE,
    EMAIL,
    PASSWORD,
    asgi_client,
    auth,
    complete,
    decode,
    login,
    new_session,
    pow_header,
    small_config,
    sse_events,
    state_of,
)


async def _setup(client):
    token = await login(client)
    return token, await new_session(client, token)


async def test_token_expired_invalidates_the_token_until_relogin() -> None:
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x", headers={"x-sim-fault": "token_expired"})
        assert r.json() == {"code": 40003, "msg": "Authorization Failed (invalid token)", "data": None}
        r = await client.post("/api/v0/chat_session/create", json={}, headers=auth(token))
        assert r.json()["code"] == 40003
        fresh = await login(client)
        r = await complete(client, fresh, await new_session(client, fresh), "x")
        assert decode(r.content).status == "FINISHED"
        assert state_of(client).stats()["faults"] == {"token_expired": 1}


async def test_pow_rejected() -> None:
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:fault=pow_rejected]")
        assert r.json() == {"code": 40301, "msg": "INVALID_POW_RESPONSE", "data": None}


async def test_mute_envelope_with_mute_until() -> None:
    async with asgi_client(small_config(mute_seconds=100)) as client:
        state = state_of(client)
        state.clock = lambda: 1_800_000_000.0
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:fault=mute]")
        assert r.status_code == 200
        assert r.json() == {"code": 0, "msg": "", "data": {"biz_code": 5, "biz_msg": "user is muted",
                                                            "biz_data": {"is_muted": 1, "mute_until": 1_800_000_100.0}}}


async def test_ban_sticks_until_reset() -> None:
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x", headers={"x-sim-fault": "ban"})
        assert r.json()["code"] == 40012
        r = await client.post("/api/v0/chat_session/create", json={}, headers=auth(token))
        assert r.json()["code"] == 40012
        r = await client.post("/api/v0/users/login", json={"email": EMAIL, "password": PASSWORD})
        assert r.json()["data"]["biz_code"] == 10
        await client.post("/_sim/reset")
        assert await login(client)


async def test_rate_limit_is_http_429_with_retry_after() -> None:
    async with asgi_client(small_config(retry_after=2.5)) as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:fault=rate_limit]")
        assert r.status_code == 429 and r.headers["retry-after"] == "2.5"


@pytest.mark.parametrize("fmt", ["C", "A"])
async def test_busy(fmt: str) -> None:
    async with asgi_client(small_config(stream_format=fmt)) as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:fault=busy]")
        if fmt == "A":
            events = sse_events(r.content)
            assert events[0][1]["choices"][0]["finish_reason"] == "backend_busy" and events[-1][1] == "[DONE]"
        else:
            assert r.json()["code"] == 1001 and r.json()["data"] is None


@pytest.mark.parametrize("status", [403, 200])
async def test_waf_page(status: int) -> None:
    async with asgi_client(small_config(waf_status=status)) as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x", headers={"x-sim-fault": "waf"})
        assert r.status_code == status and r.headers["content-type"].startswith("text/html")
        assert "<title>Just a moment...</title>" in r.text


async def test_input_too_long_hint_by_fault_and_by_length() -> None:
    async with asgi_client(small_config(max_prompt_chars=20)) as client:
        token, session_id = await _setup(client)
        for prompt in ("short [sim:fault=input_too_long]"[:40], "y" * 21):
            r = await complete(client, token, session_id, prompt)
            events = sse_events(r.content)
            assert [n for n, _ in events] == ["hint", "close"]
            assert events[0][1]["type"] == "error" and events[0][1]["finish_reason"] == "input_exceeds_limit"
        r = await complete(client, token, session_id, "y" * 20)
        assert decode(r.content).status == "FINISHED"


@pytest.mark.parametrize("fmt", ["C", "C'", "B", "A"])
async def test_content_filter_replaces_the_answer(fmt: str) -> None:
    async with asgi_client(small_config(stream_format=fmt)) as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:fault=content_filter] [sim:words=30]")
        got = decode(r.content)
        assert got.status == ("content_filter" if fmt == "A" else "CONTENT_FILTER")
        assert got.content.endswith(REFUSAL)
        if fmt != "A":  # Gen A has no way to take back text already sent
            assert got.content == REFUSAL


async def test_cut_stream_ends_without_status_or_close() -> None:
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        prompt = "x [sim:fault=cut] [sim:words=40]"
        r = await complete(client, token, session_id, prompt)
        got = decode(r.content)
        full = reply_for(prompt, thinking=False, search=False).content
        assert got.status == "WIP" and "close" not in got.names and "FINISHED" not in r.text
        assert got.content and full.startswith(got.content) and got.content != full


async def test_stall_and_slow_still_deliver_the_reply() -> None:
    async with asgi_client(small_config(slow_tokens_per_second=1000)) as client:
        token, session_id = await _setup(client)
        r = await complete(client, token, session_id, "x [sim:stall=0.01] [sim:fault=slow]")
        assert decode(r.content).content == reply_for("x [sim:stall=0.01] [sim:fault=slow]", thinking=False,
                                                      search=False).content
        assert state_of(client).stats()["faults"] == {"stall": 1, "slow": 1}


async def test_queued_account_faults_are_consumed_in_order() -> None:
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        r = await client.post("/_sim/faults", json={"account": EMAIL, "fault": "busy", "count": 2})
        assert r.json() == {EMAIL: [{"fault": "busy", "count": 2, "on": "completion"}]}
        # other endpoints do not consume a completion fault
        await new_session(client, token)
        for _ in range(2):
            assert (await complete(client, token, session_id, "x")).json()["code"] == 1001
        assert decode((await complete(client, token, session_id, "x")).content).status == "FINISHED"
        assert state_of(client).stats()["pending_faults"] == {}


async def test_queued_fault_on_login_and_on_any_endpoint() -> None:
    async with asgi_client() as client:
        await client.post("/_sim/faults", json={"account": EMAIL, "fault": "waf", "on": "login"})
        r = await client.post("/api/v0/users/login", json={"email": EMAIL, "password": PASSWORD})
        assert "Just a moment" in r.text
        token = await login(client)
        await client.post("/_sim/faults", json={"account": EMAIL, "fault": "rate_limit", "on": "any"})
        r = await client.post("/api/v0/chat_session/create", json={}, headers=auth(token))
        assert r.status_code == 429
        assert await new_session(client, token)


async def test_fault_rates_roll_per_completion() -> None:
    async with asgi_client(small_config(fault_rates={"busy": 1.0})) as client:
        token, session_id = await _setup(client)
        assert (await complete(client, token, session_id, "x")).json()["code"] == 1001
        await client.post("/_sim/config", json={"fault_rates": {"busy": 0.0}})
        assert decode((await complete(client, token, session_id, "x")).content).status == "FINISHED"


async def test_header_fault_on_other_endpoints() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await client.post("/api/v0/chat/create_pow_challenge", json={"target_path": "/api/v0/chat/completion"},
                              headers=auth(token) | {"x-sim-fault": "busy"})
        assert r.json()["code"] == 1001
        r = await client.get("/api/v0/users/current", headers=auth(token) | {"x-sim-fault": "token_expired"})
        assert r.json()["code"] == 40003


# --- INCOMPLETE + chat/continue --------------------------------------------------------------------------

async def _continue(client, token, session_id, message_id, *, path=CONTINUE):
    headers = auth(token) | {"x-ds-pow-response": await pow_header(client, token, path)}
    return await client.post(CONTINUE, json={"chat_session_id": session_id, "message_id": message_id,
                                             "fallback_to_resume": True}, headers=headers)


@pytest.mark.parametrize("fmt", ["C", "C'", "B"])
async def test_incomplete_then_continue_to_finished(fmt: str) -> None:
    prompt = "long [sim:fault=incomplete] [sim:rounds=2] [sim:words=20]"
    expected = reply_for(prompt, thinking=True, search=False)
    async with asgi_client(small_config(stream_format=fmt)) as client:
        token, session_id = await _setup(client)
        first = await complete(client, token, session_id, prompt, thinking=True)
        got = decode(first.content)
        assert got.status == "INCOMPLETE" and got.root["response"]["auto_continue"] is True
        assert got.reasoning == expected.reasoning and expected.content.startswith(got.content)
        # the PoW must be minted for chat/continue itself
        wrong = await _continue(client, token, session_id, 2, path="/api/v0/chat/completion")
        assert wrong.json()["code"] == 40301
        second = await _continue(client, token, session_id, 2)
        snapshot = next(d for n, d in sse_events(second.content) if n == "message")["v"]["response"]
        assert snapshot["accumulated_token_usage"] == got.usage
        assert decode(second.content).status == "INCOMPLETE"
        third = await _continue(client, token, session_id, 2)
        final = decode(third.content)
        assert final.status == "FINISHED"
        assert final.content == expected.content and final.reasoning == expected.reasoning
        assert final.usage == (len(expected.reasoning) + len(expected.content) + 1) // 2
        done = await _continue(client, token, session_id, 2)
        assert done.json()["data"]["biz_code"] == 4
        stats = state_of(client).stats()
        assert stats["continues"] == 2 and stats["completions"] == 1


async def test_gateway_decoder_follows_continue_rounds() -> None:
    decode_module = pytest.importorskip("deepseek2api.deepseek.decode")
    events_module = pytest.importorskip("deepseek2api.deepseek.events")
    prompt = "long [sim:fault=incomplete] [sim:words=10]"
    async with asgi_client() as client:
        token, session_id = await _setup(client)
        rounds = [(await complete(client, token, session_id, prompt, thinking=True)).content,
                  (await _continue(client, token, session_id, 2)).content]
    decoder = decode_module.StreamDecoder()
    events = decoder.feed(rounds[0]) + decoder.close()
    assert decoder.finished_status == "INCOMPLETE"
    decoder.begin_continue_round()
    events += decoder.feed(rounds[1]) + decoder.close()
    expected = reply_for(prompt, thinking=True, search=False)
    assert "".join(e.text for e in events if isinstance(e, events_module.ContentDelta)) == expected.content
    assert "".join(e.text for e in events if isinstance(e, events_module.ReasoningDelta)) == expected.reasoning
