"""DeepSeekClient JSON endpoints against the simulator (in-process): login, user, sessions, PoW, stop, delete."""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest

from client_support import (
    ALICE,
    BOB,
    DEVICE_ID,
    MOBILE,
    client,
    client_for,
    collect,
    content_of,
    errors_of,
    fresh_sim,
    login,
    on_sim_loop,
    queue_fault,
    reset_sim,
    sim_stats,
)
from deepseek2api.deepseek.client import PATH_COMPLETION, PATH_CONTINUE
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import Finished, Ready
from deepseek2api.deepseek.pow import (
    PowChallenge,
    PowError,
    PowUnsolvable,
    decode_pow_response,
)
from deepseek2api.simulator import reply_for

__all__ = ["client", "fresh_sim"]  # fixtures imported from client_support


async def test_login_with_email_returns_a_working_token(client, fresh_sim):
    token = await login(client, ALICE)
    assert isinstance(token, str) and token
    user = await client.current_user(token)
    assert user["token"] == token
    assert user["id_profile"]["id"] == ALICE.email
    assert fresh_sim.state.stats()["logins"] == 1


async def test_login_with_mobile_number(client):
    token = await login(client, MOBILE)
    user = await client.current_user(token)
    assert user["id_profile"]["id"] == MOBILE.mobile


@pytest.mark.parametrize("email,password", [(ALICE.email, "wrong-password"), ("nobody@example.test", "x-pw")])
async def test_refused_login_is_bad_credentials(client, email, password):
    with pytest.raises(UpstreamFailure) as caught:
        await client.login(email=email, password=password, device_id=DEVICE_ID)
    assert caught.value.kind is ErrorKind.BAD_CREDENTIALS
    assert password not in str(caught.value)


async def test_login_needs_exactly_one_identity(client):
    with pytest.raises(ValueError):
        await client.login(password="pw", device_id=DEVICE_ID)
    with pytest.raises(ValueError):
        await client.login(email="a@b.c", mobile="123", password="pw", device_id=DEVICE_ID)


async def test_current_user_with_unknown_token_is_token_invalid(client):
    with pytest.raises(UpstreamFailure) as caught:
        await client.current_user("not-a-token-anyone-issued")
    assert caught.value.kind is ErrorKind.TOKEN_INVALID


async def test_create_session_returns_a_new_session_each_time(client, fresh_sim):
    token = await login(client)
    first = await client.create_session(token)
    second = await client.create_session(token)
    assert re.fullmatch(r"[0-9a-f-]{36}", first) and first != second
    assert fresh_sim.state.stats()["sessions_created"] == 2


async def test_pow_challenge_is_bound_to_the_target_path(client):
    token = await login(client)
    challenge = await client.create_pow_challenge(token, PATH_CONTINUE)
    assert isinstance(challenge, PowChallenge)
    assert challenge.target_path == PATH_CONTINUE
    assert challenge.difficulty == 1000 and challenge.algorithm == "DeepSeekHashV1"


async def test_pow_header_is_accepted_by_a_completion(client, fresh_sim):
    token = await login(client)
    session_id = await client.create_session(token)
    header = await client.pow_header(token, PATH_COMPLETION)
    decoded = decode_pow_response(header)
    assert decoded["target_path"] == PATH_COMPLETION and isinstance(decoded["answer"], int)
    events = await collect(client.completion(token, session_id=session_id, prompt="pow check", pow_header=header,
                                             thinking=False, search=False))
    assert not errors_of(events)
    assert content_of(events) == reply_for("pow check", thinking=False, search=False).content
    assert fresh_sim.state.stats()["pow_failures"] == 0


async def test_a_pow_header_is_single_use(client):
    token = await login(client)
    session_id, header = await client.prepare_completion(token)
    first = await collect(client.completion(token, session_id=session_id, prompt="one", pow_header=header,
                                            thinking=False, search=False))
    assert Finished("FINISHED") in first
    parent = next(e for e in first if isinstance(e, Ready)).response_message_id
    again = await collect(client.completion(token, session_id=session_id, prompt="two", pow_header=header,
                                            thinking=False, search=False, parent_message_id=parent))
    assert [e.kind for e in errors_of(again)] == [ErrorKind.POW_REJECTED]


async def test_prepare_completion_gives_a_session_and_a_completion_pow(client, fresh_sim):
    token = await login(client)
    session_id, header = await client.prepare_completion(token)
    assert decode_pow_response(header)["target_path"] == PATH_COMPLETION
    stats = fresh_sim.state.stats()
    assert stats["sessions_created"] == 1 and stats["pow_challenges"] == 1
    events = await collect(client.completion(token, session_id=session_id, prompt="hi", pow_header=header,
                                             thinking=False, search=False))
    assert Finished("FINISHED") in events and not errors_of(events)


