"""The streaming sieve: same calls for every split, stream equals non-stream, no markup ever shown."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek2api.chat.tools.events import OutToolCall, SievedReasoning, SievedText
from deepseek2api.chat.tools.grammar import MAX_TAG
from deepseek2api.chat.tools.parser import ToolSet, parse_answer
from deepseek2api.chat.tools.sieve import Sieve, ToolStream
from deepseek2api.chat.tools.spec import ToolKind
from tools_support import CASES, MARKER_FRAGMENTS, TOOLS, Case, arguments_of

CALL_ID = re.compile(r"^call_[A-Za-z0-9]{24}$")


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(text[last:point])
        last = point
    pieces.append(text[last:])
    return pieces


def run(pieces: list[str], *, parallel: bool = True) -> tuple[ToolStream, list[SievedText | SievedReasoning | OutToolCall]]:
    stream = ToolStream(TOOLS, parallel=parallel)
    events = []
    for piece in pieces:
        events += stream.content(piece)
    events += stream.finish()
    return stream, events


def text_of(events: list[SievedText | SievedReasoning | OutToolCall]) -> str:
    return "".join(e.text for e in events if isinstance(e, SievedText))


def calls_of(events: list[SievedText | SievedReasoning | OutToolCall]) -> tuple[tuple[str, object], ...]:
    return tuple((e.name, arguments_of(e.arguments, e.name)) for e in events if isinstance(e, OutToolCall))


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_split_of_a_corpus_answer_gives_the_same_text_and_calls(case: Case, cuts: list[int]) -> None:
    _, events = run(split_at(case.answer, cuts))
    assert text_of(events) == case.text
    assert calls_of(events) == case.calls


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_streaming_equals_the_non_streaming_parse(case: Case, cuts: list[int]) -> None:
    whole = parse_answer(case.answer, TOOLS)
    stream, events = run(split_at(case.answer, cuts))
    assert text_of(events) == whole.text
    assert [(e.name, e.arguments) for e in events if isinstance(e, OutToolCall)] == \
        [(c.name, c.arguments) for c in whole.calls]
    assert len(stream.problems) == len(whole.problems)


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from([c for c in CASES if not c.markup_in_text]),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_no_marker_fragment_ever_reaches_the_emitted_text(case: Case, cuts: list[int]) -> None:
    _, events = run(split_at(case.answer, cuts))
    for event in events:
        if isinstance(event, SievedText):
            assert not any(fragment in event.text for fragment in MARKER_FRAGMENTS), event.text
    assert not any(fragment in text_of(events) for fragment in MARKER_FRAGMENTS)


@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_streamed_arguments_validate_against_the_schema(case: Case, cuts: list[int]) -> None:
    _, events = run(split_at(case.answer, cuts))
    for event in events:
        if isinstance(event, OutToolCall):
            tool = next(t for t in TOOLS if t.name == event.name)
            if tool.kind is ToolKind.FUNCTION:
                jsonschema.validate(json.loads(event.arguments), dict(tool.parameters))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<", "｜", "|", "‖", "/", "DSML", "D", "tool", "▁", " ", "\n", "a", ">", "`",
                                 '"', "invoke", "name="]), max_size=200))
def test_the_held_back_tail_stays_bounded_whatever_arrives(pieces: list[str]) -> None:
    sieve = Sieve(ToolSet(TOOLS))
    for piece in pieces:
        sieve.feed(piece)
        if not sieve.capturing:
            assert len(sieve._pending) <= MAX_TAG
            assert len(sieve._ws) <= 64


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<｜\n`~{ \t\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"),
               min_size=1, max_size=50))
def test_plain_text_goes_out_with_the_very_piece_that_brought_it(text: str) -> None:
    if text.isspace():
        return
    sieve = Sieve(ToolSet(TOOLS))
    sieve.feed("Hi ")  # past the start, where a whole-message JSON could begin
    for ch in text:
        out = sieve.feed(ch)
        if not ch.isspace():
            assert "".join(o for o in out if isinstance(o, str)).endswith(ch)


def test_calls_get_unique_ids_contiguous_indexes_and_come_out_when_their_invoke_closes() -> None:
    case = next(c for c in CASES if c.name == "parallel calls")
    stream = ToolStream(TOOLS)
    first_close = case.answer.index("invoke>") + len("invoke>")
    early = stream.content(case.answer[:first_close])
    assert [type(e) for e in early] == [OutToolCall]
    rest = stream.content(case.answer[first_close:]) + stream.finish()
    calls = [e for e in early + rest if isinstance(e, OutToolCall)]
    assert [c.index for c in calls] == [0, 1]
    assert all(CALL_ID.match(c.id) for c in calls)
    assert calls[0].id != calls[1].id


def test_text_after_a_block_is_dropped_and_upstream_is_told_to_stop() -> None:
    case = next(c for c in CASES if c.name == "invented result after the block is dropped")
    stream = ToolStream(TOOLS)
    cut = case.answer.index("The weather")
    events = stream.content(case.answer[:cut])
    assert not stream.stopped
    events += stream.content(case.answer[cut:cut + 3])
    assert stream.stopped
    assert stream.content("more invented text") == []
    events += stream.finish()
    assert text_of(events) == ""
    assert calls_of(events) == case.calls


def test_capturing_is_reported_while_a_call_is_being_written() -> None:
    stream = ToolStream(TOOLS)
    stream.content('Ok.\n<|DSML|tool_calls>\n<|DSML|invoke name="get_weather">\n<|DSML|parameter name="city">Pa')
    assert stream.capturing
    stream.content("ris</|DSML|parameter>\n</|DSML|invoke>")
    assert stream.calls and stream.calls[0].name == "get_weather"


def test_without_parallel_calls_only_the_first_call_goes_out() -> None:
    case = next(c for c in CASES if c.name == "parallel calls")
    stream, events = run([case.answer], parallel=False)
    assert calls_of(events) == case.calls[:1]
    assert stream.stopped


def test_a_call_written_only_in_the_reasoning_is_recovered_when_the_answer_is_empty() -> None:
    stream = ToolStream(TOOLS)
    thought = "I need the weather.\n" + CASES[0].answer[len("Let me check.\n\n"):] + "\nThen I answer."
    events = []
    for ch in thought:
        events += stream.reasoning(ch)
    events += stream.content("\n")
    events += stream.finish()
    reasoning = "".join(e.text for e in events if isinstance(e, SievedReasoning))
    assert reasoning == "I need the weather.\nThen I answer."
    assert calls_of(events) == (("get_weather", {"city": "Paris", "days": 3}),)


def test_a_call_in_the_reasoning_is_not_used_when_the_answer_has_text() -> None:
    stream = ToolStream(TOOLS)
    stream.reasoning(CASES[0].answer)
    events = stream.content("It is sunny in Paris.") + stream.finish()
    assert calls_of(events) == ()
    assert text_of(events) == "It is sunny in Paris."
    assert stream.text_sent


@pytest.mark.parametrize("fence", ["```", "~~~~", "```python"])
def test_markup_inside_a_code_fence_is_text(fence: str) -> None:
    block = CASES[0].answer
    closer = fence.rstrip("python")
    answer = f"Example:\n{fence}\n{block}\n{closer}\nDone."
    _, events = run(list(answer))
    assert text_of(events) == answer
    assert calls_of(events) == ()


def test_whitespace_before_a_call_is_not_shown_but_whitespace_in_text_is() -> None:
    _, events = run(["Line one\n\n", "Line two  \n", "\n<|DSML|invoke name=\"get_weather\">",
                     "<|DSML|parameter name=\"city\">X</|DSML|parameter></|DSML|invoke>"])
    assert text_of(events) == "Line one\n\nLine two"
    _, events = run(["Line one\n\n", "Line two  \n"])
    assert text_of(events) == "Line one\n\nLine two  \n"


FRAGMENTS = ["<", "｜", "|", "‖", "/", "DSML", "tool_calls", "function_calls", "invoke", "parameter", " name=\"",
             "get_weather", "city", "\" string=\"true\"", "\" string=\"false\"", ">", "Paris", "3", "\n", " ",
             "```", "~~~", "`", "{", "}", "\"tool_calls\"", ":", "[", "]", "<![CDATA[", "]]>", "tool▁call▁begin",
             "tool▁sep", "tool▁calls▁end", "function", "text", "<b>", "&", "\\", "北京"]


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=60),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_for_any_text_at_all_the_split_never_changes_the_outcome(parts: list[str], cuts: list[int]) -> None:
    text = "".join(parts)
    whole_stream, whole = run([text])
    split_stream, split = run(split_at(text, cuts))
    assert text_of(split) == text_of(whole)
    assert [(e.name, e.arguments) for e in split if isinstance(e, OutToolCall)] == \
        [(e.name, e.arguments) for e in whole if isinstance(e, OutToolCall)]
    assert split_stream.stopped == whole_stream.stopped
