"""Real-client conformance harness (docs/clients.md): OpenAI's own schemas, a wire recorder, a stack.

Why the recorder sits on the *server* side: every client the suite drives (openai-py sync and async,
LangChain, LiteLLM, the openai npm SDK, raw httpx) goes through the same gateway, so wrapping the
gateway's ASGI app captures every byte each of them received, whatever HTTP library it uses. When a
test ends, each captured exchange is checked independently of any SDK:
- framing: `text/event-stream` for every `stream: true` request answered 200, one-line `data:` events
  separated by blank lines, `:` comments only as keep-alives, `[DONE]` last (or an error event last);
- JSON Schema: every body, chunk, model list and error against OpenAI's published `openapi.yaml`
  (`CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse`, `ListModelsResponse`, `Model`,
  `ErrorResponse`), with the file's `nullable: true` rewritten to `anyOf [..., null]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from deepseek2api.background import BackgroundServer
from deepseek2api.server import create_app
from deepseek2api.simulator import SimulatorConfig
from deepseek2api.simulator import create_app as create_simulator
from gateway_support import TEST_DIFFICULTY, Stack, gateway_settings, sim_users

SCHEMA_ROOTS = ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ListModelsResponse",
                "Model", "ErrorResponse")
_SCHEMA_URI = "urn:openai-openapi"
_CACHE_KEY = "deepseek2api/openai-schemas"
_REF_PREFIX = "#/components/schemas/"
HEALTH_ROUTES = ("/health", "/healthz", "/ready")
REQUEST_BODY_CAP = 256 * 1024  # enough to read `stream` from any request the suite sends


# --------------------------------------------------------------------------------------------
# OpenAI's schemas
# --------------------------------------------------------------------------------------------


def normalise_nullable(node: Any) -> Any:
    """OAS 3.0 `nullable: true` → `anyOf: [node, {type: null}]` (JSON Schema 2020-12 ignores `nullable`)."""
    if isinstance(node, list):
        return [normalise_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    # Only the boolean keyword goes; a property *named* "nullable" (a schema) stays.
    out = {key: normalise_nullable(value) for key, value in node.items()
           if not (key == "nullable" and isinstance(value, bool))}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            yield ref[len(_REF_PREFIX):]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def extract_schemas(spec: dict[str, Any], roots: tuple[str, ...] = SCHEMA_ROOTS) -> dict[str, Any]:
    """The roots and every component schema they reference, normalised (small enough to cache as JSON)."""
    components = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = normalise_nullable(components[name])
        todo.extend(_refs(wanted[name]))
    return wanted


class OpenAISchemas:
    """Validators for OpenAI's response schemas; `validate(name, payload)` raises a readable AssertionError."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        document = {"components": {"schemas": schemas}}
        registry: Registry = Registry().with_resource(_SCHEMA_URI, Resource(document, DRAFT202012))
        self._validators = {
            name: Draft202012Validator({"$ref": f"{_SCHEMA_URI}{_REF_PREFIX}{name}"}, registry=registry)
            for name in schemas
        }
        self.validated = 0

    def errors(self, name: str, payload: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
                for e in self._validators[name].iter_errors(payload)]

    def validate(self, name: str, payload: Any) -> None:
        problems = self.errors(name, payload)
        assert not problems, f"not a valid {name}: {problems[:5]}\npayload: {json.dumps(payload)[:2000]}"
        self.validated += 1


_loaded: dict[str, OpenAISchemas] = {}
_load_lock = threading.Lock()


def load_openai_schemas(path: Path, cache: Any = None) -> OpenAISchemas:
    """Load `openapi.yaml` once per process; the extracted schemas are cached in pytest's cache by digest.

    Parsing the 3 MB YAML takes about a second with libyaml; reading the cached extract takes milliseconds.
    """
    raw = path.read_bytes()
    # The digest covers this module too, so a change to the extraction or normalisation invalidates the cache.
    digest = hashlib.sha256(raw + Path(__file__).read_bytes()).hexdigest()
    with _load_lock:
        if digest in _loaded:
            return _loaded[digest]
        cached = cache.get(_CACHE_KEY, None) if cache is not None else None
        if isinstance(cached, dict) and cached.get("digest") == digest and set(SCHEMA_ROOTS) <= set(cached["schemas"]):
            schemas = cached["schemas"]
        else:
            import yaml

            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            schemas = extract_schemas(yaml.load(raw, Loader=loader))
            if cache is not None:
                cache.set(_CACHE_KEY, {"digest": digest, "schemas": schemas})
        _loaded[digest] = OpenAISchemas(schemas)
        return _loaded[digest]


