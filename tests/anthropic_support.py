"""Anthropic-surface test helpers: a strict reader of Messages streams, checked against the SDK's types.

`read_stream(raw)` fails on anything a real client would trip over: an event without an `event:` line
or whose line disagrees with its `type`, events out of docs/tools.md's order, non-contiguous block
indices, deltas for a block that is not open, `partial_json` that does not join to a JSON object, an
`error` event that is not the last one. Every event is validated with the SDK's own pydantic models.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from gateway_support import API_KEY, Stack

EVENT = TypeAdapter(RawMessageStreamEvent)


def client(stack: Stack, **options: Any) -> anthropic.Anthropic:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 60)
    return anthropic.Anthropic(base_url=stack.base_url, api_key=options.pop("api_key", API_KEY), **options)


def read_stream(raw: str) -> list[dict[str, Any]]:
    """The stream's events (pings dropped) after every check above."""
    frames = [f for f in raw.replace("\r\n", "\n").split("\n\n") if f.strip()]
    events: list[dict[str, Any]] = []
    for position, frame in enumerate(frames):
        lines = frame.split("\n")
        assert lines[0].startswith("event: "), f"an event without an `event:` line: {frame!r}"
        assert len(lines) == 2 and lines[1].startswith("data: "), frame
        kind = lines[0][len("event: "):]
        data = json.loads(lines[1][len("data: "):])
        assert data["type"] == kind, frame
        if kind == "ping":
            continue
        if kind == "error":
            assert position == len(frames) - 1, "an error event must end the stream"
            assert set(data["error"]) >= {"type", "message"}
            events.append(data)
            continue
        EVENT.validate_python(data)
        events.append(data)
    _check_order(events)
    return events


def _check_order(events: list[dict[str, Any]]) -> None:
    assert events and events[0]["type"] == "message_start", events[:1]
    assert events[0]["message"]["content"] == [] and "usage" in events[0]["message"]
    open_index: int | None = None
    next_index = 0
    partial: dict[int, list[str]] = {}
    ended = events[-1]["type"] == "error"
    body = events[1:-1] if ended else events[1:]
    if not ended:
        assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"], [e["type"] for e in events]
        body = events[1:-2]
    for event in body:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            assert event["index"] == next_index, "block indices must be contiguous from 0"
            open_index = next_index
            next_index += 1
            if event["content_block"]["type"] == "tool_use":
                assert event["content_block"]["id"].startswith("toolu_")
                partial[open_index] = []
            elif event["content_block"]["type"] == "server_tool_use":
                assert event["content_block"]["id"].startswith("srvtoolu_")
                partial[open_index] = []
        elif kind == "content_block_delta":
            assert event["index"] == open_index, "a delta for a block that is not open"
            if event["delta"]["type"] == "input_json_delta":
                partial[event["index"]].append(event["delta"]["partial_json"])
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            raise AssertionError(f"unexpected {kind} inside the message")
    if not ended:
        assert open_index is None
    for pieces in partial.values():
        assert isinstance(json.loads("".join(pieces)), dict), "partial_json must join to a JSON object"


def blocks_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The content blocks a stream built (what an accumulator would have)."""
    blocks: list[dict[str, Any]] = []
    for event in events:
        if event["type"] == "content_block_start":
            blocks.append(dict(event["content_block"]))
            if blocks[-1]["type"] in ("tool_use", "server_tool_use"):
                blocks[-1]["_json"] = ""
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
            elif delta["type"] == "citations_delta":
                block.setdefault("citations", []).append(delta["citation"])
    for block in blocks:
        if block["type"] in ("tool_use", "server_tool_use"):
            block["input"] = json.loads(block.pop("_json"))
    return blocks


def comparable(message: Message) -> dict[str, Any]:
    """A message without its id and the stream helper's parse-only fields."""
    dumped = message.model_dump(exclude_none=True)
    dumped.pop("id")
    for block in dumped["content"]:
        block.pop("parsed_output", None)
        if block.get("type") == "tool_use":
            block.pop("id")  # fresh per answer
    return dumped
