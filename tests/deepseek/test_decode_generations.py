"""Format generations A, B, C, C′ (docs/protocol.md) and the patch model's corner cases (§6.3)."""

from __future__ import annotations

import random

import pytest

from decode_support import assert_well_formed, byte_chunks, feed_chunks, random_chunks, sse, summarize
from deepseek2api.deepseek.decode import decode_body
from deepseek2api.deepseek.events import (
    ContentDelta,
    Finished,
    Ready,
    ReasoningDelta,
    SearchResult,
    SearchResults,
    Title,
    Usage,
)

# --- docs/protocol.md, verbatim ---------------------------------------------------------------

EXAMPLE_A = b"""event: ready
data: {"request_message_id":1,"response_message_id":2,"model_type":"default"}

event: update_session
data: {"updated_at":1789000000.120501}

data: {"v":{"response":{"message_id":2,"parent_id":1,"model":"","role":"ASSISTANT","thinking_enabled":false,"ban_edit":false,"ban_regenerate":false,"status":"WIP","incomplete_message":null,"accumulated_token_usage":0,"feedback":null,"inserted_at":1789000000.118,"search_enabled":false,"fragments":[{"id":2,"type":"RESPONSE","content":"Slow","references":[],"stage_id":1}],"conversation_mode":"DEFAULT","has_pending_fragment":false,"auto_continue":false,"search_triggered":false,"extra_search_providers":[]}}}

data: {"p":"response/fragments/-1/content","o":"APPEND","v":" start"}

data: {"v":" doubles the congestion window"}

data: {"v":" each round trip."}

data: {"p":"response","o":"BATCH","v":[{"p":"accumulated_token_usage","v":21},{"p":"quasi_status","v":"FINISHED"}]}

data: {"p":"response/status","o":"SET","v":"FINISHED"}

event: update_session
data: {"updated_at":1789000001.903311}

event: title
data: {"content":"TCP slow start"}

event: close
data: {"click_behavior":"none","auto_resume":false}
"""

EXAMPLE_B = b"""event: ready
data: {"request_message_id":3,"response_message_id":4,"model_type":"default"}

event: update_session
data: {"updated_at":1789000100.5}

data: {"v":{"response":{"message_id":4,"parent_id":3,"model":"","role":"ASSISTANT","thinking_enabled":true,"ban_edit":false,"ban_regenerate":false,"status":"WIP","incomplete_message":null,"accumulated_token_usage":0,"feedback":null,"inserted_at":1789000100.49,"search_enabled":false,"fragments":[{"id":2,"type":"THINK","content":"The","elapsed_secs":null,"references":[],"stage_id":1}],"conversation_mode":"DEFAULT","has_pending_fragment":false,"auto_continue":false}}}

data: {"p":"response/fragments/-1/content","o":"APPEND","v":" user wants"}

data: {"v":" a short answer."}

data: {"p":"response/fragments/-1/elapsed_secs","o":"SET","v":1.84}

data: {"p":"response/fragments","o":"APPEND","v":[{"id":3,"type":"RESPONSE","content":"It","references":[],"stage_id":1}]}

data: {"p":"response/fragments/-1/content","v":" is 42."}

data: {"p":"response","o":"BATCH","v":[{"p":"accumulated_token_usage","v":38},{"p":"quasi_status","v":"FINISHED"}]}

data: {"p":"response/status","o":"SET","v":"FINISHED"}

event: update_session
data: {"updated_at":1789000102.1}

event: close
data: {"click_behavior":"none","auto_resume":false}
"""

EXAMPLE_C = """event: ready
data: {"request_message_id":1,"response_message_id":2,"model_type":"default"}

data: {"v":{"response":{"message_id":2,"parent_id":1,"model":"","role":"ASSISTANT","thinking_enabled":false,"status":"WIP","accumulated_token_usage":0,"search_enabled":true,"fragments":[{"id":1,"type":"SEARCH","status":"WIP","content":null,"queries":[{"query":"latest stable Python release"}],"results":[]}],"conversation_mode":"SEARCH","has_pending_fragment":false,"auto_continue":false}}}

data: {"p":"response/fragments/-1/results","v":[{"url":"https://example.org/a","title":"Release notes A","snippet":"…","cite_index":1,"site_name":"example.org","published_at":1788000000.0,"site_icon":null,"query_indexes":[0]}]}

data: {"v":[{"url":"https://example.org/a","title":"Release notes A","snippet":"…","cite_index":1,"site_name":"example.org","query_indexes":[0]},{"url":"https://example.net/b","title":"Changelog B","snippet":"…","cite_index":2,"site_name":"example.net","query_indexes":[0]}]}

data: {"p":"response/fragments/-1/status","o":"SET","v":"FINISHED"}

data: {"p":"response","o":"BATCH","v":[{"p":"fragments","o":"APPEND","v":[{"id":2,"type":"RESPONSE","content":"","references":[],"stage_id":1}]},{"p":"has_pending_fragment","o":"SET","v":false}]}

data: {"p":"response/fragments/-1/content","o":"APPEND","v":"The newest release is 3.99"}

data: {"v":"[c"}

data: {"v":"itation"}

data: {"v":":1]."}

data: {"p":"response","o":"BATCH","v":[{"p":"accumulated_token_usage","v":512},{"p":"quasi_status","v":"FINISHED"}]}

data: {"p":"response/status","o":"SET","v":"FINISHED"}

event: close
data: {"click_behavior":"none","auto_resume":false}
""".encode()

