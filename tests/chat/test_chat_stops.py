"""Stop sequences: bounded in count and length, matched in linear work across any chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek2api.api.openai.protocol import RequestInvalid, validate_request
from deepseek2api.chat.assemble import OutContent, OutFinish, TurnAssembler
from deepseek2api.chat.stops import MAX_STOP_CHARS, MAX_STOP_SEQUENCES, StopMatcher
from deepseek2api.deepseek.events import ContentDelta, Finished


def body(**fields):
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], **fields}


def assemble(chunks: list[str], stop: list[str]) -> tuple[str, OutFinish, TurnAssembler]:
    assembler = TurnAssembler(stop=stop)
    events = []
    for chunk in chunks:
        events += assembler.push(ContentDelta(chunk))
    events += assembler.push(Finished("FINISHED"))
    finish = events[-1]
    assert isinstance(finish, OutFinish)
    return "".join(e.text for e in events if isinstance(e, OutContent)), finish, assembler


def chunked(text: str, sizes: list[int]) -> list[str]:
    out, at, k = [], 0, 0
    while at < len(text):
        size = sizes[k % len(sizes)]
        out.append(text[at:at + size])
        at, k = at + size, k + 1
    return out


@pytest.mark.parametrize("stop", [["x" * (MAX_STOP_CHARS + 1)], "y" * (MAX_STOP_CHARS + 1),
                                  ["ok", "z" * 1_000_000]])
def test_a_stop_sequence_longer_than_the_cap_is_a_400_naming_stop(stop) -> None:
    with pytest.raises(RequestInvalid) as caught:
        validate_request(body(stop=stop))
    assert caught.value.status == 400
    assert caught.value.param is not None and caught.value.param.startswith("stop")
    assert caught.value.code == "string_above_max_length"
    assert str(MAX_STOP_CHARS) in caught.value.message


def test_stop_sequences_at_the_limits_are_accepted() -> None:
    request = validate_request(body(stop=["s" * MAX_STOP_CHARS] * MAX_STOP_SEQUENCES))
    assert request.stop is not None and len(request.stop) == MAX_STOP_SEQUENCES


def test_a_long_adversarial_stop_costs_linear_work_per_character() -> None:
    """'aaa…ab' against 'aaaa…': the old matcher re-compared the whole held tail on every chunk."""
    stop = "a" * (MAX_STOP_CHARS - 1) + "b"
    reply = "a" * 200_000
    content, finish, assembler = assemble(chunked(reply, [1, 2, 3]), [stop])
    assert content == reply and finish.stop_sequence is None
    steps = sum(m.steps for m in assembler._matchers)
    assert steps <= 2 * len(reply)


def test_the_match_is_found_when_the_stop_straddles_many_chunks() -> None:
    stop = "ab" * 100 + "c"
    reply = "x" * 50 + "ab" * 150 + "c" + " tail"
    content, finish, _ = assemble(chunked(reply, [1, 7, 3]), [stop])
    assert content == "x" * 50 + "ab" * 50
    assert finish.stop_sequence == stop


def test_the_matcher_reports_where_the_first_match_ends() -> None:
    matcher = StopMatcher("abab")
    assert matcher.scan("xxaba") is None and matcher.state == 3
    assert matcher.scan("bab") == 1
    assert StopMatcher("aab").scan("aaab") == 4


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab", max_size=60), stop=st.text(alphabet="ab", min_size=1, max_size=6),
       sizes=st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_any_chunking_gives_the_text_before_the_first_match(text: str, stop: str, sizes: list[int]) -> None:
    content, finish, _ = assemble(chunked(text, sizes), [stop])
    at = text.find(stop)
    assert content == (text if at < 0 else text[:at])
    assert finish.stop_sequence == (None if at < 0 else stop)
