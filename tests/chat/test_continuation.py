"""`upstream.continue_sessions` (chat/continuation.py) end to end with the openai SDK: a tool loop's second
turn goes into the session that holds the first (parent_message_id, only the tool result as the prompt, no new
session), the simulator answers it from the history it holds; an edited history, a busy holder or a broken
session fall back to the full re-send transparently; the default stays the full re-send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deepseek2api.chat.continuation import ContinueOptions, SessionBook, conversation_key
from deepseek2api.chat.turn import Message, ModelRegistry, Turn
from gateway_support import Stack, running_stack

TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "read_file", "description": "Read a file",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
CATALOG = "## Available tools"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=2, upstream={"continue_sessions": True}) as running:
        yield running


def prompts(stack: Stack) -> list[str]:
    sent: list[str] = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    return sent


def _loop(stack: Stack, word: str) -> tuple[list[dict[str, Any]], Any]:
    """Turn 1: the user asks, the model calls read_file; returns the history with the tool's result."""
    client = stack.openai()
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"read notes {word} [sim:tool=read_file]"}]
    first = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages += [{"role": "assistant", "content": first.choices[0].message.content,
                  "tool_calls": [{"id": call.id, "type": "function", "function": {
                      "name": call.function.name, "arguments": call.function.arguments}}]},  # type: ignore[union-attr]
                 {"role": "tool", "tool_call_id": call.id, "content": f"the file says {word}"}]
    return messages, client


def test_a_tool_loop_continues_the_session_that_holds_it(stack: Stack) -> None:
    before = stack.sim_stats()
    messages, client = _loop(stack, "kiwi-41")
    second = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
    after = stack.sim_stats()
    sent = prompts(stack)[-1]
    assert CATALOG not in sent and "the file says kiwi-41" in sent  # only the new part went upstream
    assert after["sessions_created"] - before["sessions_created"] == 1  # one session for both turns
    # answered from the history the session holds: the simulator saw the tool result after its call
    assert second.choices[0].message.content == \
        'The tool read_file returned: "the file says kiwi-41". That is the answer (simulated).'
    assert second.usage is not None and second.usage.prompt_tokens > 100  # the whole conversation counted
    # a third turn continues again, with the new user message only
    messages += [{"role": "assistant", "content": second.choices[0].message.content},
                 {"role": "user", "content": "thanks, and what about kiwi-42? [sim:reply=kiwi-42 is noted]"}]
    third = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
    sent = prompts(stack)[-1]
    assert CATALOG not in sent and sent.startswith("thanks, and what about kiwi-42?")
    assert third.choices[0].message.content == "kiwi-42 is noted"
    assert stack.sim_stats()["sessions_created"] - before["sessions_created"] == 1


def test_an_edited_history_is_sent_again_in_full(stack: Stack) -> None:
    before = stack.sim_stats()
    messages, client = _loop(stack, "plum-7")
    messages[0]["content"] = messages[0]["content"].replace("notes", "the notes")  # the client edited it
    second = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
    sent = prompts(stack)[-1]
    assert CATALOG in sent and "read the notes plum-7" in sent
    assert stack.sim_stats()["sessions_created"] - before["sessions_created"] == 2
    assert "the file says plum-7" in (second.choices[0].message.content or "")
    # a changed tool catalog is a different conversation too
    messages, client = _loop(stack, "fig-3")
    other = json.loads(json.dumps(TOOL))
    other["function"]["description"] = "Read a file from disk"
    client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[other])
    assert CATALOG in prompts(stack)[-1]


def test_a_session_gone_upstream_falls_back_to_the_full_re_send(stack: Stack) -> None:
    messages, client = _loop(stack, "pear-9")
    httpx.post(f"{stack.simulator.base_url}/_sim/reset", json={"all": True}, timeout=10)  # sessions + tokens gone
    second = client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
    assert CATALOG in prompts(stack)[-1]
    assert second.choices[0].message.content == \
        'The tool read_file returned: "the file says pear-9". That is the answer (simulated).'


def test_the_book_matches_hashes_not_ids_and_honours_its_limits() -> None:
    spec = ModelRegistry().resolve("deepseek-chat")
    assert spec is not None
    turn = Turn("r1", spec, "deepseek-chat", (Message("user", "hi"), Message("assistant", "hello"),
                                              Message("user", "more")))
    key = conversation_key(turn, turn.messages[:2])
    assert key == conversation_key(turn, (Message("user", "hi"), Message("assistant", "hello ")))
    assert key != conversation_key(turn, (Message("user", "hi!"), Message("assistant", "hello")))
    now = [0.0]
    book = SessionBook(ContinueOptions(enabled=True, max_turns=2, max_age=60), clock=lambda: now[0])
    from deepseek2api.chat.continuation import HeldSession
    from deepseek2api.chat.uploads import StagedTurn
    book.keep(key, HeldSession("acc", "s1", 2, 0.0, 1, 10))
    plan = book.plan(turn, StagedTurn(prompt="full"))
    assert plan is not None and plan.staged.prompt == "more" and plan.staged.counted_text == "full"
    assert book.plan(turn, StagedTurn(prompt="full")) is None  # taken: never two turns on one session
    book.keep(key, HeldSession("acc", "s2", 2, 0.0, 2, 10))
    assert book.plan(turn, StagedTurn(prompt="full")) is None and book.doomed("acc") == ["s2"]  # max_turns
    book.keep(key, HeldSession("acc", "s3", 2, 0.0, 1, 10))
    now[0] = 61.0
    assert book.doomed("acc") == ["s3"] and book.held_count() == 0  # expired: deleted on its account's turn


def test_continuing_is_off_by_default() -> None:
    with running_stack(accounts=1) as plain:
        messages, client = _loop(plain, "lime-5")
        client.chat.completions.create(model="deepseek-chat", messages=messages, tools=[TOOL])  # type: ignore[arg-type]
        assert CATALOG in prompts(plain)[-1]
        assert plain.sim_stats()["sessions_created"] == 2
