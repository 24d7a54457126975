"""chat/history_file.py: over the inline limit, the earlier transcript (then the tool catalog, then the
system prompt) is attached as text files and the prompt keeps the live turn and a pointer to them."""

from __future__ import annotations

import pytest

from client_support import (
    client,
    collect,
    content_of,
    errors_of,
    fresh_sim,
    login,
    reset_sim,
)
from deepseek2api.chat.attachments import prepare_attachments
from deepseek2api.chat.history_file import (
    HISTORY_FILE,
    INSTRUCTIONS_FILE,
    TOOLS_FILE,
    PromptParts,
    PromptTooLong,
    _count_small,
    plan_prompt,
    transcript_text,
)
from deepseek2api.chat.prompt import ASSISTANT, END_OF_SENTENCE, USER, build_prompt
from deepseek2api.chat.turn import Message
from deepseek2api.chat.usage import count_tokens
from deepseek2api.deepseek.errors import ErrorKind

__all__ = ["client", "fresh_sim"]


def history_of(turns: int, filler: str = "lorem ipsum dolor sit amet ") -> str:
    return "".join(f"{USER}question {i} {filler * 20}{ASSISTANT}answer {i} MARKER:turn-{i}{END_OF_SENTENCE}"
                   for i in range(turns))


def never_count(text: str) -> int:
    raise AssertionError("a prompt under the limit in bytes must not be tokenised")


def test_a_short_prompt_stays_inline_without_counting_tokens():
    parts = PromptParts(system="Be brief.", history=history_of(1), live=f"{USER}hello")
    plan = plan_prompt(parts, limit=10_000, count=never_count)
    assert plan.inline and plan.prompt == parts.inline and plan.attached_text == ""


def test_a_long_history_goes_to_a_file_and_the_prompt_keeps_system_and_live_turn():
    parts = PromptParts(system="You are terse.", history=history_of(30), live=f"{USER}What was turn 7's marker?")
    plan = plan_prompt(parts, limit=2_000, count=len)
    assert [f.name for f in plan.files] == [HISTORY_FILE]
    assert plan.prompt.startswith("You are terse.")
    assert plan.prompt.endswith(f"{USER}What was turn 7's marker?")
    assert HISTORY_FILE in plan.prompt and len(plan.prompt) <= 2_000
    text = plan.files[0].text
    assert "MARKER:turn-7" in text and "### User\nquestion 7" in text and "### Assistant\nanswer 7" in text
    assert USER not in text and ASSISTANT not in text and END_OF_SENTENCE not in text


def test_a_large_tool_catalog_moves_with_the_history():
    tools = "## Tools\n" + "tool_x(arg): does a thing\n" * 40
    parts = PromptParts(system="sys", tools=tools, history=history_of(30), live=f"{USER}go")
    plan = plan_prompt(parts, limit=3_000, count=len)
    assert [f.name for f in plan.files] == [TOOLS_FILE, HISTORY_FILE]
    assert "tool_x(arg)" in plan.files[0].text and "tool_x" not in plan.prompt
    small = PromptParts(system="sys", tools="## Tools\nping()\n", history=history_of(30), live=f"{USER}go")
    plan = plan_prompt(small, limit=3_000, count=len)
    assert [f.name for f in plan.files] == [HISTORY_FILE] and "ping()" in plan.prompt


def test_the_system_prompt_is_attached_only_as_a_last_resort():
    parts = PromptParts(system="S" * 5_000, history=history_of(5), live=f"{USER}go on")
    plan = plan_prompt(parts, limit=1_000, count=len)
    assert [f.name for f in plan.files] == [INSTRUCTIONS_FILE, HISTORY_FILE]
    assert plan.prompt.endswith("go on") and not plan.prompt.startswith(USER)


def test_a_live_turn_over_the_limit_on_its_own_is_too_long():
    with pytest.raises(PromptTooLong) as caught:
        plan_prompt(PromptParts(history=history_of(3), live=USER + "x" * 5_000), limit=1_000, count=len)
    assert caught.value.limit == 1_000 and caught.value.tokens > 5_000


