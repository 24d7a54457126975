"""Terminal statuses, usage, content filter and chat/continue rounds (docs/protocol.md)."""

from __future__ import annotations

import random

from decode_support import assert_well_formed, feed_chunks, random_chunks, sse, summarize
from deepseek2api.deepseek.decode import StreamDecoder, decode_body
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import Finished, Ready, UpstreamError, Usage


def _snapshot(fragments, status="WIP", usage=0, **extra):
    response = {"message_id": 2, "parent_id": 1, "status": status, "accumulated_token_usage": usage,
                "fragments": fragments, "has_pending_fragment": False, "auto_continue": False}
    response.update(extra)
    return {"v": {"response": response}}


def _finishes(events):
    return [e for e in events if isinstance(e, Finished)]


# --- Finished ----------------------------------------------------------------------------------


def test_quasi_then_status_gives_one_finished():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
        {"p": "response", "o": "BATCH", "v": [{"p": "quasi_status", "v": "FINISHED"}]},
        {"p": "response/status", "o": "SET", "v": "FINISHED"},
        ("close", {}),
    )
    assert _finishes(decode_body(body)) == [Finished("FINISHED")]


def test_only_quasi_status_is_used_at_close():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
        {"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 3}, {"p": "quasi_status", "v": "FINISHED"}]},
    )
    decoder = StreamDecoder()
    events = decoder.feed(body)
    assert _finishes(events) == []  # held back: response/status may still come
    assert decoder.finished_status is None
    events += decoder.close()
    assert_well_formed(events)
    assert _finishes(events) == [Finished("FINISHED")]
    assert decoder.finished_status == "FINISHED"


def test_only_quasi_status_is_used_at_close_event():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
        {"p": "response", "o": "BATCH", "v": [{"p": "quasi_status", "v": "FINISHED"}]},
        ("close", {"click_behavior": "none", "auto_resume": False}),
    )
    decoder = StreamDecoder()
    assert _finishes(decoder.feed(body)) == [Finished("FINISHED")]
    assert decoder.close() == []


def test_batch_status_gen_b_style():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
        {"p": "response", "o": "BATCH", "v": [{"p": "status", "v": "FINISHED"}]},
    )
    assert _finishes(decode_body(body)) == [Finished("FINISHED")]


def test_incomplete_status():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "part"}]),
        {"p": "response/status", "v": "INCOMPLETE"},
        ("close", {}),
    )
    decoder = StreamDecoder()
    events = decoder.feed(body) + decoder.close()
    assert _finishes(events) == [Finished("INCOMPLETE")]
    assert decoder.finished_status == "INCOMPLETE"
    assert not any(isinstance(e, UpstreamError) for e in events)


def test_status_without_terminal_value_then_cut():
    body = sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "x"}]), {"p": "response/status", "v": "WIP"})
    events = decode_body(body)
    assert events[-1] == UpstreamError(ErrorKind.STREAM_CUT, "upstream stream ended before the reply finished")


def test_terminal_status_inside_snapshot_counts_only_on_clean_end():
    snap = _snapshot([{"id": 1, "type": "RESPONSE", "content": "done"}], status="FINISHED")
    assert _finishes(decode_body(sse(snap, ("close", {})))) == [Finished("FINISHED")]
    cut = decode_body(sse(snap))
    assert cut[-1].kind is ErrorKind.STREAM_CUT


def test_usage_emitted_when_it_changes():
    body = sse(
        _snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
        {"p": "response/accumulated_token_usage", "v": 5},
        {"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 5}]},
        {"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 9}, {"p": "quasi_status", "v": "FINISHED"}]},
        {"p": "response/status", "v": "FINISHED"},
    )
    assert [e for e in decode_body(body) if isinstance(e, Usage)] == [Usage(5), Usage(9)]


# --- content filter ----------------------------------------------------------------------------

CANNED = "Sorry, I can't discuss that. Let's talk about something else."


def test_content_filter_batch_rewrite_emits_no_canned_text():
    body = sse(
        _snapshot([{"id": 2, "type": "RESPONSE", "content": "It"}]),
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": " and then"},
        {"p": "response", "o": "BATCH", "v": [
            {"p": "fragments", "o": "SET", "v": [{"id": 2, "type": "RESPONSE", "content": CANNED, "references": [], "stage_id": 1}]},
            {"p": "status", "o": "SET", "v": "CONTENT_FILTER"}]},
        ("close", {}),
    )
    events = decode_body(body)
    assert_well_formed(events)
    _reasoning, content, _others = summarize(events)
    assert content == "It and then"
    assert _finishes(events) == [Finished("CONTENT_FILTER")]
    assert not any(isinstance(e, UpstreamError) for e in events)


def test_content_filter_with_new_fragment_id_and_later_appends():
    body = sse(
        _snapshot([{"id": 1, "type": "THINK", "content": "think"}, {"id": 2, "type": "RESPONSE", "content": "ok"}]),
        {"p": "response", "o": "BATCH", "v": [
            {"p": "fragments", "o": "SET", "v": [{"id": 9, "type": "RESPONSE", "content": CANNED}]},
            {"p": "quasi_status", "v": "CONTENT_FILTER"}]},
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": " more canned"},
        {"p": "response/status", "v": "CONTENT_FILTER"},
    )
    events = decode_body(body)
    assert summarize(events)[:2] == ("think", "ok")
    assert _finishes(events) == [Finished("CONTENT_FILTER")]


def test_top_level_content_filter_code():
    body = sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]), {"code": "content_filter", "msg": ""})
    events = decode_body(body)
    assert _finishes(events) == [Finished("CONTENT_FILTER")]


