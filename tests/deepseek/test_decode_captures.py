"""The real April 2026 captures must decode to their expected.json, however the bytes are split."""

from __future__ import annotations

import random

import pytest

from decode_support import (
    CAPTURES,
    assert_well_formed,
    byte_chunks,
    feed_chunks,
    load_capture,
    random_chunks,
    summarize,
)
from deepseek2api.deepseek.decode import StreamDecoder, decode_body
from deepseek2api.deepseek.events import Finished, Ready, Title, Usage


def _check_expected(events, expected):
    assert_well_formed(events)
    reasoning, content, others = summarize(events)
    assert reasoning == expected["reasoning"]
    assert content == expected["content"]
    finishes = [e for e in others if isinstance(e, Finished)]
    assert finishes == [Finished(expected["finish_status"])]
    usages = [e for e in others if isinstance(e, Usage)]
    assert usages[-1].accumulated_tokens == expected["accumulated_token_usage"]
    titles = [e.text for e in others if isinstance(e, Title)]
    assert titles == ([expected["title"]] if expected["title"] is not None else [])


@pytest.mark.parametrize("name", CAPTURES)
def test_whole_body_matches_expected(name):
    body, expected = load_capture(name)
    events = decode_body(body)
    _check_expected(events, expected)
    assert isinstance(events[0], Ready) and events[0].response_message_id == 2
    # The TIP disclaimer fragment must never leak into the answer.
    assert "本回答由 AI 生成" not in summarize(events)[1]


@pytest.mark.parametrize("name", CAPTURES)
def test_random_splits_match_whole_body(name):
    body, expected = load_capture(name)
    reference = summarize(decode_body(body))
    rng = random.Random(f"splits-{name}")
    for iteration in range(60):
        max_size = rng.choice([1, 2, 3, 7, 16, 64, 512, 4096])
        events = feed_chunks(random_chunks(body, rng, max_size))
        assert summarize(events) == reference, f"iteration {iteration}, max chunk {max_size}"
        _check_expected(events, expected)


@pytest.mark.parametrize("name", CAPTURES)
def test_byte_by_byte(name):
    body, expected = load_capture(name)
    _check_expected(feed_chunks(byte_chunks(body)), expected)


@pytest.mark.parametrize("name", CAPTURES)
def test_crlf_line_endings(name):
    body, expected = load_capture(name)
    crlf = body.replace(b"\n", b"\r\n")
    _check_expected(decode_body(crlf), expected)
    rng = random.Random(f"crlf-{name}")
    for _ in range(10):
        _check_expected(feed_chunks(random_chunks(crlf, rng, 5)), expected)


def test_first_characters_come_from_the_snapshot():
    body, expected = load_capture(CAPTURES[0])
    assert expected["reasoning"].startswith("我们")
    events = decode_body(body)
    reasoning = summarize(events)[0]
    assert reasoning.startswith("我们被要求")


def test_leading_success_envelope_is_not_an_error():
    body, expected = load_capture(CAPTURES[0])
    assert body.startswith(b'{"code":0')
    decoder = StreamDecoder()
    first_line = body[: body.index(b"\n") + 1]
    assert decoder.feed(first_line) == []
    assert not decoder.failed
    events = decoder.feed(body[len(first_line) :]) + decoder.close()
    _check_expected(events, expected)


@pytest.mark.parametrize("name", CAPTURES)
def test_truncated_capture_reports_stream_cut(name):
    body, expected = load_capture(name)
    cut = body[: len(body) // 2]
    events = decode_body(cut)
    assert_well_formed(events)
    reasoning, content, others = summarize(events)
    assert (expected["reasoning"] + expected["content"]).startswith(reasoning + content)
    assert not any(isinstance(e, Finished) for e in others)
    assert others[-1].kind.value == "stream_cut"


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_repeated_as_continue_round_does_not_duplicate(name):
    """A second round that re-sends the same message adds nothing (§6.9 step 9)."""
    body, expected = load_capture(name)
    decoder = StreamDecoder()
    first = decoder.feed(body) + decoder.close()
    decoder.begin_continue_round()
    second = decoder.feed(body) + decoder.close()
    reasoning, content, others = summarize(second)
    assert reasoning == "" and content == ""
    assert [e for e in others if isinstance(e, Finished)] == [Finished("FINISHED")]
    assert not any(isinstance(e, Usage) for e in others)  # unchanged usage is not re-reported
    _check_expected(first, expected)