@pytest.fixture(scope="session")
def openai_schemas(request: pytest.FixtureRequest, data_dir: Path) -> OpenAISchemas:
    """Import this fixture into a test module to use it (tests/conftest.py is not ours to extend)."""
    return load_openai_schemas(data_dir / "openai-openapi" / "openapi.yaml", getattr(request.config, "cache", None))


# --------------------------------------------------------------------------------------------
# SSE framing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    kind: str  # "data" | "comment"
    text: str  # the data payload (after "data:" and one optional space) or the comment text


def parse_sse(body: bytes) -> list[SseEvent]:
    """Split an OpenAI-style event stream, asserting the framing rules of docs/clients.md/§4.3.

    Every event is ONE line (`data: <json>` or a `:` comment) followed by a blank line; no CR, no
    `event:` lines, nothing after the last blank line.
    """
    text = body.decode("utf-8")
    assert "\r" not in text, "CR in an event stream (events must be separated by \\n\\n)"
    if not text:
        return []
    assert text.endswith("\n\n"), f"event stream does not end with a blank line: {text[-200:]!r}"
    events = []
    for block in text[:-2].split("\n\n"):
        assert block and "\n" not in block, f"an event must be exactly one line: {block[:300]!r}"
        if block.startswith(":"):
            events.append(SseEvent("comment", block[1:].strip()))
        else:
            assert block.startswith("data:"), f"unexpected SSE line (only data: and comments): {block[:300]!r}"
            payload = block[5:]
            events.append(SseEvent("data", payload[1:] if payload.startswith(" ") else payload))
    return events


def data_events(body: bytes) -> list[str]:
    return [e.text for e in parse_sse(body) if e.kind == "data"]


def keepalive_count(body: bytes) -> int:
    return sum(1 for e in parse_sse(body) if e.kind == "comment")


# --------------------------------------------------------------------------------------------
# Wire recorder
# --------------------------------------------------------------------------------------------


@dataclass
class Exchange:
    """One HTTP request to the gateway and the response bytes exactly as sent."""

    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytearray = field(default_factory=bytearray)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False

    @property
    def route(self) -> str:
        """The path without the optional `/v1` prefix."""
        return self.path[3:] if self.path.startswith("/v1/") else self.path

    @property
    def is_chat(self) -> bool:
        return self.method == "POST" and self.route == "/chat/completions"

    def request_json(self) -> Any:
        try:
            return json.loads(bytes(self.request_body))
        except ValueError:
            return None

    def json(self) -> Any:
        return json.loads(bytes(self.body))


RequestHook = Callable[[Exchange], Awaitable[None]]