# --- continue rounds ---------------------------------------------------------------------------

ROUND_1_EVENTS = (
    ("ready", {"request_message_id": 1, "response_message_id": 2, "model_type": "default"}),
    _snapshot([{"id": 2, "type": "THINK", "content": "Let"}]),
    {"p": "response/fragments/-1/content", "o": "APPEND", "v": " me think."},
    {"p": "response/fragments", "o": "APPEND", "v": [{"id": 3, "type": "RESPONSE", "content": "Part"}]},
    {"p": "response/fragments/-1/content", "v": " one"},
    {"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 40}, {"p": "quasi_status", "v": "INCOMPLETE"}]},
    {"p": "response/status", "o": "SET", "v": "INCOMPLETE"},
    ("close", {"click_behavior": "none", "auto_resume": False}),
)
ROUND_1 = sse(*ROUND_1_EVENTS)

ROUND_2 = sse(
    ("ready", {"request_message_id": 1, "response_message_id": 2, "model_type": "default"}),
    _snapshot(
        [{"id": 2, "type": "THINK", "content": "Let me think."}, {"id": 3, "type": "RESPONSE", "content": "Part one"}],
        status="INCOMPLETE",
        usage=40,
    ),
    {"p": "response/status", "v": "WIP"},
    {"p": "response/fragments/-1/content", "o": "APPEND", "v": ", part two"},
    {"v": " and the end."},
    {"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 77}, {"p": "quasi_status", "v": "FINISHED"}]},
    {"p": "response/status", "o": "SET", "v": "FINISHED"},
    ("close", {"click_behavior": "none", "auto_resume": False}),
)


def _two_rounds(chunker):
    decoder = StreamDecoder()
    first = feed_chunks(chunker(ROUND_1), decoder)
    assert decoder.finished_status == "INCOMPLETE"
    decoder.begin_continue_round()
    assert decoder.finished_status is None
    second = feed_chunks(chunker(ROUND_2), decoder)
    return decoder, first, second


def test_continue_round_does_not_duplicate_text():
    decoder, first, second = _two_rounds(lambda body: [body])
    assert_well_formed(first)
    assert_well_formed(second)
    assert summarize(first)[:2] == ("Let me think.", "Part one")
    assert _finishes(first) == [Finished("INCOMPLETE")]
    reasoning, content, _others = summarize(second)
    assert reasoning == ""
    assert content == ", part two and the end."
    assert _finishes(second) == [Finished("FINISHED")]
    assert [e for e in second if isinstance(e, Usage)] == [Usage(77)]
    assert isinstance(second[0], Ready)
    assert decoder.finished_status == "FINISHED"


def test_continue_round_random_splits():
    rng = random.Random("continue")
    reference = _two_rounds(lambda body: [body])
    for _ in range(30):
        _, first, second = _two_rounds(lambda body: random_chunks(body, rng, 11))
        assert summarize(first) == summarize(reference[1])
        assert summarize(second) == summarize(reference[2])


def test_continue_round_snapshot_with_more_than_was_received():
    """Round 1 was cut mid-answer; the continue snapshot carries text we never saw: emit just that."""
    decoder = StreamDecoder()
    cut = sse(*ROUND_1_EVENTS[:5])  # everything before the final BATCH
    first = decoder.feed(cut) + decoder.close()
    assert first[-1].kind is ErrorKind.STREAM_CUT
    # The runner would stop here; a decoder reused anyway still must not emit after an error.
    decoder.begin_continue_round()
    assert decoder.feed(ROUND_2) == [] and decoder.close() == []

    decoder = StreamDecoder()
    decoder.feed(cut)
    decoder.feed(sse({"p": "response/status", "v": "INCOMPLETE"}))
    decoder.close()
    decoder.begin_continue_round()
    bigger = sse(
        _snapshot([{"id": 2, "type": "THINK", "content": "Let me think. Also this."},
                   {"id": 3, "type": "RESPONSE", "content": "Part one, unseen"}], status="WIP", usage=40),
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": " tail."},
        {"p": "response/status", "v": "FINISHED"},
    )
    second = decoder.feed(bigger) + decoder.close()
    assert summarize(second)[:2] == (" Also this.", ", unseen tail.")
    assert _finishes(second) == [Finished("FINISHED")]


def test_three_rounds():
    decoder = StreamDecoder()
    texts = []
    bodies = [
        sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]), {"p": "response/status", "v": "INCOMPLETE"}),
        sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}], status="INCOMPLETE"),
            {"p": "response/fragments/-1/content", "o": "APPEND", "v": "b"}, {"p": "response/status", "v": "INCOMPLETE"}),
        sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "ab"}], status="INCOMPLETE"),
            {"p": "response/fragments/-1/content", "o": "APPEND", "v": "c"}, {"p": "response/status", "v": "FINISHED"}),
    ]
    statuses = []
    for i, body in enumerate(bodies):
        if i:
            decoder.begin_continue_round()
        events = decoder.feed(body) + decoder.close()
        texts.append(summarize(events)[1])
        statuses.append(decoder.finished_status)
    assert texts == ["a", "b", "c"]
    assert statuses == ["INCOMPLETE", "INCOMPLETE", "FINISHED"]


def test_auto_continue_flag_is_exposed():
    decoder = StreamDecoder()
    decoder.feed(sse(_snapshot([{"id": 1, "type": "RESPONSE", "content": "a"}]),
                     {"p": "response/auto_continue", "v": True}))
    assert decoder.auto_continue is True