async def test_prepare_completion_with_a_dead_token_raises_token_invalid(client):
    with pytest.raises(UpstreamFailure) as caught:
        await client.prepare_completion("expired-or-unknown-token")
    assert caught.value.kind is ErrorKind.TOKEN_INVALID


async def test_realistic_difficulty_solves_and_is_accepted(client, fresh_sim):
    on_sim_loop(fresh_sim, fresh_sim.state.config.update, {"difficulty": 144000})
    token = await login(client)
    session_id, header = await client.prepare_completion(token)
    events = await collect(client.completion(token, session_id=session_id, prompt="hard pow", pow_header=header,
                                             thinking=False, search=False), limit=60)
    assert not errors_of(events)
    assert Finished("FINISHED") in events


async def test_delete_session_removes_it(client, fresh_sim):
    token = await login(client)
    session_id = await client.create_session(token)
    await client.delete_session(token, session_id=session_id)
    assert fresh_sim.state.stats()["deletes"] == 1
    with pytest.raises(UpstreamFailure):  # it is gone: a second delete is refused
        await client.delete_session(token, session_id=session_id)
    header = await client.pow_header(token, PATH_COMPLETION)
    events = await collect(client.completion(token, session_id=session_id, prompt="late", pow_header=header,
                                             thinking=False, search=False))
    assert len(errors_of(events)) == 1 and events[-1] == errors_of(events)[0]


async def test_stop_stream_stops_a_running_reply(fresh_sim):
    reset_sim(fresh_sim, tokens_per_second=40.0)
    async with client_for(fresh_sim, max_clients=4) as ds:
        token = await login(ds)
        session_id, header = await ds.prepare_completion(token)
        stream = ds.completion(token, session_id=session_id, prompt="stop me [sim:words=400]", pow_header=header,
                               thinking=False, search=False)
        events = []
        async for event in stream:
            events.append(event)
            if isinstance(event, Ready):
                await ds.stop_stream(token, session_id=session_id, response_message_id=event.response_message_id)
        assert Finished("STOPPED") in events
        assert not errors_of(events)
        assert fresh_sim.state.stats()["stopped"] == 1


async def test_stop_stream_on_an_unknown_session_raises(client):
    token = await login(client)
    with pytest.raises(UpstreamFailure):
        await client.stop_stream(token, session_id="00000000-0000-4000-8000-000000000000", response_message_id=2)


async def test_no_secret_reaches_the_log(fresh_sim, caplog):
    caplog.set_level(logging.DEBUG)
    async with client_for(fresh_sim) as ds:
        token = await login(ds, BOB)
        session_id, header = await ds.prepare_completion(token)
        await collect(ds.completion(token, session_id=session_id, prompt="log check", pow_header=header,
                                    thinking=True, search=False))
        with pytest.raises(UpstreamFailure):
            await ds.login(email=BOB.email, password="Wrong-Secret-9", device_id=DEVICE_ID)
    upstream = [r for r in caplog.records if r.name == "deepseek2api.upstream"]
    assert upstream, "the client logs its calls at DEBUG"
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (token, BOB.password, "Wrong-Secret-9", header, base64.b64decode(header).decode()):
        assert secret not in text
    assert json.dumps(header) not in text


@pytest.mark.parametrize("failure,kind", [
    (PowUnsolvable("no nonce below difficulty 1000 matches"), ErrorKind.POW_REJECTED),
    (PowError("challenge is not 64 hex characters"), ErrorKind.PROTOCOL),
])
async def test_solver_failures_become_upstream_failures(client, monkeypatch, failure, kind):
    async def failing_solver(challenge):
        raise failure

    monkeypatch.setattr("deepseek2api.deepseek.client.solve_async", failing_solver)
    token = await login(client)
    with pytest.raises(UpstreamFailure) as caught:
        await client.pow_header(token, PATH_COMPLETION)
    assert caught.value.kind is kind
    with pytest.raises(UpstreamFailure) as caught:
        await client.prepare_completion(token)
    assert caught.value.kind is kind


async def test_failed_pow_deletes_the_session_it_created(client, fresh_sim) -> None:
    """A completion attempt that fails at the PoW step must not leave a chat behind."""
    token = await login(client, ALICE)
    queue_fault(fresh_sim, ALICE.email, "busy", on="create_pow_challenge")
    before = await sim_stats(fresh_sim)
    with pytest.raises(UpstreamFailure):
        await client.prepare_completion(token)
    after = await sim_stats(fresh_sim)
    assert after["sessions_created"] - before["sessions_created"] == 1  # the session request is let finish
    assert after["deletes"] - before["deletes"] == 1