class WireRecorder:
    """ASGI wrapper around the gateway app that records every exchange (and can act before a request)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self.before_request: RequestHook | None = None  # runs on the server loop before the app sees the request
        self._active = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> Any:  # Stack.gateway reads `config.app.state.gateway`
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"],
                            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]})
        with self._lock:
            self.exchanges.append(exchange)
            self._active += 1

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and len(exchange.request_body) < REQUEST_BODY_CAP:
                exchange.request_body += message.get("body", b"")[:REQUEST_BODY_CAP]
            return message

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                    for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                exchange.body += message.get("body", b"")
            await send(message)

        try:
            hook = self.before_request
            if hook is not None:
                await hook(exchange)
            await self.app(scope, recording_receive, recording_send)
        finally:
            exchange.done = True
            with self._lock:
                self._active -= 1

    def mark(self) -> int:
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges[mark:])

    def chat_since(self, mark: int) -> list[Exchange]:
        return [e for e in self.since(mark) if e.is_chat]

    def wait_quiet(self, timeout: float = 15.0) -> None:
        """Bounded wait until no request is being served."""
        deadline = time.monotonic() + timeout
        while self._active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self._active, f"{self._active} request(s) still being served after {timeout} s"


# --------------------------------------------------------------------------------------------
# Checking one exchange against the wire rules and the schemas
# --------------------------------------------------------------------------------------------


def check_error_body(exchange: Exchange, schemas: OpenAISchemas) -> dict[str, Any]:
    assert exchange.headers.get("content-type", "").startswith("application/json"), exchange.headers
    body = exchange.json()
    schemas.validate("ErrorResponse", body)
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    if exchange.status in (429, 503):
        retry_after = exchange.headers.get("retry-after", "")
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 120, f"bad Retry-After {retry_after!r}"
    return body  # type: ignore[no-any-return]


def check_stream(exchange: Exchange, schemas: OpenAISchemas) -> int:
    """Framing and schema of one chat-completions event stream; returns the number of chunks checked."""
    assert exchange.headers.get("content-type", "").startswith("text/event-stream"), exchange.headers
    payloads = data_events(bytes(exchange.body))
    assert payloads, "an event stream with no data event"
    ids, finishes, chunks, with_usage = set(), 0, 0, 0
    tool_calls = ToolCallDeltas()
    for position, payload in enumerate(payloads):
        last = position == len(payloads) - 1
        if payload == "[DONE]":
            assert last, "data: [DONE] is not the last event"
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            assert last, "events after a mid-stream error"
            schemas.validate("ErrorResponse", chunk)
            continue
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
        tool_calls.see(chunk)
        chunks += 1
        ids.add((chunk["id"], chunk["created"], chunk["model"]))
        if not chunk["choices"]:
            assert finishes == 1 and chunk.get("usage"), "an empty-choices chunk must be the usage chunk"
        finishes += sum(1 for c in chunk["choices"] if c["finish_reason"] is not None)
        with_usage += chunk.get("usage") is not None
    assert len(ids) <= 1, f"chunks disagree on id/created/model: {ids}"
    ended = payloads[-1] == "[DONE]"
    if ended:
        assert finishes == 1, f"{finishes} chunks with a finish_reason in a completed stream"
    else:
        assert json.loads(payloads[-1]).get("error"), "stream neither ends with [DONE] nor with an error event"
    # Clients that add usage up over the chunks (LangChain) would count a second copy twice.
    assert with_usage <= 1, f"usage on {with_usage} chunks of one stream"
    if ended:
        tool_calls.check(markup=declares_tools(exchange.request_json()))
    return chunks


MARKUP_FRAGMENTS = ("DSML", "tool▁", "<｜", "|tool_calls", "tool_result")


def _no_markup(text: str | None, where: str) -> None:
    """Outside code fences (a fenced example is text), no tool markup."""
    outside = "".join((text or "").split("```")[::2])
    for fragment in MARKUP_FRAGMENTS:
        assert fragment not in outside, f"tool markup {fragment!r} reached the client in {where}: {text!r}"


def _arguments_ok(name: str, arguments: str) -> None:
    value = json.loads(arguments)
    assert isinstance(value, dict), f"arguments of {name} are not a JSON object: {arguments!r}"


class ToolCallDeltas:
    """The rules for `delta.tool_calls` that the SDKs' accumulators rely on (docs/tools.md): indices
    0..n-1 in order; `id`, `type` and `function.name` exactly once, in the first delta of an index;
    arguments that join into a JSON object; finish_reason "tool_calls" when (and only when) calls came."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.content: list[str] = []

    def see(self, chunk: dict[str, Any]) -> None:
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            for key in ("content", "reasoning_content"):
                if isinstance(delta.get(key), str):
                    self.content.append(delta[key])
            for item in delta.get("tool_calls") or ():
                index = item["index"]
                function = item.get("function") or {}
                if index not in self.calls:
                    assert index == len(self.calls), f"tool call index {index} after {len(self.calls)} calls"
                    assert item.get("id") and item.get("type") == "function" and function.get("name"), item
                    self.calls[index] = {"id": item["id"], "name": function["name"], "arguments": ""}
                else:
                    assert "id" not in item and "type" not in item and "name" not in function, \
                        f"id/type/name repeated for index {index}: {item}"
                self.calls[index]["arguments"] += function.get("arguments") or ""

    def check(self, *, markup: bool = True) -> None:
        if markup:
            _no_markup("".join(self.content), "a streamed delta")
        if self.calls:
            assert self.finish == "tool_calls", f"finish_reason {self.finish!r} after tool calls"
            assert len({c["id"] for c in self.calls.values()}) == len(self.calls), "duplicate call ids"
            for call in self.calls.values():
                _arguments_ok(call["name"], call["arguments"])
        else:
            assert self.finish != "tool_calls", "finish_reason tool_calls without a call"


