"""DeepSeekClient streams against the simulator: decoded replies, continue rounds, early stop.

The simulator runs in-process; an early stop must free the upstream stream on every transport, so those
tests run over curl on a real socket as well, and curl's connection pool is checked over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest

from client_support import (
    ALICE,
    client,
    client_for,
    collect,
    content_of,
    each_sim,
    errors_of,
    fresh_loopback_sim,
    fresh_sim,
    login,
    loopback_sim,
    reasoning_of,
    reset_sim,
    wait_for_idle_streams,
)
from deepseek2api.deepseek.client import PATH_COMPLETION, PATH_CONTINUE, DeepSeekClient
from deepseek2api.deepseek.decode import StreamDecoder
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import (
    ContentDelta,
    Finished,
    Ready,
    SearchResults,
    Usage,
)
from deepseek2api.simulator import reply_for

__all__ = ["client", "each_sim", "fresh_loopback_sim", "fresh_sim", "loopback_sim"]  # fixtures imported from client_support


async def _turn(client: DeepSeekClient, prompt: str, *, thinking: bool = False, search: bool = False,
                decoder: StreamDecoder | None = None) -> tuple[str, str, list]:
    token = await login(client)
    session_id, header = await client.prepare_completion(token)
    events = await collect(client.completion(token, session_id=session_id, prompt=prompt, pow_header=header,
                                             thinking=thinking, search=search, decoder=decoder))
    return token, session_id, events


@pytest.mark.parametrize("thinking,search", [(False, False), (True, False), (False, True), (True, True)])
async def test_completion_decodes_the_simulated_reply(client, thinking, search):
    prompt = "Explain TCP slow start in two sentences."
    _, _, events = await _turn(client, prompt, thinking=thinking, search=search)
    expected = reply_for(prompt, thinking=thinking, search=search)
    assert not errors_of(events)
    assert content_of(events) == expected.content
    assert reasoning_of(events) == expected.reasoning
    assert isinstance(events[0], Ready) and events[0].response_message_id == 2
    assert Finished("FINISHED") in events
    assert any(isinstance(e, Usage) and e.accumulated_tokens > 0 for e in events)
    found = [e for e in events if isinstance(e, SearchResults)]
    if search:
        urls = [r.url for r in found[-1].results]
        assert urls == [r["url"] for r in expected.results]
        assert [r.cite_index for r in found[-1].results] == [r["cite_index"] for r in expected.results]
    else:
        assert not found


@pytest.mark.parametrize("fmt", ["C", "C'", "B", "A"])
async def test_every_stream_format_decodes_to_the_same_text(client, fmt):
    prompt = f"format check [sim:format={fmt}]"
    _, _, events = await _turn(client, prompt, thinking=True)
    expected = reply_for(prompt, thinking=True, search=False)
    assert not errors_of(events)
    assert content_of(events) == expected.content
    assert reasoning_of(events) == expected.reasoning


async def test_second_turn_in_the_same_session(client):
    token, session_id, first = await _turn(client, "first turn")
    parent = next(e for e in first if isinstance(e, Ready)).response_message_id
    header = await client.pow_header(token, PATH_COMPLETION)
    second = await collect(client.completion(token, session_id=session_id, prompt="second turn", pow_header=header,
                                             thinking=False, search=False, model_type=None,
                                             parent_message_id=parent))
    assert not errors_of(second)
    ready = next(e for e in second if isinstance(e, Ready))
    assert (ready.request_message_id, ready.response_message_id) == (3, 4)
    assert content_of(second) == reply_for("second turn", thinking=False, search=False).content


@pytest.mark.parametrize("rounds", [1, 2])
async def test_incomplete_reply_is_finished_by_continue_rounds(client, fresh_sim, rounds):
    prompt = f"a long answer please [sim:fault=incomplete] [sim:rounds={rounds}]"
    decoder = StreamDecoder()
    token, session_id, events = await _turn(client, prompt, thinking=True, decoder=decoder)
    assert events[-1] == Finished("INCOMPLETE") or Finished("INCOMPLETE") in events
    message_id = next(e for e in events if isinstance(e, Ready)).response_message_id
    for _ in range(rounds):
        header = await client.pow_header(token, PATH_CONTINUE)
        more = await collect(client.continue_stream(token, session_id=session_id, message_id=message_id,
                                                    pow_header=header, decoder=decoder))
        assert not errors_of(more)
        events += more
    expected = reply_for(prompt, thinking=True, search=False)
    assert content_of(events) == expected.content  # nothing repeated, nothing lost
    assert reasoning_of(events) == expected.reasoning
    assert [e.status for e in events if isinstance(e, Finished)] == ["INCOMPLETE"] * rounds + ["FINISHED"]
    assert fresh_sim.state.stats()["continues"] == rounds


async def test_continue_needs_a_pow_minted_for_the_continue_path(client):
    prompt = "cut short [sim:fault=incomplete]"
    decoder = StreamDecoder()
    token, session_id, events = await _turn(client, prompt, decoder=decoder)
    message_id = next(e for e in events if isinstance(e, Ready)).response_message_id
    wrong = await client.pow_header(token, PATH_COMPLETION)
    more = await collect(client.continue_stream(token, session_id=session_id, message_id=message_id,
                                                pow_header=wrong, decoder=decoder))
    assert [e.kind for e in errors_of(more)] == [ErrorKind.POW_REJECTED]


async def _slow_stream(ds: DeepSeekClient):
    token = await login(ds, ALICE)
    session_id, header = await ds.prepare_completion(token)
    return ds.completion(token, session_id=session_id, prompt="a long one [sim:words=400]", pow_header=header,
                         thinking=False, search=False)


async def test_closing_the_stream_early_releases_the_upstream_stream(each_sim):
    reset_sim(each_sim, tokens_per_second=50.0)
    async with client_for(each_sim, max_clients=1) as ds:
        stream = await _slow_stream(ds)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if isinstance(event, ContentDelta):
                    break
        stats = await wait_for_idle_streams(each_sim)
        assert stats["active_total"] == 0
        assert stats["streams_finished"] == 0  # it really was cut short, not drained to the end
        # the single curl handle went back to the pool: the next call does not wait for it
        token = await login(ds, ALICE)
        assert await asyncio.wait_for(ds.create_session(token), 10)


async def test_breaking_out_of_the_loop_releases_the_upstream_stream(each_sim):
    reset_sim(each_sim, tokens_per_second=50.0)
    async with client_for(each_sim, max_clients=1) as ds:
        seen = []
        async for event in await _slow_stream(ds):
            seen.append(event)
            if isinstance(event, ContentDelta):
                break  # no explicit aclose: the event loop finalises the abandoned generator
        gc.collect()
        stats = await wait_for_idle_streams(each_sim)
        assert stats["active_total"] == 0
        assert stats["streams_finished"] == 0
        assert isinstance(seen[-1], ContentDelta)


async def test_cancelling_the_consumer_releases_the_upstream_stream(each_sim):
    reset_sim(each_sim, tokens_per_second=50.0)
    async with client_for(each_sim, max_clients=2) as ds:
        stream = await _slow_stream(ds)
        first_delta = asyncio.Event()

        async def consume() -> None:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, ContentDelta):
                        first_delta.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_delta.wait(), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        stats = await wait_for_idle_streams(each_sim)
        assert stats["active_total"] == 0 and stats["streams_finished"] == 0


async def test_concurrent_streams_on_one_client(fresh_loopback_sim):
    """More streams than curl_cffi's default pool (10) are open through one session at the same time."""
    reset_sim(fresh_loopback_sim, max_streams_per_account=20, tokens_per_second=200.0)
    count = 12
    async with client_for(fresh_loopback_sim, max_clients=16) as ds:
        token = await login(ds, ALICE)
        all_open = asyncio.Barrier(count)

        async def one(i: int) -> str:
            session_id, header = await ds.prepare_completion(token)
            stream = ds.completion(token, session_id=session_id, prompt=f"parallel {i}", pow_header=header,
                                   thinking=False, search=False)
            first = await asyncio.wait_for(anext(stream), 10)
            assert isinstance(first, Ready)
            await asyncio.wait_for(all_open.wait(), 20)  # every stream has its response before any is read on
            events = [first, *await collect(stream)]
            assert not errors_of(events)
            return content_of(events)

        texts = await asyncio.gather(*(one(i) for i in range(count)))
    assert texts == [reply_for(f"parallel {i}", thinking=False, search=False).content for i in range(count)]
    assert fresh_loopback_sim.state.stats()["max_concurrent"][ALICE.email] == count