EXAMPLE_D = b"""data: {"v":{"response":{"message_id":2,"parent_id":1,"model":"","role":"ASSISTANT","content":"","thinking_enabled":true,"thinking_content":null,"thinking_elapsed_secs":null,"status":"WIP","accumulated_token_usage":0,"files":[],"tips":[],"search_enabled":false,"search_status":null,"search_results":null}}}

data: {"p":"response/thinking_content","o":"APPEND","v":"Check the units"}

data: {"v":" first."}

data: {"p":"response/thinking_elapsed_secs","o":"SET","v":0.9}

data: {"p":"response/content","o":"APPEND","v":"Use meters."}

data: {"p":"response","o":"BATCH","v":[{"p":"accumulated_token_usage","v":12},{"p":"status","v":"FINISHED"}]}
"""

EXAMPLE_E = b"""data: {"choices":[{"index":0,"delta":{"content":"Let me","type":"thinking"}}],"model":"","chunk_token_usage":2,"created":1741000000,"message_id":2,"parent_id":1}

data: {"choices":[{"index":0,"delta":{"content":"Hello!","type":"text"}}],"model":"","chunk_token_usage":2,"created":1741000001,"message_id":2,"parent_id":1}

data: {"choices":[{"index":0,"delta":{"content":"","type":"text","role":"assistant"},"finish_reason":"stop"}],"model":"","chunk_token_usage":0,"created":1741000001,"message_id":2,"parent_id":1}

data: [DONE]
"""

RESULT_A = SearchResult(1, "https://example.org/a", "Release notes A", "…", "example.org")
RESULT_A_DATED = SearchResult(1, "https://example.org/a", "Release notes A", "…", "example.org", published_at=1788000000.0)
RESULT_B = SearchResult(2, "https://example.net/b", "Changelog B", "…", "example.net")