def declares_tools(request: Any) -> bool:
    return isinstance(request, dict) and bool(request.get("tools") or request.get("functions"))


def check_tool_body(body: dict[str, Any], *, markup: bool = True) -> None:
    """A non-stream body: calls with unique ids and JSON-object arguments, finish_reason to match, no markup."""
    for choice in body["choices"]:
        message = choice["message"]
        if markup:
            _no_markup(message.get("content"), "message.content")
            _no_markup(message.get("reasoning_content"), "message.reasoning_content")
        calls = message.get("tool_calls") or []
        if calls:
            assert choice["finish_reason"] == "tool_calls", choice
            assert len({c["id"] for c in calls}) == len(calls), "duplicate call ids"
            for call in calls:
                assert call["id"].startswith("call_") and call["type"] == "function", call
                _arguments_ok(call["function"]["name"], call["function"]["arguments"])
        elif message.get("function_call"):
            assert choice["finish_reason"] == "function_call", choice
        else:
            assert choice["finish_reason"] != "tool_calls", choice


def check_exchange(exchange: Exchange, schemas: OpenAISchemas) -> None:
    """Every rule that holds for any response of the OpenAI surface (see the module docstring)."""
    assert exchange.done and exchange.status is not None, f"unfinished exchange {exchange.method} {exchange.path}"
    if exchange.method == "OPTIONS":
        assert exchange.status in (200, 204)
        return
    route, status = exchange.route, exchange.status
    if route in HEALTH_ROUTES:
        return  # load-balancer probes have their own small bodies, not the OpenAI envelope
    openai_route = route == "/chat/completions" or route == "/models" or route.startswith("/models/")
    assert exchange.headers.get("x-request-id"), f"no x-request-id on {exchange.method} {exchange.path}"
    if status >= 400:
        check_error_body(exchange, schemas)
        return
    if not openai_route:
        return
    if exchange.is_chat:
        request = exchange.request_json()
        wants_stream = isinstance(request, dict) and request.get("stream") is True
        if wants_stream:
            check_stream(exchange, schemas)
        else:
            assert exchange.headers.get("content-type", "").startswith("application/json"), exchange.headers
            body = exchange.json()
            schemas.validate("CreateChatCompletionResponse", body)
            check_tool_body(body, markup=declares_tools(request))
    elif route == "/models":
        schemas.validate("ListModelsResponse", exchange.json())
    elif route.startswith("/models/"):
        schemas.validate("Model", exchange.json())


# --------------------------------------------------------------------------------------------
# The stack with a recorder
# --------------------------------------------------------------------------------------------