def test_with_history_files_off_a_long_prompt_is_too_long():
    with pytest.raises(PromptTooLong):
        plan_prompt(PromptParts(history=history_of(30), live=f"{USER}hi"), limit=1_000, count=len, allow_files=False)


def test_a_150k_character_agent_history_fits_the_default_limit_through_files():
    messages = [Message("system", "You are a coding agent. " * 200)]
    for i in range(120):
        messages.append(Message("user", f"step {i}: " + "read src/module.py and explain it. " * 30))
        messages.append(Message("assistant", f"done {i} MARKER:step-{i} " + "the module defines things. " * 20))
    system = build_prompt(messages[:1])
    history = build_prompt(messages)[len(system):]
    parts = PromptParts(system=system, history=history, live=f"{USER}What did step 42 find?")
    assert len(parts.inline) > 150_000
    plan = plan_prompt(parts)  # the real tokenizer, the default limit
    assert [f.name for f in plan.files] == [HISTORY_FILE]
    assert count_tokens(plan.prompt) <= 24_000
    assert "MARKER:step-42" in plan.files[0].text


def test_a_long_live_turn_is_counted_but_not_kept_in_the_count_cache():
    # The cache is for what an agent resends every turn (system prompt, tool catalog); a long message
    # kept there would pin its memory long after the request (32 entries of up to max_body_bytes).
    _count_small.cache_clear()
    live = USER + "word " * 40_000
    parts = PromptParts(system="Be brief.", history=history_of(3), live=live)
    plan = plan_prompt(parts, limit=100_000)  # over in bytes, under in tokens: every part is counted
    assert plan.inline and plan.prompt == parts.inline
    assert _count_small.cache_info().currsize == 3  # system, tools (empty) and history; not the live turn


def test_transcript_text_reads_as_headings():
    assert transcript_text(f"first{USER}second{ASSISTANT}third{END_OF_SENTENCE}") == \
        "first\n\n### User\nsecond\n\n### Assistant\nthird\n"


async def test_only_the_file_route_gets_a_long_history_through_the_simulator(client, fresh_sim):
    reset_sim(fresh_sim, max_prompt_chars=4_000)
    parts = PromptParts(system="Answer from the attached history.", history=history_of(40),
                        live=f"{USER}Which marker did the last turn carry?")
    token = await login(client)

    session_id, header = await client.prepare_completion(token)
    inline = await collect(client.completion(token, session_id=session_id, prompt=parts.inline, pow_header=header,
                                             thinking=False, search=False))
    assert [e.kind for e in errors_of(inline)] == [ErrorKind.INPUT_TOO_LONG]

    plan = plan_prompt(parts, limit=4_000, count=len)
    ids = await prepare_attachments(client, token, None, [f.attachment(max_bytes=1 << 20) for f in plan.files])
    session_id, header = await client.prepare_completion(token)
    events = await collect(client.completion(token, session_id=session_id, prompt=plan.prompt, pow_header=header,
                                             thinking=False, search=False, ref_file_ids=ids))
    assert not errors_of(events)
    assert 'You wrote: "Which marker did the last turn carry?"' in content_of(events)
    assert f'I read the file "{HISTORY_FILE}"' in content_of(events) and "MARKER:turn-39" in content_of(events)


def test_a_prompt_over_the_limit_in_bytes_but_not_in_tokens_stays_inline():
    parts = PromptParts(system="Be brief.", history=history_of(3), live=f"{USER}hello")
    size = len(parts.inline.encode())
    plan = plan_prompt(parts, limit=size // 2, count=lambda text: len(text) // 4)
    assert plan.inline and plan.prompt == parts.inline


def test_a_transcript_that_is_attached_anyway_is_never_tokenised():
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text)

    parts = PromptParts(system="sys", history=history_of(60), live=f"{USER}next")
    plan = plan_prompt(parts, limit=1_000, count=count)
    assert [f.name for f in plan.files] == [HISTORY_FILE]
    assert parts.history not in counted and parts.live in counted