CASES = {
    "a": (EXAMPLE_A, "", "Slow start doubles the congestion window each round trip.", 21),
    "b": (EXAMPLE_B, "The user wants a short answer.", "It is 42.", 38),
    "c": (EXAMPLE_C, "", "The newest release is 3.99[citation:1].", 512),
    "d": (EXAMPLE_D, "Check the units first.", "Use meters.", 12),
    "e": (EXAMPLE_E, "Let me", "Hello!", 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_protocol_examples(case):
    body, reasoning, content, usage = CASES[case]
    events = decode_body(body)
    assert_well_formed(events)
    got_reasoning, got_content, others = summarize(events)
    assert got_reasoning == reasoning
    assert got_content == content
    assert [e for e in others if isinstance(e, Finished)] == [Finished("FINISHED")]
    assert [e for e in others if isinstance(e, Usage)] == [Usage(usage)]
    # Splitting never changes the outcome.
    rng = random.Random(case)
    for _ in range(20):
        assert summarize(feed_chunks(random_chunks(body, rng, 9))) == (got_reasoning, got_content, others)
    assert summarize(feed_chunks(byte_chunks(body))) == (got_reasoning, got_content, others)


def test_example_a_event_order():
    events = decode_body(EXAMPLE_A)
    assert events[0] == Ready(1, 2, "default")
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Ready", "ContentDelta", "Usage", "Finished", "Title"]
    assert events[-1] == Title("TCP slow start")


def test_example_b_reasoning_precedes_content():
    events = decode_body(EXAMPLE_B)
    texts = [type(e) for e in events if isinstance(e, (ReasoningDelta, ContentDelta))]
    assert texts == [ReasoningDelta, ContentDelta]


def test_example_c_search_results_and_split_citation_markers():
    events = decode_body(EXAMPLE_C)
    results = [e for e in events if isinstance(e, SearchResults)]
    # the first list carries a publication date, the cumulative second one does not
    assert results == [SearchResults((RESULT_A_DATED,)), SearchResults((RESULT_A, RESULT_B))]
    # The marker arrives in three pieces; the decoder keeps it verbatim (rendering is the assembler's job).
    assert summarize(events)[1].endswith("3.99[citation:1].")
    # Results come before the answer text that cites them.
    first_content = next(i for i, e in enumerate(events) if isinstance(e, ContentDelta))
    last_results = max(i for i, e in enumerate(events) if isinstance(e, SearchResults))
    assert last_results < first_content


def test_gen_a_search_results_and_indexes():
    body = sse(
        {"choices": [{"index": 0, "delta": {"type": "search_result", "search_results": [
            {"url": "https://x.example/1", "title": "One", "snippet": "s1", "site_name": "x"},
            {"url": "https://y.example/2", "title": "Two", "snippet": "s2", "site_name": "y"},
        ]}}]},
        {"choices": [{"index": 0, "delta": {"type": "search_index", "search_indexes": [
            {"cite_index": 2, "url": "https://x.example/1"}, {"cite_index": 1, "url": "https://y.example/2"},
        ]}}]},
        {"choices": [{"index": 0, "delta": {"type": "text", "content": "See [citation:1]."}}]},
        {"choices": [{"index": 0, "delta": {"type": "text", "content": ""}, "finish_reason": "stop"}]},
        "[DONE]",
    )
    events = decode_body(body)
    assert_well_formed(events)
    results = [e for e in events if isinstance(e, SearchResults)]
    assert results[-1].results == (
        SearchResult(1, "https://y.example/2", "Two", "s2", "y"),
        SearchResult(2, "https://x.example/1", "One", "s1", "x"),
    )
    assert summarize(events)[1] == "See [citation:1]."
    assert events[-1] == Finished("FINISHED")


def test_gen_b_search_results():
    body = sse(
        {"v": {"response": {"content": "", "status": "WIP", "search_results": None}}},
        {"p": "response/search_status", "v": "SEARCHING"},
        {"p": "response/search_results", "v": [{"cite_index": 2, "url": "u2", "title": "T2"},
                                                {"cite_index": 1, "url": "u1", "title": "T1"}]},
        {"p": "response/content", "o": "APPEND", "v": "A[citation:2]"},
        {"p": "response/status", "v": "FINISHED"},
    )
    events = decode_body(body)
    assert_well_formed(events)
    results = [e for e in events if isinstance(e, SearchResults)]
    assert [r.cite_index for r in results[-1].results] == [1, 2]
    assert summarize(events)[1] == "A[citation:2]"
    assert events[-1] == Finished("FINISHED")


def test_gen_b_status_after_text_append_is_not_appended():
    """`{"p":"response/status","v":"FINISHED"}` after APPENDs must not become "WIPFINISHED"."""
    body = sse(
        {"v": {"response": {"content": "", "status": "WIP"}}},
        {"p": "response/content", "o": "APPEND", "v": "Hi"},
        {"p": "response/status", "v": "FINISHED"},
    )
    assert decode_body(body)[-1] == Finished("FINISHED")


def test_gen_c_prime_blocks_single_object_append():
    body = sse(
        ("ready", {"response_message_id": 2}),
        {"v": {"response": {"status": "WIP", "blocks": [
            {"id": 1, "type": "search", "status": "WIP", "results": []}], "has_pending_block": True}}},
        {"p": "response/blocks/-1/results", "v": [{"url": "https://a", "title": "A", "cite_index": 1}]},
        {"v": [{"url": "https://a", "title": "A", "cite_index": 1}, {"url": "https://b", "title": "B", "cite_index": 2}]},
        {"p": "response/blocks", "o": "append", "v": {"id": 2, "type": "response", "content": "Py"}},
        {"p": "response/blocks/-1/content", "o": "append", "v": "thon"},
        {"v": " 3[citation:2]"},
        {"p": "response", "o": "batch", "v": [{"p": "accumulated_token_usage", "v": 9}, {"p": "status", "v": "FINISHED"}]},
        ("close", {"click_behavior": "none"}),
    )
    events = decode_body(body)
    assert_well_formed(events)
    assert events[0] == Ready(None, 2, None)
    assert summarize(events)[1] == "Python 3[citation:2]"
    results = [e for e in events if isinstance(e, SearchResults)]
    assert [len(r.results) for r in results] == [1, 2]
    assert [e for e in events if isinstance(e, Finished)] == [Finished("FINISHED")]


def test_batch_paths_are_relative_and_can_append_text():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": []}}},
        {"p": "response", "o": "BATCH", "v": [
            {"p": "fragments", "o": "APPEND", "v": [{"id": 7, "type": "THINK", "content": "a"}]},
            {"p": "fragments/-1/content", "o": "APPEND", "v": "b"},
            {"p": "fragments", "o": "APPEND", "v": [{"id": 8, "type": "RESPONSE", "content": "c"}]},
            {"p": "fragments/1/content", "v": "d"},
            {"p": "accumulated_token_usage", "v": 4},
        ]},
        {"p": "response/fragments/0/content", "o": "APPEND", "v": "e"},
        {"p": "response/status", "v": "FINISHED"},
    )
    events = decode_body(body)
    assert_well_formed(events)
    assert summarize(events)[:2] == ("abe", "cd")
    assert Usage(4) in events


def test_absolute_and_negative_indices():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [
            {"id": 1, "type": "THINK", "content": "t"},
            {"id": 2, "type": "RESPONSE", "content": "r"},
        ]}}},
        {"p": "response/fragments/0/content", "o": "APPEND", "v": "1"},
        {"v": "2"},
        {"p": "response/fragments/-2/content", "v": "3"},
        {"p": "response/fragments/1/content", "v": "x"},
        {"p": "response/fragments/-1/content", "v": "y"},
        {"p": "response/fragments/99999999999999999999/content", "v": "lost"},
        {"p": "response/fragments/-5/content", "v": "lost"},
        {"p": "response/status", "v": "FINISHED"},
    )
    events = decode_body(body)
    assert_well_formed(events)
    assert summarize(events)[:2] == ("t123", "rxy")


