"""The `ollama` Python client against gateway + simulator: chat, NDJSON streams, tools round trip, `format`
with a schema, `think`, images, generate (and `raw` refused), list / show / ps / version, the model
management calls answered "not served", who may call (loopback, a key, its own listener), and every
failure in Ollama's `{"error": …}` dialect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import ollama
import pytest
from pydantic import BaseModel

from deepseek2api.api.auth import Authenticator
from deepseek2api.api.errors import ApiError
from deepseek2api.api.ollama.router import OllamaGate
from deepseek2api.background import BackgroundServer, free_port
from deepseek2api.cli import listeners
from deepseek2api.settings import Settings
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator
from deepseek2api.simulator.replies import reply_for
from files_support import png_bytes
from gateway_support import API_KEY, Stack, running_stack

HELLO = "hello from the ollama client"
ENABLED = {"ollama": {"enabled": True}}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=3, **ENABLED) as running:
        yield running


@pytest.fixture(autouse=True)
def _idle_after(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").assert_invariants()


def client(stack: Stack, **options: Any) -> ollama.Client:
    return ollama.Client(host=stack.base_url, timeout=60, **options)


def user(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text, **extra}]


# ---- answers -------------------------------------------------------------------------------------


def test_chat_answers_with_done_reason_counts_and_durations(stack: Stack) -> None:
    response = client(stack).chat(model="deepseek-chat", messages=user(HELLO), stream=False)
    assert response.message.role == "assistant" and response.message.content == reply_for(
        HELLO, thinking=False, search=False).content
    assert response.done and response.done_reason == "stop"
    assert response.prompt_eval_count and response.eval_count and response.total_duration
    assert response.model == "deepseek-chat"


def test_chat_streams_ndjson_by_default_and_joins_to_the_same_answer(stack: Stack) -> None:
    chunks = list(client(stack).chat(model="deepseek-chat:latest", messages=user(HELLO), stream=True))
    assert len(chunks) > 2 and all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert "".join(c.message.content or "" for c in chunks) == reply_for(HELLO, thinking=False, search=False).content
    assert chunks[-1].eval_count and chunks[-1].prompt_eval_duration is not None
    raw = httpx.post(f"{stack.base_url}/api/chat", json={"model": "deepseek-chat", "messages": user(HELLO)},
                     timeout=60)  # no `stream`: Ollama streams
    assert raw.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert len(lines) > 2 and lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"


def test_think_puts_reasoning_in_message_thinking_and_false_turns_it_off(stack: Stack) -> None:
    sdk = client(stack)
    reply = reply_for(HELLO, thinking=True, search=False)
    thought = sdk.chat(model="deepseek-chat", messages=user(HELLO), think=True, stream=False)
    assert thought.message.thinking == reply.reasoning and thought.message.content == reply.content
    streamed = list(sdk.chat(model="deepseek-chat", messages=user(HELLO), think=True, stream=True))
    assert "".join(c.message.thinking or "" for c in streamed) == reply.reasoning
    off = sdk.chat(model="deepseek-reasoner", messages=user(HELLO), think=False, stream=False)
    assert off.message.thinking is None and off.message.content == reply_for(HELLO, thinking=False,
                                                                             search=False).content


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_a_tool_call_round_trip_with_object_arguments(stack: Stack) -> None:
    sdk = client(stack)
    history: list[Any] = user("Weather in Rome? Use get_weather please")
    first = sdk.chat(model="deepseek-chat", messages=history, tools=[WEATHER], stream=False)
    (call,) = first.message.tool_calls or []
    assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    assert call.function.arguments.get("city")
    streamed = [c for c in sdk.chat(model="deepseek-chat", messages=history, tools=[WEATHER], stream=True)
                if c.message.tool_calls]
    assert [c.message.tool_calls[0].function.name for c in streamed] == ["get_weather"]  # type: ignore[index]
    history += [first.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_name": "get_weather", "content": "Rome: 24 C, clear <sky>"}]
    final = sdk.chat(model="deepseek-chat", messages=history, tools=[WEATHER], stream=False)
    assert "Rome: 24 C, clear <sky>" in final.message.content and not final.message.tool_calls  # type: ignore[operator]
    prompts = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert "Rome: 24 C, clear <sky>" in prompts[-1].split("tool_result", 1)[1]


class Forecast(BaseModel):
    city: str
    days: int


def test_format_with_a_schema_and_format_json(stack: Stack) -> None:
    sdk = client(stack)
    shaped = sdk.chat(model="deepseek-chat", format=Forecast.model_json_schema(), stream=False,
                      messages=user('Forecast please. [sim:reply=```json\n{"city": "Paris", "days": 3}\n```]'))
    assert Forecast.model_validate_json(shaped.message.content or "") == Forecast(city="Paris", days=3)
    any_json = sdk.generate(model="deepseek-chat", format="json", prompt='JSON please [sim:reply=Sure! {"ok": true}]')
    assert json.loads(any_json.response) == {"ok": True}
    with pytest.raises(ollama.ResponseError) as rejected:
        sdk.chat(model="deepseek-chat", format=Forecast.model_json_schema(), messages=user('[sim:reply={"city": "x"}]'))
    assert rejected.value.status_code == 422


def test_images_are_uploaded_with_the_turn(stack: Stack) -> None:
    image = png_bytes()
    response = client(stack).chat(model="deepseek-chat", stream=False,
                                  messages=user("What is in the picture?", images=[image]))
    assert f"I see an image of {len(image)} bytes (PNG)" in (response.message.content or "")
    generated = client(stack).generate(model="deepseek-chat", prompt="And this one?", images=[image])
    assert f"I see an image of {len(image)} bytes (PNG)" in generated.response
    with pytest.raises(ollama.ResponseError) as broken:
        client(stack).chat(model="deepseek-chat", messages=user("x", images=["bm90IGFuIGltYWdl"]))
    assert broken.value.status_code == 400 and "images[0]" in broken.value.error


def test_generate_streams_and_refuses_raw_prompts_clearly(stack: Stack) -> None:
    sdk = client(stack)
    chunks = list(sdk.generate(model="deepseek-chat", prompt=HELLO, system="Be brief.", stream=True))
    assert "".join(c.response for c in chunks) == reply_for(HELLO, thinking=False, search=False).content
    assert chunks[-1].done and chunks[-1].done_reason == "stop" and chunks[-1].eval_count
    with pytest.raises(ollama.ResponseError) as refused:
        sdk.generate(model="deepseek-chat", prompt=HELLO, raw=True)
    assert refused.value.status_code == 400 and "raw prompts are not supported" in refused.value.error
    loaded = sdk.generate(model="deepseek-chat", prompt="")  # Ollama's "load the model": no turn
    assert loaded.done and loaded.done_reason == "load"


def test_list_show_ps_and_version(stack: Stack) -> None:
    sdk = client(stack)
    names = [m.model for m in sdk.list().models]
    assert "deepseek-chat:latest" in names and "deepseek-reasoner:latest" in names
    shown = sdk.show("deepseek-reasoner")
    assert shown.modelinfo and shown.modelinfo["deepseek.context_length"] >= 65_536
    assert set(shown.capabilities or ()) >= {"completion", "tools", "thinking", "vision"}
    assert [m.model for m in sdk.ps().models] == names
    version = httpx.get(f"{stack.base_url}/api/version", timeout=10).json()["version"]
    assert tuple(int(p) for p in version.split(".")) >= (0, 6, 0)


@pytest.mark.parametrize("call", [lambda c: c.pull("llama3"), lambda c: c.push("me/model"),
                                  lambda c: c.create(model="mine", from_="deepseek-chat"),
                                  lambda c: c.delete("deepseek-chat"), lambda c: c.copy("deepseek-chat", "x"),
                                  lambda c: c.embed(model="deepseek-chat", input="text")])
def test_model_management_and_embeddings_are_not_served(stack: Stack, call: Any) -> None:
    with pytest.raises(ollama.ResponseError) as refused:
        call(client(stack))
    assert refused.value.status_code == 501 and "not served by this gateway" in refused.value.error


def test_a_content_filtered_answer_says_so_in_done_reason(stack: Stack) -> None:
    response = client(stack).chat(model="deepseek-chat", messages=user("filter me [sim:fault=content_filter]"),
                                  stream=False)
    assert response.done and response.done_reason == "content_filter"


# ---- errors --------------------------------------------------------------------------------------


def test_unknown_model_is_404_and_bad_input_400(stack: Stack) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        client(stack).chat(model="llama3:8b", messages=user(HELLO))
    assert unknown.value.status_code == 404 and unknown.value.error == "model 'llama3:8b' not found"
    bad = httpx.post(f"{stack.base_url}/api/chat", json={"model": "deepseek-chat", "messages": [{"role": "robot"}]},
                     timeout=10)
    assert bad.status_code == 400 and "messages[0].role" in bad.json()["error"]
    assert set(bad.json()) == {"error"}


def test_a_failure_after_the_first_line_ends_the_stream_with_an_error_line(stack: Stack) -> None:
    body = {"model": "deepseek-chat", "messages": user("cut [sim:fault=cut] [sim:words=50]")}
    raw = httpx.post(f"{stack.base_url}/api/chat", json=body, timeout=60)
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert raw.status_code == 200 and lines[0]["done"] is False and "error" in lines[-1]
    with pytest.raises(ollama.ResponseError):
        for _ in client(stack).chat(model="deepseek-chat", messages=body["messages"], stream=True):
            pass


def test_a_client_that_hangs_up_mid_stream_returns_the_lease(stack: Stack) -> None:
    body = {"model": "deepseek-chat", "messages": user("long [sim:words=3000] [sim:fault=slow]")}
    with httpx.stream("POST", f"{stack.base_url}/api/chat", json=body, timeout=60) as response:
        for _ in response.iter_lines():
            break  # one line read, then the connection closes
    stack.wait_idle()


def test_a_busy_pool_is_429_with_retry_after() -> None:
    with running_stack(accounts=1, pool={"queue_size": 0, "queue_timeout": 0.2}, sim={"stall_seconds": 3.0},
                       **ENABLED) as busy:
        holding = threading.Thread(target=lambda: client(busy).chat(
            model="deepseek-chat", messages=user("hold [sim:stall=2]"), stream=False))
        holding.start()
        deadline = time.monotonic() + 10
        while busy.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        raw = httpx.post(f"{busy.base_url}/api/chat", timeout=60,
                         json={"model": "deepseek-chat", "messages": user(HELLO)})
        with pytest.raises(ollama.ResponseError) as limited:
            client(busy).chat(model="deepseek-chat", messages=user(HELLO))
        holding.join(30)
    assert raw.status_code == 429 and raw.headers["retry-after"] and set(raw.json()) == {"error"}
    assert limited.value.status_code == 429


def test_a_key_is_required_when_configured_and_the_surface_is_off_by_default() -> None:
    with running_stack(accounts=1, ollama={"enabled": True, "require_key": True}) as keyed:
        with pytest.raises(ollama.ResponseError) as refused:
            client(keyed).list()
        assert refused.value.status_code == 401
        authorized = client(keyed, headers={"authorization": f"Bearer {API_KEY}"})
        assert authorized.list().models
        assert authorized.chat(model="deepseek-chat", messages=user(HELLO), stream=False).done
    with running_stack(accounts=1) as off:
        missing = httpx.get(f"{off.base_url}/api/tags", timeout=10)
        assert missing.status_code == 404 and set(missing.json()) == {"error"}  # in the dialect Ollama apps read


def _request(client_host: str, server_port: int = 8000) -> Any:
    scope = {"type": "http", "headers": [], "client": (client_host, 5555), "server": ("127.0.0.1", server_port),
             "method": "GET", "path": "/api/tags", "query_string": b""}
    from starlette.requests import Request
    return Request(scope)


def test_without_a_key_only_loopback_clients_are_served_and_a_port_is_its_own_listener() -> None:
    gate = OllamaGate(Authenticator([("k", API_KEY)]), port=None, require_key=False)
    assert gate.admit(_request("127.0.0.1")).key_name == "ollama-local"
    assert gate.admit(_request("::1")).key_name == "ollama-local"
    with pytest.raises(ApiError) as remote:
        gate.admit(_request("10.1.2.3"))
    assert remote.value.status == 403
    own = OllamaGate(Authenticator([("k", API_KEY)]), port=11434, require_key=False)
    assert own.admit(_request("127.0.0.1", 11434)).key_name == "ollama-local"
    with pytest.raises(ApiError) as elsewhere:
        own.admit(_request("127.0.0.1", 8000))
    assert elsewhere.value.status == 404


def test_ollama_port_adds_a_second_loopback_listener() -> None:
    import uvicorn

    main, extra = free_port(), free_port()
    settings = Settings.model_validate({"ollama": {"enabled": True, "port": extra}})
    server = uvicorn.Server(uvicorn.Config(SimpleNamespace(), host="127.0.0.1", port=main))
    sockets = listeners(server, settings)
    assert sockets is not None
    try:
        assert [s.getsockname()[1] for s in sockets] == [main, extra]
        assert sockets[1].getsockname()[0] == "127.0.0.1"
    finally:
        for sock in sockets:
            sock.close()
    assert listeners(server, Settings.model_validate({"ollama": {"enabled": True}})) is None


def test_serve_answers_ollama_on_its_own_port_and_not_on_the_main_one(tmp_path: Path) -> None:
    users = [SimUser(email="ollama@sim.test", password="pw")]
    with BackgroundServer(create_simulator(SimulatorConfig(users=users, difficulty=1000))) as simulator:
        main, own = free_port(), free_port()
        (tmp_path / "config.json").write_text(json.dumps({
            "keys": [API_KEY], "accounts": [{"email": "ollama@sim.test", "password": "pw"}],
            "upstream": {"base_url": simulator.base_url, "impersonate": None}, "state": {"backend": "memory"},
            "server": {"host": "127.0.0.1", "port": main}, "ollama": {"enabled": True, "port": own}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DS2API_")}
        process = subprocess.Popen([sys.executable, "-m", "deepseek2api.cli", "serve", "--config",
                                    str(tmp_path / "config.json")], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{main}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            reply = ollama.Client(host=f"http://127.0.0.1:{own}", timeout=60).chat(
                model="deepseek-chat", messages=user(HELLO), stream=False)
            assert reply.message.content == reply_for(HELLO, thinking=False, search=False).content
            assert httpx.get(f"http://127.0.0.1:{main}/api/tags", timeout=10).status_code == 404
            assert httpx.get(f"http://127.0.0.1:{own}/api/tags", timeout=10).status_code == 200
        finally:
            process.terminate()
            process.wait(30)
