"""The decoder never raises, its output is always well-formed, and chunking never changes the result."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decode_support import CAPTURES, assert_well_formed, feed_chunks, load_capture, summarize
from deepseek2api.deepseek.decode import StreamDecoder, decode_body
from deepseek2api.deepseek.events import ContentDelta, ReasoningDelta

# DS2API_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite light.
FUZZ = settings(max_examples=int(os.environ.get("DS2API_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["response", "fragments", "blocks", "content", "thinking_content", "type", "id", "status", "quasi_status",
        "results", "search_results", "accumulated_token_usage", "url", "cite_index", "p", "o", "v", "choices",
        "delta", "finish_reason", "code", "data", "biz_code", "error", "auto_continue"]
TYPES = ["THINK", "THINKING", "RESPONSE", "TIP", "SEARCH", "TOOL_SEARCH", "search", "response", "think", "X", 5, None]
STATUSES = ["WIP", "FINISHED", "INCOMPLETE", "CONTENT_FILTER", "", None, 3]
PATHS = ["", "response", "response/status", "response/quasi_status", "response/fragments", "response/blocks",
         "response/fragments/-1/content", "response/fragments/0/content", "response/fragments/-1",
         "response/blocks/-1/content", "response/content", "response/thinking_content",
         "response/fragments/-1/results", "response/search_results", "response/accumulated_token_usage",
         "fragments", "fragments/-1/content", "status", "quasi_status", "accumulated_token_usage",
         "response/fragments/99999999999999999999999/content", "response/fragments/-7/content",
         "response/fragments/x/content", "response/status/deeper/still", "/response//fragments/-1/content"]
OPS = ["SET", "APPEND", "BATCH", "append", "set", "batch", "REMOVE", "", 5, None]

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=False) | st.text(max_size=6) | st.sampled_from(STATUSES))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
fragments = st.fixed_dictionaries(
    {"id": st.integers(0, 4) | st.none() | st.text(max_size=2), "type": st.sampled_from(TYPES)},
    optional={"content": st.text(max_size=6) | st.none() | json_values,
              "results": st.lists(st.fixed_dictionaries({}, optional={
                  "url": st.text(max_size=4) | st.integers(), "cite_index": st.integers(-2, 4) | st.none() | st.text(max_size=1),
                  "title": json_values}), max_size=3),
              "status": st.sampled_from(STATUSES)},
)
values = json_values | fragments | st.lists(fragments, max_size=3) | st.text(max_size=8)
patch = st.fixed_dictionaries(
    {}, optional={"p": st.sampled_from(PATHS) | json_values, "o": st.sampled_from(OPS), "v": values})
batch_items = st.lists(st.fixed_dictionaries({}, optional={"p": st.sampled_from(PATHS), "o": st.sampled_from(OPS), "v": values}), max_size=4)
batch = st.builds(lambda items, p: {"p": p, "o": "BATCH", "v": items}, batch_items, st.sampled_from(["response", "", "response/fragments"]))
snapshot = st.builds(
    lambda frags, status, usage: {"v": {"response": {"status": status, "fragments": frags, "accumulated_token_usage": usage}}},
    st.lists(fragments, max_size=3), st.sampled_from(STATUSES), st.integers(-1, 50) | st.none(),
)
gen_a = st.builds(
    lambda kind, text, reason: {"choices": [{"index": 0, "delta": {"type": kind, "content": text}, "finish_reason": reason}]},
    st.sampled_from(["thinking", "text", None, "search_result"]), st.text(max_size=5) | json_values,
    st.sampled_from([None, None, "stop", "backend_busy", "length", "weird"]),
)
named = st.tuples(st.sampled_from(["ready", "title", "hint", "close", "update_session", "finish", "error", "weird"]), json_values)
raw_lines = st.sampled_from([
    b": keep-alive\n", b"\n", b"\r\n", b"data: [DONE]\n\n", b"data: {broken\n\n", b"garbage\n", b"id: 3\n",
    b"data: \xff\xfe\n\n", b"<html><title>x</title>\n", b'{"code":40003,"msg":"invalid token","data":null}\n',
    b'{"code":0,"msg":"","data":{"biz_code":0,"biz_data":{}}}\n', b"event: close\n\n", b"data:\n\n", b"\xef\xbb\xbf",
    b'data: {"v":"' + b"[" * 3000 + b'"}\n\n', b"data: " + b"[" * 100_000 + b"\n\n",
])
items = st.one_of(patch, patch, batch, snapshot, gen_a, named, raw_lines, json_values)


def _body(parts) -> bytes:
    out = []
    for part in parts:
        if isinstance(part, bytes):
            out.append(part)
        elif isinstance(part, tuple):
            out.append(f"event: {part[0]}\ndata: {json.dumps(part[1])}\n\n".encode())
        else:
            out.append(f"data: {json.dumps(part)}\n\n".encode("utf-8", "surrogatepass"))
    return b"".join(out)


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks, last = [], 0
    for point in points:
        chunks.append(body[last:point])
        last = point
    chunks.append(body[last:])
    return chunks


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(0, 10_000), max_size=12))
def test_random_bytes(body, cuts):
    whole = decode_body(body)
    assert_well_formed(whole)
    assert summarize(feed_chunks(_split(body, cuts))) == summarize(whole)


@FUZZ
@given(st.lists(items, max_size=14), st.lists(st.integers(0, 100_000), max_size=16), st.booleans())
def test_event_soup(parts, cuts, crlf):
    body = _body(parts)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    whole = decode_body(body)
    assert_well_formed(whole)
    for event in whole:
        if isinstance(event, (ReasoningDelta, ContentDelta)):
            assert isinstance(event.text, str) and event.text
    assert summarize(feed_chunks(_split(body, cuts))) == summarize(whole)


@FUZZ
@given(st.lists(items, max_size=8), st.lists(items, max_size=8))
def test_continue_rounds_never_raise(round_1, round_2):
    decoder = StreamDecoder()
    events = decoder.feed(_body(round_1)) + decoder.close()
    decoder.begin_continue_round()
    events += decoder.feed(_body(round_2)) + decoder.close()
    assert_well_formed(events)


@FUZZ
@given(st.sampled_from(CAPTURES), st.integers(0, 10**6), st.lists(st.integers(0, 10**6), max_size=20))
def test_truncated_captures(name, cut, cuts):
    body, expected = load_capture(name)
    truncated = body[: cut % (len(body) + 1)]
    events = feed_chunks(_split(truncated, cuts))
    assert_well_formed(events)
    reasoning, content, _ = summarize(events)
    assert expected["reasoning"].startswith(reasoning)
    assert expected["content"].startswith(content)


@FUZZ
@given(st.sampled_from(CAPTURES), st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=3)), max_size=5))
def test_corrupted_captures(name, corruptions):
    body = bytearray(load_capture(name)[0])
    for position, junk in corruptions:
        position %= len(body)
        body[position : position + len(junk)] = junk
    assert_well_formed(decode_body(bytes(body)))


def test_odd_values_from_the_brief():
    for payload in ({"p": 5, "v": None}, {"v": [[[]]]}, {"v": None}, {"p": None, "o": None},
                    {"p": "response/fragments/-1/content", "o": "APPEND", "v": {"a": 1}},
                    {"p": "response/fragments/10000000000000000000000000/content", "v": "x"},
                    {"p": "response", "o": "BATCH", "v": [{"p": "x", "o": "BATCH", "v": [{"o": "BATCH", "v": []}]}]},
                    {"o": "BATCH", "v": "not a list"}, {"p": "", "o": "APPEND", "v": {"response": 1}}):
        events = decode_body(_body([{"v": {"response": {"status": "WIP", "fragments": []}}}, payload]))
        assert_well_formed(events)


def test_deeply_nested_batches_are_bounded():
    inner: dict = {"p": "status", "v": "FINISHED"}
    for _ in range(150):
        inner = {"p": "", "o": "BATCH", "v": [inner]}
    body = _body([{"v": {"response": {"status": "WIP", "fragments": []}}}, {"p": "response", "o": "BATCH", "v": [inner]}])
    assert_well_formed(decode_body(body))
