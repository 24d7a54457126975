"""TurnAssembler: citations split across deltas, stop sequences, finish reasons."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek2api.chat.assemble import OutContent, OutFinish, OutReasoning, TurnAssembler
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import (
    ContentDelta,
    Finished,
    Ready,
    ReasoningDelta,
    SearchResult,
    SearchResults,
    Title,
    UpstreamError,
    Usage,
)

RESULTS = SearchResults(
    (
        SearchResult(1, "https://example.org/a", "Release notes A"),
        SearchResult(2, "https://example.net/b", "Changelog B"),
    )
)
ANSWER = "Answer [citation:1] and [citation:2]."
RENDERED = "Answer [1](https://example.org/a) and [2](https://example.net/b)."


def run(chunks, *, stop=(), citations="link", results=RESULTS, status="FINISHED", reasoning=()):
    """Drive one turn; return (content, reasoning, finish, all events)."""
    assembler = TurnAssembler(stop=stop, citations=citations)
    events = []
    events += assembler.push(Ready(1, 2, "default"))
    if results is not None:
        events += assembler.push(results)
    for text in reasoning:
        events += assembler.push(ReasoningDelta(text))
    for text in chunks:
        events += assembler.push(ContentDelta(text))
    if status is not None:
        events += assembler.push(Finished(status))
    events += assembler.finish()
    content = "".join(e.text for e in events if isinstance(e, OutContent))
    thought = "".join(e.text for e in events if isinstance(e, OutReasoning))
    finishes = [e for e in events if isinstance(e, OutFinish)]
    assert len(finishes) == 1 and events[-1] is finishes[0], "exactly one OutFinish, always last"
    assert all(e.text for e in events if isinstance(e, (OutContent, OutReasoning))), "no empty deltas"
    assert finishes[0].content_text == content and finishes[0].reasoning_text == thought
    return content, thought, finishes[0], events


def splits(text: str, parts: int):
    for cuts in itertools.combinations(range(1, len(text)), parts - 1):
        bounds = (0, *cuts, len(text))
        yield [text[a:b] for a, b in itertools.pairwise(bounds)]


def test_whole_answer_renders_links() -> None:
    content, _, finish, _ = run([ANSWER])
    assert content == RENDERED
    assert finish.finish_reason == "stop" and finish.upstream_status == "FINISHED"
    assert finish.citations == RESULTS.results


@pytest.mark.parametrize("cut", range(1, len(ANSWER)))
def test_citations_split_at_every_point(cut: int) -> None:
    assert run([ANSWER[:cut], ANSWER[cut:]])[0] == RENDERED


def test_citations_split_into_three_pieces_every_way() -> None:
    for chunks in splits(ANSWER, 3):
        assert run(chunks)[0] == RENDERED, chunks


def test_citations_one_character_at_a_time() -> None:
    assert run(list(ANSWER))[0] == RENDERED


def test_protocol_example_split() -> None:
    chunks = ["The newest release is 3.99", "[c", "itation", ":1]."]
    assert run(chunks)[0] == "The newest release is 3.99[1](https://example.org/a)."


def test_partial_marker_is_held_back_then_released() -> None:
    assembler = TurnAssembler()
    assembler.push(RESULTS)
    assert assembler.push(ContentDelta("See [cit")) == [OutContent("See ")]
    assert assembler.push(ContentDelta("ation:2] ok")) == [OutContent("[2](https://example.net/b) ok")]


def test_text_that_cannot_be_a_marker_is_not_held() -> None:
    assembler = TurnAssembler()
    assert assembler.push(ContentDelta("a[0] and [x")) == [OutContent("a[0] and [x")]
    assert assembler.push(ContentDelta("[citation:12a]")) == [OutContent("[citation:12a]")]


def test_unfinished_marker_is_flushed_as_text_at_the_end() -> None:
    content, _, _, _ = run(["see [citation:"], status=None)
    assert content == "see [citation:"
    content, _, _, _ = run(["see [citation:1"], status="FINISHED")
    assert content == "see [citation:1"


def test_unknown_index_is_stripped() -> None:
    assert run(["A [citation:9] B [citation:1]"])[0] == "A  B [1](https://example.org/a)"
    assert run(["A [citation:1]"], results=None)[0] == "A "


def test_strip_mode_removes_all_markers() -> None:
    for chunks in splits(ANSWER, 2):
        assert run(chunks, citations="strip")[0] == "Answer  and ."


def test_latest_search_results_are_used() -> None:
    assembler = TurnAssembler()
    assembler.push(SearchResults((SearchResult(1, "https://old.example/"),)))
    assembler.push(SearchResults((SearchResult(1, "https://new.example/"), SearchResult(2, "https://two.example/"))))
    out = assembler.push(ContentDelta("x[citation:2][citation:1]"))
    assert out == [OutContent("x[2](https://two.example/)[1](https://new.example/)")]


def test_reference_markers_one_and_zero_based() -> None:
    assert run(["a[reference:1]"])[0] == "a[1](https://example.org/a)"
    assert run(["a[reference:0] b[reference:1]"])[0] == "a[1](https://example.org/a) b[2](https://example.net/b)"


def test_url_cannot_break_the_markdown_link() -> None:
    results = SearchResults((SearchResult(1, "https://x.example/a (b)"),))
    assert run(["[citation:1]"], results=results)[0] == "[1](https://x.example/a%20%28b%29)"


CHARS = st.sampled_from(["a", " ", "[", "]", ":", "1", "2", "9", "c", "[citation:1]", "[citation:", "[reference:2]"])


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(CHARS, max_size=30), data=st.data())
def test_any_split_renders_like_the_whole(pieces, data) -> None:
    text = "".join(pieces)
    whole = run([text])[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=6)))
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(chunks)[0] == whole


# -- stop sequences ------------------------------------------------------------------------------

STOP_TEXT = "Hello there STOP and more"


@pytest.mark.parametrize("cut", range(1, len(STOP_TEXT)))
def test_stop_split_at_every_point(cut: int) -> None:
    content, _, finish, _ = run([STOP_TEXT[:cut], STOP_TEXT[cut:]], stop=["STOP"])
    assert content == "Hello there "
    assert finish.finish_reason == "stop"
    assert finish.stop_sequence == "STOP"
    assert finish.upstream_status is None


def test_stop_split_three_ways() -> None:
    for chunks in splits(STOP_TEXT, 3):
        content, _, finish, _ = run(chunks, stop=["zzz", "STOP", "there STOP!"])
        assert content == "Hello there ", chunks
        assert finish.stop_sequence == "STOP"


def test_after_a_stop_everything_is_ignored() -> None:
    assembler = TurnAssembler(stop=["\n\n"])
    out = assembler.push(ContentDelta("one\n"))
    assert out == [OutContent("one")]
    out = assembler.push(ContentDelta("\ntwo"))
    assert out[-1].finish_reason == "stop" and out[-1].stop_sequence == "\n\n"
    assert assembler.stopped and assembler.done
    assert assembler.push(ContentDelta("three")) == []
    assert assembler.push(ReasoningDelta("late thought")) == []
    assert assembler.push(Finished("FINISHED")) == []
    assert assembler.finish() == []
    assert assembler.content_text == "one"


def test_earliest_stop_wins() -> None:
    content, _, finish, _ = run(["abc END def STOP"], stop=["STOP", "END"])
    assert content == "abc " and finish.stop_sequence == "END"


def test_only_a_possible_stop_prefix_is_held_back() -> None:
    assembler = TurnAssembler(stop=["STOP"])
    assert assembler.push(ContentDelta("Hello S")) == [OutContent("Hello ")]
    assert assembler.push(ContentDelta("ure")) == [OutContent("Sure")]
    assert assembler.push(ContentDelta("xyz")) == [OutContent("xyz")]


def test_held_stop_prefix_is_flushed_when_the_turn_ends() -> None:
    content, _, finish, _ = run(["ends with ST"], stop=["STOP"])
    assert content == "ends with ST" and finish.stop_sequence is None
    content, _, _, _ = run(["ends with ST"], stop=["STOP"], status=None)
    assert content == "ends with ST"


def test_stop_applies_to_rendered_citations_not_to_reasoning() -> None:
    content, thought, finish, _ = run(
        ["fine [citation:1] STOP hidden"], stop=["STOP"], reasoning=["I will say STOP ", "later"]
    )
    assert thought == "I will say STOP later"
    assert content == "fine [1](https://example.org/a) "
    assert finish.stop_sequence == "STOP"


def test_stop_inside_a_held_citation_marker() -> None:
    content, _, finish, _ = run(["x [citat", "ion:"], stop=["ion:"], status=None)
    assert content == "x [citat" and finish.stop_sequence == "ion:"


# -- reasoning and finish reasons ----------------------------------------------------------------


def test_reasoning_is_never_mixed_into_content() -> None:
    content, thought, _finish, events = run(["It is 42."], reasoning=["The user wants", " a short answer."])
    assert thought == "The user wants a short answer."
    assert content == "It is 42."
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OutReasoning", "OutReasoning", "OutContent", "OutFinish"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("FINISHED", "stop"),
        ("CONTENT_FILTER", "content_filter"),
        ("INCOMPLETE", "length"),
        ("STOPPED", "stop"),
        ("ERROR", "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reason_mapping(status: str, reason: str) -> None:
    _, _, finish, _ = run(["x"], status=status)
    assert finish.finish_reason == reason
    assert finish.upstream_status == status


def test_content_filter_error_event_finishes_with_content_filter() -> None:
    assembler = TurnAssembler(stop=["zz"])
    assembler.push(ContentDelta("partial answer z"))
    out = assembler.push(UpstreamError(ErrorKind.CONTENT_FILTER, "filtered"))
    assert out[-1].finish_reason == "content_filter"
    assert assembler.content_text == "partial answer z"


def test_other_events_produce_nothing() -> None:
    assembler = TurnAssembler()
    assert assembler.push(Title("t")) == []
    assert assembler.push(Usage(12)) == []
    assert assembler.upstream_tokens == 12
    assert assembler.push(UpstreamError(ErrorKind.NETWORK, "reset")) == []
    assert not assembler.done


def test_finish_without_upstream_status() -> None:
    _, _, finish, _ = run(["x"], status=None)
    assert finish.finish_reason == "stop" and finish.upstream_status is None
