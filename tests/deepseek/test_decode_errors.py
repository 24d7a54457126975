"""Errors and abnormal endings (docs/protocol.md): every one becomes a single last UpstreamError."""

from __future__ import annotations

import json
import random

import pytest

from decode_support import assert_well_formed, byte_chunks, feed_chunks, random_chunks, sse, summarize
from deepseek2api.deepseek.decode import StreamDecoder, decode_body
from deepseek2api.deepseek.errors import ErrorKind
from deepseek2api.deepseek.events import ContentDelta, Finished, UpstreamError

SNAPSHOT = {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": "Hi"}]}}}
MUTED = {"code": 0, "msg": "", "data": {"biz_code": 5, "biz_msg": "user is muted",
                                        "biz_data": {"is_muted": 1, "mute_until": 1789259200.5}}}
WAF_PAGE = (
    b"<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Just a moment...</title></head>\n"
    b"<body><div>Checking your browser</div></body></html>\n"
)


def _error(events) -> UpstreamError:
    assert_well_formed(events)
    assert isinstance(events[-1], UpstreamError), events
    return events[-1]


def _all_splits(body: bytes):
    """The whole body, random splits and byte-by-byte: each must give the same error."""
    rng = random.Random(body)
    yield [body]
    for _ in range(5):
        yield random_chunks(body, rng, 7)
    yield byte_chunks(body)


@pytest.mark.parametrize(
    ("envelope", "kind"),
    [
        ({"code": 40301, "msg": "INVALID_POW_RESPONSE", "data": None}, ErrorKind.POW_REJECTED),
        ({"code": 40003, "msg": "Authorization Failed (invalid token)", "data": None}, ErrorKind.TOKEN_INVALID),
        ({"code": 1001, "msg": "server busy", "data": None}, ErrorKind.BUSY),
        ({"code": 0, "msg": "", "data": {"biz_code": 10, "biz_msg": "too many ref file", "biz_data": None}}, ErrorKind.TOO_MANY_FILES),
    ],
)
@pytest.mark.parametrize("framing", ["bare", "bare-no-newline", "sse"])
def test_envelope_errors(envelope, kind, framing):
    text = json.dumps(envelope).encode()
    body = {"bare": text + b"\n", "bare-no-newline": text, "sse": b"data: " + text + b"\n\n"}[framing]
    for chunks in _all_splits(body):
        error = _error(feed_chunks(chunks))
        assert error.kind is kind
        assert str(envelope.get("code") or envelope["data"]["biz_code"]) in error.message


@pytest.mark.parametrize("framing", ["bare", "sse"])
def test_muted_account_carries_until(framing):
    text = json.dumps(MUTED).encode()
    body = text if framing == "bare" else b"data: " + text + b"\n\n"
    error = _error(decode_body(body))
    assert error.kind is ErrorKind.ACCOUNT_MUTED
    assert error.until == 1789259200.5


def test_pretty_printed_envelope_body():
    body = json.dumps({"code": 40003, "msg": "Authorization Failed (invalid token)", "data": None}, indent=2).encode()
    assert _error(decode_body(body)).kind is ErrorKind.TOKEN_INVALID


def test_success_envelope_alone_is_not_a_stream():
    body = json.dumps({"code": 0, "msg": "", "data": {"biz_code": 0, "biz_msg": "", "biz_data": {"id": "f"}}}).encode()
    error = _error(decode_body(body + b"\n"))
    assert error.kind is ErrorKind.PROTOCOL


def test_error_envelope_mid_stream_stops_everything():
    body = sse(SNAPSHOT, MUTED, {"p": "response/fragments/-1/content", "o": "APPEND", "v": " never"},
               {"p": "response/status", "v": "FINISHED"})
    events = decode_body(body)
    assert events[:-1] == [ContentDelta("Hi")]
    assert _error(events).kind is ErrorKind.ACCOUNT_MUTED


def test_gen_a_backend_busy():
    body = sse(
        {"choices": [{"index": 0, "delta": {"content": "Hel", "type": "text"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Server busy, retry later", "type": "text"}, "finish_reason": "backend_busy"}]},
        "[DONE]",
    )
    events = decode_body(body)
    assert summarize(events)[1] == "Hel"
    error = _error(events)
    assert error.kind is ErrorKind.BUSY


def test_hint_input_exceeds_limit():
    body = sse(
        ("ready", {"request_message_id": 1, "response_message_id": 2}),
        ("hint", {"type": "error", "content": "The message is too long. Please shorten it and try again.",
                  "finish_reason": "input_exceeds_limit"}),
        ("close", {"click_behavior": "none", "auto_resume": False}),
    )
    for chunks in _all_splits(body):
        decoder = StreamDecoder()
        events = feed_chunks(chunks, decoder)
        error = _error(events)
        assert error.kind is ErrorKind.INPUT_TOO_LONG
        assert "too long" in error.message
        assert decoder.failed
        assert decoder.feed(sse(SNAPSHOT)) == [] and decoder.close() == []


def test_hint_chinese_text_and_non_error_hints():
    body = sse(("hint", {"type": "info", "content": "just a notice"}), SNAPSHOT,
               ("hint", {"type": "error", "content": "内容超长，请删减后再试", "finish_reason": "input_exceeds_limit"}))
    events = decode_body(body)
    assert events[0] == ContentDelta("Hi")
    assert _error(events).kind is ErrorKind.INPUT_TOO_LONG


@pytest.mark.parametrize("page", [WAF_PAGE, WAF_PAGE.replace(b"\n", b""), b"\n\n" + WAF_PAGE,
                                  b"<html><head><title>403 Forbidden</title></head></html>"])
def test_waf_html_page(page):
    for chunks in _all_splits(page):
        error = _error(feed_chunks(chunks))
        assert error.kind is ErrorKind.WAF_BLOCKED


def test_waf_detected_before_the_body_ends():
    decoder = StreamDecoder()
    events = decoder.feed(WAF_PAGE[:40])
    assert _error(events).kind is ErrorKind.WAF_BLOCKED


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"error": "something broke"}, ErrorKind.PROTOCOL),
        ({"error": {"message": "Rate limit reached, too many requests", "type": "rate_limit"}}, ErrorKind.RATE_LIMITED),
        ({"error": {"message": "invalid token"}}, ErrorKind.TOKEN_INVALID),
    ],
)
def test_error_key(payload, kind):
    events = decode_body(sse(SNAPSHOT, payload, {"p": "response/status", "v": "FINISHED"}))
    assert events[0] == ContentDelta("Hi")
    assert _error(events).kind is kind


def test_named_error_event():
    events = decode_body(sse(("error", {"message": "server is busy"})))
    assert _error(events).kind is ErrorKind.BUSY


def test_comments_and_done():
    body = (
        b": this is a comment\n\n"
        + sse(SNAPSHOT)
        + b":another\n"
        + sse({"p": "response/status", "v": "FINISHED"})
        + b"data: [DONE]\n\n"
        + sse({"p": "response/fragments/-1/content", "o": "APPEND", "v": "after done"})
    )
    events = decode_body(body)
    assert_well_formed(events)
    assert events == [ContentDelta("Hi"), Finished("FINISHED")]


def test_done_without_status_is_a_cut_for_patch_streams():
    assert _error(decode_body(sse(SNAPSHOT, "[DONE]"))).kind is ErrorKind.STREAM_CUT


def test_truncated_stream_is_stream_cut():
    body = sse(SNAPSHOT, {"p": "response/fragments/-1/content", "o": "APPEND", "v": " there"})
    truncated = body + b'data: {"v":" hal'
    events = decode_body(truncated)
    assert summarize(events)[1] == "Hi there"
    error = _error(events)
    assert error == UpstreamError(ErrorKind.STREAM_CUT, "upstream stream ended before the reply finished")


def test_empty_body_is_stream_cut():
    assert _error(decode_body(b"")).kind is ErrorKind.STREAM_CUT


def test_garbage_body_is_protocol_error():
    body = b"hello\nthis is not\ndata: {nope\ndata: [1,2\n\n"
    error = _error(decode_body(body))
    assert error.kind is ErrorKind.PROTOCOL
    assert "unparseable" in error.message


def test_unparseable_lines_are_skipped():
    body = (sse(SNAPSHOT) + b"data: {broken json\n\n" + b"data: \xff\xfe\n\n" + b"garbage line\n"
            + sse({"p": "response/fragments/-1/content", "o": "APPEND", "v": "!"}, {"p": "response/status", "v": "FINISHED"}))
    events = decode_body(body)
    assert events == [ContentDelta("Hi!"), Finished("FINISHED")]


def test_nothing_after_the_first_error():
    body = sse(SNAPSHOT, {"code": 40003, "msg": "Authorization Failed (invalid token)", "data": None},
               {"code": 40301, "msg": "INVALID_POW_RESPONSE", "data": None}, ("title", {"content": "x"}))
    decoder = StreamDecoder()
    events = decoder.feed(body)
    assert [type(e) for e in events] == [ContentDelta, UpstreamError]
    assert events[-1].kind is ErrorKind.TOKEN_INVALID
    assert decoder.close() == []
    decoder.begin_continue_round()
    assert decoder.feed(sse(SNAPSHOT)) == [] and decoder.close() == []


def test_close_is_idempotent_and_feed_after_close_is_ignored():
    decoder = StreamDecoder()
    decoder.feed(sse(SNAPSHOT, {"p": "response/status", "v": "FINISHED"}))
    assert decoder.close() == []
    assert decoder.close() == []
    assert decoder.feed(sse({"p": "response/fragments/-1/content", "o": "APPEND", "v": "late"})) == []