@dataclass
class ConformanceStack(Stack):
    wire: WireRecorder = None  # type: ignore[assignment]
    schemas: OpenAISchemas = None  # type: ignore[assignment]
    checked: int = 0

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def check_wire(self) -> list[Exchange]:
        """Check every exchange recorded since the last check; returns them."""
        self.wire.wait_quiet()
        new = self.wire.since(self.checked)
        self.checked += len(new)
        for exchange in new:
            try:
                check_exchange(exchange, self.schemas)
            except AssertionError as failure:
                raise AssertionError(f"{exchange.method} {exchange.path} -> {exchange.status}: {failure}") from None
        return new

    def wait_usable(self, timeout: float = 15.0) -> None:
        """Bounded wait until every account is usable again (after a test made them cool down)."""
        deadline = time.monotonic() + timeout
        pool, wanted = self.gateway.pool, len(self.settings.accounts)
        while pool.usable_count < wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.usable_count == wanted, f"accounts still cooling after {timeout} s: {pool.status()}"

    def assert_invariants(self) -> None:
        super().assert_invariants()
        self.check_wire()

    @contextlib.contextmanager
    def hold_accounts(self) -> Iterator[AccountHold]:
        hold = AccountHold(self)
        hold.start()
        try:
            yield hold
        finally:
            hold.close()


@contextlib.contextmanager
def conformance_stack(schemas: OpenAISchemas, *, accounts: int = 2, sim: dict[str, Any] | None = None,
                      **settings_overrides: Any) -> Iterator[ConformanceStack]:
    """`gateway_support.running_stack` with the gateway app wrapped in a `WireRecorder`.

    On a clean exit: the usual invariants plus the wire check of every exchange not yet checked.
    """
    sim_options: dict[str, Any] = {"users": sim_users(accounts), "difficulty": TEST_DIFFICULTY, "seed": 7}
    sim_options.update(sim or {})
    sim_config = SimulatorConfig(**sim_options)
    with BackgroundServer(create_simulator(sim_config)) as simulator:
        settings = gateway_settings(simulator.base_url, sim_config.users, **settings_overrides)
        wire = WireRecorder(create_app(settings))
        with BackgroundServer(wire) as gateway_server:
            stack = ConformanceStack(simulator, gateway_server, sim_config, settings, wire=wire, schemas=schemas)
            yield stack
            stack.assert_invariants()


class AccountHold:
    """Every pool account leased by the test itself, so requests meet a pool-exhausted 429.

    The leases live on the gateway's own loop. `release_on_retry(n)` hands them back from inside the
    gateway, right before it serves the SDK attempt carrying `x-stainless-retry-count: n`: the retry
    then succeeds deterministically, without racing a timer.
    """

    def __init__(self, stack: ConformanceStack) -> None:
        self.stack = stack
        self._release: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.released = False

    def start(self) -> None:
        pool = self.stack.gateway.pool
        count = len(self.stack.settings.accounts)

        async def grab() -> None:
            self._release = asyncio.Event()
            acquired = asyncio.Event()

            async def hold() -> None:
                async with contextlib.AsyncExitStack() as leases:
                    taken: list[str] = []
                    for _ in range(count):
                        lease = await leases.enter_async_context(pool.lease(exclude=taken))
                        taken.append(lease.account_id)
                    acquired.set()
                    await self._release.wait()  # type: ignore[union-attr]

            self._task = asyncio.get_running_loop().create_task(hold())
            async with asyncio.timeout(10):
                await acquired.wait()

        self.stack.gateway_server.call(grab())
        assert self.stack.gateway.pool.leases_out == count

    async def release(self) -> None:
        """On the gateway loop: give every lease back and wait until they are back."""
        if not self.released:
            self.released = True
            assert self._release is not None and self._task is not None
            self._release.set()
            await self._task

    def release_on_retry(self, attempt: int) -> None:
        async def hook(exchange: Exchange) -> None:
            if exchange.is_chat and exchange.request_headers.get("x-stainless-retry-count") == str(attempt):
                await self.release()

        self.stack.wire.before_request = hook

    def close(self) -> None:
        self.stack.wire.before_request = None
        self.stack.gateway_server.call(self.release())


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module", name="stack")
def checked_stack(openai_schemas: OpenAISchemas) -> Iterator[ConformanceStack]:
    """The `stack` of a module that needs nothing special: two accounts, every exchange checked on exit.

    tests/api/openai/conftest.py and tests/api/responses/conftest.py share it; a module that configures
    the gateway keeps its own `stack`, which overrides this one.
    """
    with conformance_stack(openai_schemas, accounts=2) as running:
        yield running
