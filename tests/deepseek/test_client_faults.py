"""Every simulator fault, through DeepSeekClient, ends as the right ErrorKind (or terminal status).

The simulator runs in-process; the idle timeout is checked over curl on a real socket as well."""

from __future__ import annotations

import time

import pytest

from client_support import (
    ALICE,
    BOB,
    client,
    client_for,
    collect,
    each_sim,
    errors_of,
    fresh_loopback_sim,
    fresh_sim,
    login,
    loopback_sim,
    queue_fault,
    reset_sim,
    wait_for_idle_streams,
)
from deepseek2api.deepseek.client import PATH_CONTINUE, DeepSeekClient
from deepseek2api.deepseek.decode import StreamDecoder
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import Finished, Ready, UpstreamError

__all__ = ["client", "each_sim", "fresh_loopback_sim", "fresh_sim", "loopback_sim"]  # fixtures imported from client_support

RETRY_AFTER = 7.0
MUTE_SECONDS = 5000.0


async def _completion_with_fault(ds: DeepSeekClient, fault: str) -> list:
    token = await login(ds, ALICE)
    session_id, header = await ds.prepare_completion(token)
    return await collect(ds.completion(token, session_id=session_id, prompt=f"hello [sim:fault={fault}]",
                                       pow_header=header, thinking=True, search=False))


def _only_error(events: list) -> UpstreamError:
    errors = errors_of(events)
    assert len(errors) == 1 and events[-1] is errors[0], events
    return errors[0]


@pytest.mark.parametrize("fault,kind", [
    ("token_expired", ErrorKind.TOKEN_INVALID),
    ("pow_rejected", ErrorKind.POW_REJECTED),
    ("mute", ErrorKind.ACCOUNT_MUTED),
    ("ban", ErrorKind.ACCOUNT_BANNED),
    ("rate_limit", ErrorKind.RATE_LIMITED),
    ("busy", ErrorKind.BUSY),
    ("waf", ErrorKind.WAF_BLOCKED),
    ("cut", ErrorKind.STREAM_CUT),
    ("input_too_long", ErrorKind.INPUT_TOO_LONG),
])
async def test_completion_fault_maps_to_kind(fresh_sim, fault, kind):
    reset_sim(fresh_sim, retry_after=RETRY_AFTER, mute_seconds=MUTE_SECONDS)
    async with client_for(fresh_sim) as ds:
        events = await _completion_with_fault(ds, fault)
    error = _only_error(events)
    assert error.kind is kind, error
    if kind is ErrorKind.RATE_LIMITED:
        assert error.retry_after == RETRY_AFTER
    if kind is ErrorKind.ACCOUNT_MUTED:
        assert error.until is not None and abs(error.until - (time.time() + MUTE_SECONDS)) < 600
    assert (await wait_for_idle_streams(fresh_sim))["active_total"] == 0


async def test_content_filter_is_a_terminal_status(client):
    events = await _completion_with_fault(client, "content_filter")
    assert not errors_of(events)
    assert Finished("CONTENT_FILTER") in events


async def test_stall_ends_with_network_after_the_idle_timeout(each_sim):
    async with client_for(each_sim, idle_timeout=0.5, first_byte_timeout=5.0) as ds:
        token = await login(ds, ALICE)
        session_id, header = await ds.prepare_completion(token)
        events = await collect(ds.completion(token, session_id=session_id, prompt="wait [sim:stall=60]",
                                             pow_header=header, thinking=False, search=False))
        error = _only_error(events)
        assert error.kind is ErrorKind.NETWORK
        assert error.message == "no data from upstream for 0.5 s"
        assert (await wait_for_idle_streams(each_sim))["active_total"] == 0  # the stalled stream was hung up


async def test_ban_sticks_to_the_account(client):
    events = await _completion_with_fault(client, "ban")
    assert _only_error(events).kind is ErrorKind.ACCOUNT_BANNED
    with pytest.raises(UpstreamFailure) as caught:
        await login(client, ALICE)
    assert caught.value.kind is ErrorKind.ACCOUNT_BANNED


async def test_token_expired_invalidates_the_token(client):
    events = await _completion_with_fault(client, "token_expired")
    assert _only_error(events).kind is ErrorKind.TOKEN_INVALID


@pytest.mark.parametrize("fault,kind", [
    ("waf", ErrorKind.WAF_BLOCKED),
    ("rate_limit", ErrorKind.RATE_LIMITED),
    ("busy", ErrorKind.BUSY),
    ("ban", ErrorKind.ACCOUNT_BANNED),
])
async def test_login_fault_raises_kind(fresh_sim, fault, kind):
    reset_sim(fresh_sim, retry_after=RETRY_AFTER)
    queue_fault(fresh_sim, BOB.email, fault, on="login")
    async with client_for(fresh_sim) as ds:
        with pytest.raises(UpstreamFailure) as caught:
            await login(ds, BOB)
    assert caught.value.kind is kind
    if kind is ErrorKind.RATE_LIMITED:
        assert caught.value.error.retry_after == RETRY_AFTER


@pytest.mark.parametrize("fault,kind", [
    ("token_expired", ErrorKind.TOKEN_INVALID),
    ("waf", ErrorKind.WAF_BLOCKED),
    ("rate_limit", ErrorKind.RATE_LIMITED),
    ("busy", ErrorKind.BUSY),
    ("ban", ErrorKind.ACCOUNT_BANNED),
])
@pytest.mark.parametrize("endpoint", ["create_session", "create_pow_challenge", "current"])
async def test_json_endpoint_fault_raises_kind(client, fresh_sim, endpoint, fault, kind):
    token = await login(client, ALICE)
    queue_fault(fresh_sim, ALICE.email, fault, on=endpoint)
    call = {
        "create_session": lambda: client.create_session(token),
        "create_pow_challenge": lambda: client.pow_header(token, "/api/v0/chat/completion"),
        "current": lambda: client.current_user(token),
    }[endpoint]
    with pytest.raises(UpstreamFailure) as caught:
        await call()
    assert caught.value.kind is kind


async def test_http_401_token_errors_are_token_invalid(fresh_sim):
    reset_sim(fresh_sim, token_error_http=True)
    async with client_for(fresh_sim) as ds:
        with pytest.raises(UpstreamFailure) as caught:
            await ds.create_session("unknown-token")
    assert caught.value.kind is ErrorKind.TOKEN_INVALID


async def test_waf_page_with_http_200_is_still_waf(fresh_sim):
    reset_sim(fresh_sim, waf_status=200)
    async with client_for(fresh_sim) as ds:
        events = await _completion_with_fault(ds, "waf")
    assert _only_error(events).kind is ErrorKind.WAF_BLOCKED


async def test_continue_fault_is_reported_on_the_continue_stream(client, fresh_sim):
    token = await login(client, ALICE)
    session_id, header = await client.prepare_completion(token)
    decoder = StreamDecoder()
    events = await collect(client.completion(token, session_id=session_id, prompt="x [sim:fault=incomplete]",
                                             pow_header=header, thinking=False, search=False, decoder=decoder))
    message_id = next(e for e in events if isinstance(e, Ready)).response_message_id
    queue_fault(fresh_sim, ALICE.email, "cut", on="continue")
    header = await client.pow_header(token, PATH_CONTINUE)
    more = await collect(client.continue_stream(token, session_id=session_id, message_id=message_id,
                                                pow_header=header, decoder=decoder))
    assert _only_error(more).kind is ErrorKind.STREAM_CUT
