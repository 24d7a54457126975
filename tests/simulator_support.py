"""Helpers for the simulator tests: a tiny PoW brute-forcer, API shortcuts, and a minimal SSE reader
(independent of the gateway's decoder, so the simulator can be checked on its own)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from deepseek2api.deepseek.pow_reference import hash_hex
from deepseek2api.simulator import SimulatorConfig, SimUser, create_app

EMAIL, PASSWORD = "alice@example.org", "alice-pw"
MOBILE, MOBILE_PASSWORD = "13800000000", "mobile-pw"
COMPLETION = "/api/v0/chat/completion"
CONTINUE = "/api/v0/chat/continue"


def small_config(**overrides: Any) -> SimulatorConfig:
    """Two users, a tiny PoW difficulty (brute force in pure Python takes milliseconds)."""
    values: dict[str, Any] = {
        "users": [SimUser(email=EMAIL, password=PASSWORD), SimUser(mobile=MOBILE, password=MOBILE_PASSWORD),
                  SimUser(email="bob@example.org", password="bob-pw")],
        "difficulty": 64, "seed": 7,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def asgi_client(config: SimulatorConfig | None = None) -> httpx.AsyncClient:
    app = create_app(config or small_config())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


def state_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.sim  # type: ignore[attr-defined]


def solve(challenge: dict[str, Any]) -> int:
    prefix = f"{challenge['salt']}_{challenge['expire_at']}_"
    for answer in range(challenge["difficulty"]):
        if hash_hex(f"{prefix}{answer}".encode()) == challenge["challenge"]:
            return answer
    raise AssertionError("challenge not solvable")


def encode_answer(challenge: dict[str, Any], answer: Any, target_path: str | None = None) -> str:
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"], "salt": challenge["salt"],
               "answer": answer, "signature": challenge["signature"],
               "target_path": target_path or challenge["target_path"]}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def envelope_ok(body: dict[str, Any]) -> Any:
    assert body["code"] == 0, body
    assert body["data"]["biz_code"] == 0, body
    return body["data"]["biz_data"]


async def login(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    r = await client.post("/api/v0/users/login", json={"email": email, "password": password, "device_id": "t",
                                                         "os": "android"})
    return envelope_ok(r.json())["user"]["token"]


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def new_session(client: httpx.AsyncClient, token: str) -> str:
    r = await client.post("/api/v0/chat_session/create", json={}, headers=auth(token))
    return envelope_ok(r.json())["chat_session"]["id"]


async def challenge(client: httpx.AsyncClient, token: str, path: str = COMPLETION) -> dict[str, Any]:
    r = await client.post("/api/v0/chat/create_pow_challenge", json={"target_path": path}, headers=auth(token))
    return envelope_ok(r.json())["challenge"]


async def pow_header(client: httpx.AsyncClient, token: str, path: str = COMPLETION) -> str:
    ch = await challenge(client, token, path)
    return encode_answer(ch, solve(ch))


def completion_body(session_id: str, prompt: str, *, parent: int | None = None, thinking: bool = False,
                    search: bool = False) -> dict[str, Any]:
    return {"chat_session_id": session_id, "parent_message_id": parent, "model_type": "default", "prompt": prompt,
            "ref_file_ids": [], "thinking_enabled": thinking, "search_enabled": search, "preempt": False}


async def complete(client: httpx.AsyncClient, token: str, session_id: str, prompt: str, *,
                   parent: int | None = None, thinking: bool = False, search: bool = False,
                   headers: dict[str, str] | None = None) -> httpx.Response:
    h = auth(token) | {"x-ds-pow-response": await pow_header(client, token)} | (headers or {})
    return await client.post(COMPLETION, json=completion_body(session_id, prompt, parent=parent, thinking=thinking,
                                                              search=search), headers=h)


# --- a minimal SSE reader ---------------------------------------------------------------------------------

def sse_events(body: bytes) -> list[tuple[str, Any]]:
    """[(event name, parsed data)] — "message" for default events; `[DONE]` kept as the string."""
    events: list[tuple[str, Any]] = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                raw = line[5:].strip()
                data = raw if raw == "[DONE]" else json.loads(raw)
        events.append((name, data))
    return events


@dataclass
class Decoded:
    reasoning: str = ""
    content: str = ""
    status: str | None = None
    usage: int | None = None
    title: str | None = None
    ready: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    hint: dict[str, Any] | None = None
    done: bool = False
    root: dict[str, Any] = field(default_factory=dict)


def _walk(root: Any, parts: list[str]) -> Any:
    node = root
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _apply(root: dict[str, Any], path: str, op: str, value: Any) -> None:
    parts = path.split("/")
    parent = _walk(root, parts[:-1])
    last = parts[-1]
    key: Any = int(last) if isinstance(parent, list) else last
    if op == "SET":
        parent[key] = value
    elif op == "APPEND":
        current = parent[key]
        if isinstance(current, str) or current is None:
            parent[key] = (current or "") + value
        elif isinstance(value, list):
            current.extend(value)
        else:
            current.append(value)
    elif op == "BATCH":
        for item in value:
            _apply(root, f"{path}/{item['p']}", item.get("o", "SET"), item["v"])
    else:
        raise AssertionError(f"unknown op {op}")


def decode(body: bytes) -> Decoded:
    """Apply the patches of one or more concatenated rounds and read the final state (Gen A/B/C/C′)."""
    out = Decoded()
    last_p: str | None = None
    last_o: str | None = None
    for name, data in sse_events(body):
        out.names.append(name)
        if name == "ready":
            out.ready = data
        elif name == "title":
            out.title = data["content"]
        elif name == "hint":
            out.hint = data
        elif name != "message":
            continue
        elif data == "[DONE]":
            out.done = True
        elif "choices" in data:
            choice = data["choices"][0]
            delta = choice["delta"]
            if delta.get("type") == "thinking":
                out.reasoning += delta.get("content", "")
            elif delta.get("type") == "text":
                out.content += delta.get("content", "")
            elif delta.get("type") == "search_result":
                out.results = delta["search_results"]
            if choice.get("finish_reason"):
                out.status = choice["finish_reason"]
        elif "p" not in data and "o" not in data and isinstance(data.get("v"), dict) and "response" in data["v"]:
            out.root = json.loads(json.dumps(data["v"]))
            last_p = last_o = None
        else:
            last_p = data.get("p", last_p)
            last_o = data.get("o", last_o)
            assert last_p is not None and last_o is not None, data
            _apply(out.root, last_p, last_o, data["v"])
    response = out.root.get("response")
    if response is not None:
        out.status = response.get("status")
        out.usage = response.get("accumulated_token_usage")
        items = response.get("fragments", response.get("blocks"))
        if items is None:  # Gen B
            out.reasoning = response.get("thinking_content") or ""
            out.content = response.get("content") or ""
            out.results = response.get("search_results") or []
        else:
            for item in items:
                kind = item["type"].upper()
                if kind == "THINK":
                    out.reasoning += item["content"]
                elif kind == "RESPONSE":
                    out.content += item["content"]
                elif kind == "SEARCH":
                    out.results = item["results"]
    return out