def test_tip_and_unknown_fragment_types_never_reach_text():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": "Answer"}]}}},
        {"p": "response/fragments", "o": "APPEND", "v": [{"id": 2, "type": "TOOL_SEARCH", "content": "query text"}]},
        {"p": "response/fragments/-1/content", "v": " more tool text"},
        {"p": "response/fragments", "v": [{"id": 3, "type": "TOOL_OPEN", "content": "opened"}]},
        {"p": "response/fragments", "v": [{"id": 4, "type": "SOMETHING_NEW", "content": "???"}]},
        {"p": "response/fragments", "v": [{"id": 5, "type": "RESPONSE", "content": " continues"}]},
        {"p": "response/fragments", "v": [{"id": 6, "type": "TIP", "content": "本回答由 AI 生成", "hide_on_wip": True}]},
        {"p": "response/fragments/-1/content", "v": " tip tail"},
        {"p": "response/status", "o": "SET", "v": "FINISHED"},
    )
    events = decode_body(body)
    assert_well_formed(events)
    assert summarize(events)[:2] == ("", "Answer continues")


def test_thinking_and_lowercase_types():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "thinking", "content": "hmm"}]}}},
        {"p": "response/fragments", "o": "APPEND", "v": [{"id": 2, "type": "response", "content": "ok"}]},
        {"p": "response/status", "v": "FINISHED"},
    )
    assert summarize(decode_body(body))[:2] == ("hmm", "ok")


def test_set_that_extends_a_fragment_emits_only_the_extension():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": "Hel"}]}}},
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": "lo"},
        {"p": "response/fragments/-1/content", "o": "SET", "v": "Hello world"},
        {"p": "response/fragments/-1/content", "o": "SET", "v": "Something else entirely"},
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": "!"},
        {"p": "response/status", "v": "FINISHED"},
    )
    assert summarize(decode_body(body))[:2] == ("", "Hello world!")


def test_snapshot_resent_mid_round_does_not_duplicate():
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": "ab"}]}}},
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": "c"},
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": "abcd"}]}}},
        {"p": "response/fragments/-1/content", "o": "APPEND", "v": "e"},
        {"p": "response/status", "v": "FINISHED"},
    )
    assert summarize(decode_body(body))[:2] == ("", "abcde")


def test_sse_comments_ids_and_field_without_space():
    body = (
        b": keep-alive\n\nid: 1\nretry: 1000\n"
        b'data:{"v":{"response":{"status":"WIP","fragments":[{"id":1,"type":"RESPONSE","content":"x"}]}}}\n\n'
        b": ping\n"
        b'data: {"p":"response/fragments/-1/content","o":"APPEND","v":"y"}\n\n'
        b'event:close\ndata:{}\n\n'
    )
    events = decode_body(body)
    # close without a status: the round is not finished.
    assert summarize(events)[1] == "xy"
    assert events[-1].kind.value == "stream_cut"


def test_deltas_within_one_feed_are_merged_per_kind():
    events = decode_body(EXAMPLE_A)
    assert [e for e in events if isinstance(e, ContentDelta)] == [
        ContentDelta("Slow start doubles the congestion window each round trip.")
    ]


def test_very_long_line_split_in_many_chunks():
    text = "长" * 400_000 + "end"
    body = sse(
        {"v": {"response": {"status": "WIP", "fragments": [{"id": 1, "type": "RESPONSE", "content": text}]}}},
        {"p": "response/status", "v": "FINISHED"},
    )
    chunks = [body[i : i + 8191] for i in range(0, len(body), 8191)]
    events = feed_chunks(chunks)
    assert summarize(events)[1] == text
    assert events[-1] == Finished("FINISHED")
