"""A broken upstream never breaks the gateway (issue #6 item 3).

Byte-level misbehaviour (random bytes, HTML, invalid JSON lines, truncated SSE, a reply that stops
without a status, an endless reply, a hang after the first words) comes from `EvilUpstream`; the
decoder must never raise, the caller gets a clear error, the lease comes back and the next request
works. The idle timeout is measured between chunks: a slow but steady reply longer than it in total
succeeds, a silence longer than it ends the turn cleanly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from deepseek2api.background import free_port
from gateway_support import Stack, running_stack
from reliability_support import (
    EvilUpstream,
    counting_access_log,
    error_log,
    evil_stack,
    expected_reply,
    is_error_envelope,
)

IDLE = 0.5  # upstream.idle_timeout of these stacks


@pytest.fixture(scope="module")
def evil_stack_once() -> Iterator[tuple[Stack, EvilUpstream]]:
    with evil_stack(accounts=2, upstream={"idle_timeout": IDLE}, server={"keepalive_interval": 0.2}) as running:
        yield running


@pytest.fixture
def evil(evil_stack_once: tuple[Stack, EvilUpstream]) -> Iterator[tuple[Stack, EvilUpstream]]:
    """The evil stack, checked after each test: no errors logged, invariants kept, still serving."""
    stack, _ = evil_stack_once
    with error_log() as errors:
        yield evil_stack_once
    assert not errors.lines(), errors.lines()  # the decoder never raised, nothing unexpected happened
    stack.assert_invariants()  # every lease back, nothing in flight, no concurrent streams upstream
    reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "still fine?"}])
    assert reply.choices[0].message.content == expected_reply("still fine?", thinking=False)[0]


# mode → the error codes that describe it (before any output the gateway tries the other account too)
BROKEN = {
    "random": {"upstream_protocol_error", "upstream_stream_cut"},
    "html": {"upstream_blocked"},
    "invalid_json": {"upstream_protocol_error", "upstream_stream_cut"},
    "no_finish": {"upstream_stream_cut"},
    "truncated": {"upstream_stream_cut"},
    "hang": {"upstream_unreachable"},
}


@pytest.mark.parametrize("mode", sorted(BROKEN))
def test_broken_reply_non_stream_is_a_clear_502(evil: tuple[Stack, EvilUpstream], mode: str) -> None:
    stack, upstream = evil
    before = upstream.served[mode]
    with pytest.raises(openai.APIStatusError) as failed:
        stack.openai().chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": f"[evil:{mode}] [sim:words=60]"}])
    assert failed.value.status_code == 502
    body = failed.value.response.json()
    assert is_error_envelope(body) and body["error"]["code"] in BROKEN[mode], body
    assert upstream.served[mode] > before
    if mode == "hang":
        assert f"no data from upstream for {IDLE:g} s" in body["error"]["message"]


@pytest.mark.parametrize("mode", sorted(BROKEN))
def test_broken_reply_stream_ends_with_an_error(evil: tuple[Stack, EvilUpstream], mode: str) -> None:
    stack, _upstream = evil
    with stack.http() as http:
        with http.stream("POST", "/v1/chat/completions", json={
                "model": "deepseek-chat", "stream": True,
                "messages": [{"role": "user", "content": f"[evil:{mode}] [sim:words=60]"}]}) as response:
            body = response.read().decode()
    if response.status_code != 200:  # failed before the first byte: a real HTTP error
        assert response.status_code == 502
        error = json.loads(body)
    else:  # failed after output: the stream ends with an error event and no [DONE]
        events = [e[len("data: "):] for e in body.split("\n\n") if e.startswith("data: ")]
        assert events and events[-1] != "[DONE]", body[-300:]
        error = json.loads(events[-1])
        # It did start: content went out, or (on a slow machine) a keep-alive comment committed the 200 first.
        assert any('"content"' in e for e in events[:-1]) or body.startswith(":"), body[:300]
    assert is_error_envelope(error) and error["error"]["code"] in BROKEN[mode], error
    # The SDK turns both shapes into an exception.
    with pytest.raises(openai.APIError):
        list(stack.openai().chat.completions.create(
            model="deepseek-chat", stream=True,
            messages=[{"role": "user", "content": f"[evil:{mode}] again [sim:words=60]"}]))


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_endless_stream_ends_when_the_client_leaves(evil: tuple[Stack, EvilUpstream]) -> None:
    stack, upstream = evil
    with stack.http() as http:
        with http.stream("POST", "/v1/chat/completions", json={
                "model": "deepseek-chat", "stream": True,
                "messages": [{"role": "user", "content": "[evil:endless]"}]}) as response:
            seen = 0
            for line in response.iter_lines():
                seen += '"content"' in line
                if seen >= 20:
                    break  # hang up on a reply that would never end
    assert seen >= 20
    assert _wait(lambda: upstream.open_streams == 0), "the gateway kept reading an abandoned upstream stream"
    stack.wait_idle()


def test_endless_non_stream_ends_when_the_client_gives_up(evil: tuple[Stack, EvilUpstream]) -> None:
    stack, upstream = evil
    with pytest.raises(openai.APITimeoutError):
        stack.openai(timeout=1.0).chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "[evil:endless]"}])
    assert _wait(lambda: upstream.open_streams == 0), "the gateway kept reading for a client that left"
    stack.wait_idle()


def test_hang_after_output_ends_the_stream_at_the_idle_timeout(evil: tuple[Stack, EvilUpstream]) -> None:
    stack, upstream = evil
    client = stack.openai()
    content: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in client.chat.completions.create(model="deepseek-chat", stream=True,
                                                    messages=[{"role": "user", "content": "[evil:hang]"}]):
            if chunk.choices:
                content.append(chunk.choices[0].delta.content or "")
    assert "".join(content).startswith("Evil")
    assert failed.value.body["code"] == "upstream_unreachable"  # type: ignore[index]
    assert _wait(lambda: upstream.open_streams == 0)


def test_idle_timeout_is_between_chunks_not_per_request() -> None:
    with running_stack(accounts=1, sim={"tokens_per_second": 10, "chunk_chars": (8, 10)},
                       upstream={"idle_timeout": IDLE}, pool={"max_failover": 1}) as stack:
        client = stack.openai()
        # Slow but steady: a piece every 0.1 s, about 12 pieces: longer than the idle timeout in total.
        prompt = "take your time"
        started = time.monotonic()
        chunks = list(client.chat.completions.create(model="deepseek-chat", stream=True,
                                                     messages=[{"role": "user", "content": prompt}]))
        assert time.monotonic() - started > 2 * IDLE  # the premise: longer than the idle timeout in total
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            expected_reply(prompt, thinking=False)[0]
        reply = client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": prompt}])
        assert reply.choices[0].message.content == expected_reply(prompt, thinking=False)[0]
        # One silence longer than the idle timeout: a clean 502 that says what happened.
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="deepseek-chat",
                                           messages=[{"role": "user", "content": "hang on [sim:stall=2]"}])
        assert failed.value.status_code == 502
        assert failed.value.body["code"] == "upstream_unreachable"  # type: ignore[index]
        assert f"no data from upstream for {IDLE:g} s" in failed.value.body["message"]  # type: ignore[index]
        stack.wait_idle()


def test_unreachable_upstream_is_a_clean_502() -> None:
    with running_stack(accounts=1, upstream={"base_url": f"http://127.0.0.1:{free_port()}",
                                             "connect_timeout": 1.0}) as stack:
        with pytest.raises(openai.APIStatusError) as failed:
            stack.openai().chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "anyone?"}])
        assert failed.value.status_code in (502, 503)
        assert is_error_envelope(failed.value.response.json())
        assert httpx.get(f"{stack.base_url}/health").status_code == 200


def test_client_closing_right_after_done_does_not_skip_upstream_cleanup() -> None:
    # The openai SDK closes the connection as soon as it reads [DONE]; the gateway still has to delete
    # the web session upstream (here a slow one) and log the request as the success it was.
    with evil_stack(accounts=1, delays={"/api/v0/chat_session/delete": 0.3}) as (stack, _), \
            counting_access_log() as access:
        with stack.openai() as client:
            for i in range(5):
                chunks = list(client.chat.completions.create(
                    model="deepseek-reasoner", stream=True, messages=[{"role": "user", "content": f"bye {i}"}]))
                assert chunks[-1].choices[0].finish_reason == "stop"
        stack.wait_idle()
        assert _wait(lambda: stack.sim_stats()["sessions"] == 0), stack.sim_stats()
        assert stack.sim_stats()["deletes"] == 5
        assert access.statuses == {"200": 5}
