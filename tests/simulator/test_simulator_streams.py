"""Completion streams in every format decode to `reply_for()`, and Gen C looks like the real captures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deepseek2api.simulator import reply_for
from deepseek2api.simulator.streams import TIP_TEXT
from simulator_support import asgi_client, complete, decode, login, new_session, small_config, sse_events, state_of

FLAGS = [(False, False), (True, False), (False, True), (True, True)]
FORMATS = ["C", "C'", "B", "A"]
PROMPT = "Explain TCP slow start in two sentences."


def _usage(reply) -> int:
    return (len(reply.reasoning) + len(reply.content) + 1) // 2


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("thinking,search", FLAGS)
async def test_each_format_decodes_to_reply_for(fmt: str, thinking: bool, search: bool) -> None:
    async with asgi_client(small_config(stream_format=fmt)) as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), PROMPT, thinking=thinking, search=search)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        expected = reply_for(PROMPT, thinking=thinking, search=search)
        got = decode(r.content)
        assert got.content == expected.content
        assert got.reasoning == (expected.reasoning if thinking else "")
        assert [x["url"] for x in got.results] == [x["url"] for x in expected.results]
        if fmt == "A":
            assert got.status == "stop" and got.done
        else:
            assert got.status == "FINISHED" and got.usage == _usage(expected)
        if fmt in ("C", "C'"):
            assert got.names[0] == "ready" and got.names[-1] == "close" and not got.done
            assert got.title == expected.title
        if fmt == "C":
            assert got.ready == {"request_message_id": 1, "response_message_id": 2, "model_type": "default"}


async def test_per_request_format_header_and_directive() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "x", headers={"x-sim-format": "A"})
        assert r.text.endswith("data: [DONE]\n\n")
        r = await complete(client, token, await new_session(client, token), "x [sim:format=B]")
        assert '"thinking_content"' in r.text and "event:" not in r.text
        r = await complete(client, token, await new_session(client, token), "x [sim:format=blocks]")
        assert '"blocks":[' in r.text and '"fragments"' not in r.text
        assert decode(r.content).content == reply_for("x [sim:format=blocks]", thinking=False, search=False).content


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("thinking,search", FLAGS)
async def test_gateway_decoder_reads_every_format(fmt: str, thinking: bool, search: bool) -> None:
    decode_module = pytest.importorskip("deepseek2api.deepseek.decode")
    events_module = pytest.importorskip("deepseek2api.deepseek.events")
    async with asgi_client(small_config(stream_format=fmt)) as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), PROMPT, thinking=thinking, search=search)
    decoder = decode_module.StreamDecoder()
    events = []
    for i in range(0, len(r.content), 7):  # arbitrary splits, inside UTF-8 characters too
        events += decoder.feed(r.content[i:i + 7])
    events += decoder.close()
    expected = reply_for(PROMPT, thinking=thinking, search=search)
    text = "".join(e.text for e in events if isinstance(e, events_module.ContentDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, events_module.ReasoningDelta))
    assert text == expected.content
    assert reasoning == (expected.reasoning if thinking else "")
    assert not [e for e in events if isinstance(e, events_module.UpstreamError)]
    finished = [e.status for e in events if isinstance(e, events_module.Finished)]
    assert finished and finished[-1] == "FINISHED"
    if search:
        lists = [e for e in events if isinstance(e, events_module.SearchResults)]
        assert [x.url for x in lists[-1].results] == [x["url"] for x in expected.results]


async def test_citation_markers_are_split_across_events() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "cite", search=True)
    assert "[citation:1]" in decode(r.content).content
    assert "[citation:" not in r.text and "citation:1]" not in r.text


async def test_tip_fragment_is_appended_and_never_content() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "tip")
    got = decode(r.content)
    tips = [f for f in got.root["response"]["fragments"] if f["type"] == "TIP"]
    assert tips == [{"id": 3, "type": "TIP", "content": TIP_TEXT, "style": "WARNING", "hide_on_wip": True}]
    assert TIP_TEXT not in got.content


@pytest.mark.parametrize("chunk", [(1, 1), (2, 3), (5, 9)])
async def test_chunk_sizes_and_first_chars_in_snapshot(chunk: tuple[int, int]) -> None:
    async with asgi_client(small_config(chunk_chars=chunk)) as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "chunky")
    events = sse_events(r.content)
    snapshot = next(d for n, d in events if n == "message" and "response" in d.get("v", {}))
    first = snapshot["v"]["response"]["fragments"][0]["content"]
    assert first and reply_for("chunky", thinking=False, search=False).content.startswith(first)
    pieces = [d["v"] for n, d in events if n == "message" and isinstance(d.get("v"), str)
              and d.get("p", "response/fragments/-1/content").endswith("content")]
    assert pieces and all(chunk[0] <= len(p) <= chunk[1] for p in pieces[:-1])


async def test_events_per_write_changes_nothing_but_the_writes() -> None:
    async with asgi_client(small_config(events_per_write=5)) as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "batched", thinking=True)
    assert decode(r.content).content == reply_for("batched", thinking=True, search=False).content


async def test_history_shows_the_streamed_turns() -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        await complete(client, token, session_id, "first", thinking=True)
        r = await client.get("/api/v0/chat/history_messages", params={"chat_session_id": session_id},
                             headers={"authorization": f"Bearer {token}"})
        data = r.json()["data"]["biz_data"]
        assert data["chat_session"]["current_message_id"] == 2
        user, assistant = data["chat_messages"]
        assert (user["role"], user["message_id"], user["fragments"][0]["content"]) == ("USER", 1, "first")
        assert (assistant["role"], assistant["message_id"], assistant["parent_id"]) == ("ASSISTANT", 2, 1)
        assert assistant["status"] == "FINISHED"
        expected = reply_for("first", thinking=True, search=False)
        assert [f["content"] for f in assistant["fragments"]] == [expected.reasoning, expected.content]
        assert state_of(client).stats()["streams_finished"] == 1


# --- byte layout against the real captures ------------------------------------------------------------------

def _shape(body: bytes) -> list[str]:
    """Event names and patch shapes; runs of bare `{"v":…}` collapse to one `…`."""
    shape: list[str] = []
    for name, data in sse_events(body):
        if name != "message":
            item = name
        elif "p" not in data and "o" not in data and isinstance(data["v"], dict):
            item = "snapshot"
        elif set(data) == {"v"}:
            item = "…"
        else:
            path = re.sub(r"/-?\d+", "/N", data.get("p", "~"))
            item = f"{path} {data.get('o', '~')}"
        if not (item == "…" and shape and shape[-1] == "…"):
            shape.append(item)
    return shape


def _capture_stream(data_dir: Path, sample: str) -> bytes:
    raw = (data_dir / "upstream-samples" / sample / "upstream.stream.sse").read_bytes()
    return raw[raw.index(b"event: ready"):]  # drop the upload round of the long sample


def _blocks(body: bytes) -> list[str]:
    return [b for b in body.decode("utf-8").split("\n\n") if b]


async def test_gen_c_layout_matches_the_real_thinking_capture(data_dir: Path) -> None:
    capture = _capture_stream(data_dir, "longtext-deepseek-v4-flash-20260429")
    async with asgi_client() as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "layout", thinking=True)
    assert _shape(r.content) == _shape(capture) == [
        "ready", "update_session", "snapshot",
        "response/fragments/N/content APPEND", "…",
        "response/fragments/N/elapsed_secs SET",
        "response/fragments APPEND",
        "response/fragments/N/content ~", "…",
        "response/fragments ~",
        "response BATCH", "response/status SET",
        "update_session", "title", "close",
    ]
    ours, theirs = sse_events(r.content), sse_events(capture)
    snap_ours = next(d for n, d in ours if n == "message")["v"]["response"]
    snap_theirs = next(d for n, d in theirs if n == "message")["v"]["response"]
    assert set(snap_theirs) <= set(snap_ours)
    assert list(snap_ours["fragments"][0]) == list(snap_theirs["fragments"][0])  # id, type, content, …
    assert snap_ours["fragments"][0]["content"] and snap_theirs["fragments"][0]["content"]
    response_ours = next(d["v"][0] for n, d in ours if n == "message" and d.get("p") == "response/fragments"
                         and d.get("o") == "APPEND")
    response_theirs = next(d["v"][0] for n, d in theirs if n == "message" and d.get("p") == "response/fragments"
                           and d.get("o") == "APPEND")
    assert list(response_ours) == list(response_theirs) and response_ours["content"]
    batch = [d for n, d in ours if n == "message" and d.get("o") == "BATCH"][-1]
    assert [item["p"] for item in batch["v"]] == ["accumulated_token_usage", "quasi_status"]
    assert [n for n, _ in ours if n != "message"] == [n for n, _ in theirs if n != "message"]
    # same framing: `data: <compact JSON>` blocks, optionally preceded by one `event:` line
    for body in (r.content, capture):
        for block in _blocks(body):
            lines = block.split("\n")
            assert len(lines) in (1, 2) and lines[-1].startswith("data: ")
            assert len(lines) == 1 or re.fullmatch(r"event: [a-z_]+", lines[0])
            payload = lines[-1][len("data: "):]
            assert json.dumps(json.loads(payload), ensure_ascii=False, separators=(",", ":")) == payload
    assert r.content.endswith(b"\n\n") and b"[DONE]" not in r.content


async def test_gen_c_layout_matches_the_markdown_capture_snapshot_fields(data_dir: Path) -> None:
    capture = _capture_stream(data_dir, "markdown-format-example-20260405")
    async with asgi_client(small_config(finish_event=True)) as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "markdown", thinking=True)
    ours, theirs = sse_events(r.content), sse_events(capture)
    snap_ours = next(d for n, d in ours if n == "message")["v"]["response"]
    snap_theirs = next(d for n, d in theirs if n == "message")["v"]["response"]
    assert set(snap_theirs) <= set(snap_ours)
    names = [n for n, _ in ours if n != "message"]
    assert names == [n for n, _ in theirs if n != "message"] == [
        "ready", "update_session", "finish", "update_session", "title", "close"]
