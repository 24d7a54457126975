"""Checks for the Responses surface: OpenAI's own schemas for Response objects and stream events, and
the event-order rules of docs/tools.md, applied to the raw bytes a client received.

The schemas come from the same `openapi.yaml` as the chat checks (conformance_support.py), extracted
from other roots and cached under their own key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance_support import OpenAISchemas, extract_schemas

ROOTS = ("Response", "ResponseStreamEvent", "ResponseItemList", "ErrorResponse")
_CACHE_KEY = "deepseek2api/openai-responses-schemas"
_loaded: dict[str, OpenAISchemas] = {}
EVENT_SCHEMAS: dict[str, str] = {}  # event type → its component schema (for readable failures)
_lock = threading.Lock()


def load_response_schemas(path: Path, cache: Any = None) -> OpenAISchemas:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw + Path(__file__).read_bytes()).hexdigest()
    with _lock:
        if digest not in _loaded:
            cached = cache.get(_CACHE_KEY, None) if cache is not None else None
            if isinstance(cached, dict) and cached.get("digest") == digest:
                schemas = cached["schemas"]
            else:
                import yaml

                loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                schemas = extract_schemas(yaml.load(raw, Loader=loader), ROOTS)
                if cache is not None:
                    cache.set(_CACHE_KEY, {"digest": digest, "schemas": schemas})
            _loaded[digest] = OpenAISchemas(schemas)
            for name, schema in schemas.items():
                enum = schema.get("properties", {}).get("type", {}).get("enum") if isinstance(schema, dict) else None
                if name.endswith("Event") and isinstance(enum, list) and len(enum) == 1:
                    EVENT_SCHEMAS[enum[0]] = name
        return _loaded[digest]


@pytest.fixture(scope="session")
def response_schemas(request: pytest.FixtureRequest, data_dir: Path) -> OpenAISchemas:
    return load_response_schemas(data_dir / "openai-openapi" / "openapi.yaml", getattr(request.config, "cache", None))


@dataclass(frozen=True)
class Stream:
    events: list[dict[str, Any]]
    keepalives: int


def parse_stream(body: bytes) -> Stream:
    """Split a Responses event stream: `event:` + `data:` pairs (the names must agree) and `:` comments."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), f"stream does not end with a blank line: {text[-200:]!r}"
    events: list[dict[str, Any]] = []
    keepalives = 0
    for block in text[:-2].split("\n\n"):
        if block.startswith(":"):
            keepalives += 1
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block[:300]
        payload = json.loads(lines[1][6:])
        assert payload["type"] == lines[0][7:], f"event name {lines[0]!r} != type {payload['type']!r}"
        events.append(payload)
    return Stream(events, keepalives)


def check_events(events: list[dict[str, Any]], schemas: OpenAISchemas) -> dict[str, Any]:
    """Schema and order rules of one complete stream; returns the final Response."""
    assert events, "no events"
    assert events[0]["type"] == "response.created", events[0]["type"]
    assert events[1]["type"] == "response.in_progress", events[1]["type"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed"), events[-1]["type"]
    terminal = [e for e in events if e["type"] in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1, "more than one terminal event"
    sequence = [e["sequence_number"] for e in events]
    assert sequence == list(range(len(events))), f"sequence numbers not rising by one: {sequence[:20]}"
    response_id = events[0]["response"]["id"]
    added: dict[int, str] = {}
    done: set[int] = set()
    for event in events:
        kind = event["type"]
        schemas.validate(EVENT_SCHEMAS.get(kind, "ResponseStreamEvent"), event)
        if "response" in event:
            assert event["response"]["id"] == response_id, "response id changed"
            schemas.validate("Response", event["response"])
        if kind == "response.output_item.added":
            index = event["output_index"]
            assert index not in added, f"output index {index} added twice"
            assert index == len(added), f"output index {index} out of order"
            added[index] = event["item"]["id"]
        elif kind == "response.output_item.done":
            index = event["output_index"]
            assert added.get(index) == event["item"]["id"], "item id differs between added and done"
            done.add(index)
        elif "item_id" in event:
            index = event["output_index"]
            assert added.get(index) == event["item_id"], f"{kind} before its output_item.added (or wrong id)"
            assert index not in done, f"{kind} after its output_item.done"
    final = events[-1]["response"]
    if final["status"] != "failed":
        assert set(added) == done, "items left open"
        assert [item["id"] for item in final["output"]] == [added[i] for i in sorted(added)]
    return final  # type: ignore[no-any-return]
