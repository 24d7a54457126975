"""The google-genai Python SDK against gateway + simulator: generate, stream (SSE and the JSON array),
thinking, tools with a function-call round trip, tool config modes, structured output with a pydantic
schema, countTokens, models, googleSearch grounding, images, and every failure in Google's envelope."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from deepseek2api.simulator.replies import reply_for
from files_support import png_bytes
from gateway_support import API_KEY, Stack, running_stack

HELLO = "hello from the google-genai sdk"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=3) as running:
        yield running


@pytest.fixture(autouse=True)
def _idle_after(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").assert_invariants()


_ALIVE: list[genai.Client] = []  # a Client closes its HTTP client when collected, even mid-expression


def client(stack: Stack, api_key: str = API_KEY, version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=stack.base_url, api_version=version, timeout=60_000)
    sdk = genai.Client(api_key=api_key, http_options=options)
    _ALIVE.append(sdk)
    return sdk


def text_of(response: types.GenerateContentResponse, thought: bool = False) -> str:
    parts = response.candidates[0].content.parts or []  # type: ignore[index, union-attr]
    return "".join(p.text or "" for p in parts if bool(p.thought) == thought)


def expected(prompt: str, *, thinking: bool = False, search: bool = False) -> Any:
    return reply_for(prompt, thinking=thinking, search=search)


def raw(stack: Stack, path: str, body: dict[str, Any], **params: str) -> httpx.Response:
    return httpx.post(f"{stack.base_url}{path}", json=body, params=params,
                      headers={"x-goog-api-key": API_KEY}, timeout=60)


# ---- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_generate_answers_with_usage_model_version_and_response_id(stack: Stack, version: str) -> None:
    response = client(stack, version=version).models.generate_content(model="gemini-2.5-flash", contents=HELLO)
    assert response.text == expected(HELLO).content
    candidate = response.candidates[0]  # type: ignore[index]
    assert candidate.finish_reason == types.FinishReason.STOP and candidate.content.role == "model"  # type: ignore[union-attr]
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == "gemini-2.5-flash" and response.response_id


def test_stream_joins_to_the_same_answer_and_ends_with_stop_and_usage(stack: Stack) -> None:
    chunks = list(client(stack).models.generate_content_stream(model="gemini-2.5-flash", contents=HELLO))
    assert len(chunks) > 2
    assert "".join(c.text or "" for c in chunks) == expected(HELLO).content
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert chunks[-1].usage_metadata.candidates_token_count  # type: ignore[union-attr]
    assert len({c.response_id for c in chunks}) == 1


def test_without_alt_sse_the_stream_is_one_json_array(stack: Stack) -> None:
    response = raw(stack, "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                   {"contents": [{"parts": [{"text": HELLO}]}]})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    chunks = json.loads(response.text)
    assert isinstance(chunks, list) and len(chunks) > 2
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == expected(HELLO).content and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_include_thoughts_gives_thought_parts_and_budget_zero_turns_thinking_off(stack: Stack) -> None:
    sdk = client(stack)
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    thought = sdk.models.generate_content(model="gemini-2.5-pro", contents=HELLO, config=config)
    reply = expected(HELLO, thinking=True)
    assert text_of(thought, thought=True) == reply.reasoning and text_of(thought) == reply.content
    assert thought.usage_metadata.thoughts_token_count  # type: ignore[union-attr]
    streamed = list(sdk.models.generate_content_stream(model="gemini-2.5-pro", contents=HELLO, config=config))
    assert "".join(text_of(c, thought=True) for c in streamed) == reply.reasoning
    hidden = sdk.models.generate_content(model="gemini-2.5-pro", contents=HELLO)  # thinks, shows no thoughts
    assert text_of(hidden, thought=True) == "" and hidden.usage_metadata.thoughts_token_count  # type: ignore[union-attr]
    off = sdk.models.generate_content(model="gemini-2.5-pro", contents=HELLO, config=types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=0)))
    assert off.text == expected(HELLO).content and not off.usage_metadata.thoughts_token_count  # type: ignore[union-attr]


def test_system_instruction_stop_sequences_and_max_output_tokens(stack: Stack) -> None:
    sdk = client(stack)
    stopped = sdk.models.generate_content(model="gemini-2.5-flash", contents=HELLO, config=types.GenerateContentConfig(
        system_instruction="You are terse.", stop_sequences=["simulator"]))
    assert stopped.text == expected(HELLO).content.split("simulator")[0]
    prompts = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert "You are terse." in prompts[-1]
    capped = sdk.models.generate_content(model="gemini-2.5-flash", contents=f"{HELLO} [sim:words=400]",
                                         config=types.GenerateContentConfig(max_output_tokens=5))
    assert capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS  # type: ignore[index]


# ---- tools ---------------------------------------------------------------------------------------

WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city.",
    parameters=types.Schema(type=types.Type.OBJECT, required=["city"], properties={
        "city": types.Schema(type=types.Type.STRING),
        "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"])}))
TIME = types.FunctionDeclaration(name="get_time", description="The local time in a city.",
                                 parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}},
                                                         "required": ["city"]})
TOOLS = [types.Tool(function_declarations=[WEATHER, TIME])]


def test_a_function_call_round_trip_reaches_the_model_and_ends_in_prose(stack: Stack) -> None:
    sdk = client(stack)
    config = types.GenerateContentConfig(tools=TOOLS, automatic_function_calling=types.AutomaticFunctionCallingConfig(
        disable=True))
    history: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather in Rome? Use get_weather please")])]
    first = sdk.models.generate_content(model="gemini-2.5-flash", contents=history, config=config)
    (call,) = first.function_calls or []
    assert call.name == "get_weather" and isinstance(call.args, dict) and call.args.get("city")
    history += [first.candidates[0].content,  # type: ignore[index]
                types.Content(role="user", parts=[types.Part.from_function_response(
                    name="get_weather", response={"output": "Rome: 24 C, clear <sky>"})])]
    streamed = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents=history, config=config))
    answer = "".join(c.text or "" for c in streamed)
    assert "Rome: 24 C, clear <sky>" in answer and not any(c.function_calls for c in streamed)
    prompts = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
    assert "Rome: 24 C, clear <sky>" in prompts[-1].split("tool_result", 1)[1]


def test_mode_any_with_allowed_names_forces_that_call_and_none_keeps_tools_out(stack: Stack) -> None:
    sdk = client(stack)
    forced = types.GenerateContentConfig(tools=TOOLS, tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY,
                                                            allowed_function_names=["get_time"])))
    response = sdk.models.generate_content(model="gemini-2.5-flash", contents="Time in Oslo? use get_time",
                                           config=forced)
    assert [c.name for c in response.function_calls or []] == ["get_time"] and response.text is None
    streamed = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="Time in Oslo? use get_time",
                                                       config=forced))
    assert [c.name for s in streamed for c in (s.function_calls or [])] == ["get_time"]
    none = types.GenerateContentConfig(tools=TOOLS, tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)))
    plain = sdk.models.generate_content(model="gemini-2.5-flash", contents=HELLO, config=none)
    assert plain.text == expected(HELLO).content and not plain.function_calls


class Forecast(BaseModel):
    city: str
    days: int


def test_structured_output_with_a_pydantic_schema_is_parsed(stack: Stack) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Forecast)
    response = client(stack).models.generate_content(
        model="gemini-2.5-flash", config=config,
        contents='Forecast please. [sim:reply=```json\n{"city": "Paris", "days": 3}\n```]')
    assert response.parsed == Forecast(city="Paris", days=3)
    bad = client(stack).models.generate_content
    with pytest.raises(errors.ClientError) as rejected:
        bad(model="gemini-2.5-flash", config=config, contents='[sim:reply={"city": "Paris"}]')
    assert rejected.value.code == 422 and rejected.value.status == "INVALID_ARGUMENT"


def test_count_tokens_counts_the_prompt_and_the_tool_catalog(stack: Stack) -> None:
    sdk = client(stack)
    plain = sdk.models.count_tokens(model="gemini-2.5-flash", contents=HELLO).total_tokens
    longer = sdk.models.count_tokens(model="gemini-2.5-flash", contents=HELLO + " and some more words here").total_tokens
    assert plain and longer and longer > plain
    body = {"contents": [{"parts": [{"text": HELLO}]}], "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather for a city.", "parameters": {"type": "OBJECT"}}]}]}
    with_tools = raw(stack, "/v1beta/models/gemini-2.5-flash:countTokens", body).json()["totalTokens"]
    assert with_tools > plain


def test_models_list_and_get_carry_token_limits_and_methods(stack: Stack) -> None:
    sdk = client(stack)
    names = [m.name for m in sdk.models.list()]
    assert "models/deepseek-chat" in names and "models/deepseek-reasoner" in names
    model = sdk.models.get(model="gemini-2.5-pro")
    assert model.input_token_limit and model.output_token_limit
    assert model.supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    openai = httpx.get(f"{stack.base_url}/v1/models", headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert openai.json()["object"] == "list"  # the same path stays OpenAI's for OpenAI clients
    # the limits are the `model_limits` settings `/v1/models` reports (a chat model's output is not a thinker's)
    limits = {m["id"]: (m["context_window"], m["max_output_tokens"]) for m in openai.json()["data"]}
    listed = {m.name: (m.input_token_limit, m.output_token_limit) for m in sdk.models.list()}
    assert listed["models/deepseek-chat"] == limits["deepseek-chat"] == (131072, 8192)
    assert listed["models/deepseek-reasoner"] == limits["deepseek-reasoner"] == (131072, 65536)


def test_google_search_is_a_search_turn_with_grounding_metadata(stack: Stack) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    response = client(stack).models.generate_content(model="gemini-2.5-flash", contents="latest on the simulator",
                                                     config=config)
    grounding = response.candidates[0].grounding_metadata  # type: ignore[index]
    assert grounding is not None and grounding.grounding_chunks
    assert all(c.web and c.web.uri and c.web.uri.startswith("http") for c in grounding.grounding_chunks)
    assert "simulated search" in (response.text or "")


def test_an_inline_image_is_uploaded_with_the_turn(stack: Stack) -> None:
    image = png_bytes()
    response = client(stack).models.generate_content(model="gemini-2.5-flash", contents=[
        types.Part.from_bytes(data=image, mime_type="image/png"), "What is in the picture?"])
    assert f"I see an image of {len(image)} bytes (PNG)" in (response.text or "")
    by_uri = raw(stack, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [
        {"fileData": {"mimeType": "image/png", "fileUri": "data:image/png;base64," + base64.b64encode(image).decode()}},
        {"text": "And this?"}]}]})
    assert f"I see an image of {len(image)} bytes (PNG)" in by_uri.json()["candidates"][0]["content"]["parts"][0]["text"]
    remote = raw(stack, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a.pdf"}}]}]})
    assert remote.status_code == 400 and "fileData" in remote.json()["error"]["message"]  # files.fetch_remote is off
    broken = raw(stack, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"not a png").decode()}}]}]})
    assert broken.status_code == 400 and broken.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "contents[0].parts[0].inlineData" in broken.json()["error"]["message"]


# ---- errors --------------------------------------------------------------------------------------


def test_auth_failures_are_unauthenticated(stack: Stack) -> None:
    with pytest.raises(errors.ClientError) as failed:
        client(stack, api_key="wrong").models.generate_content(model="gemini-2.5-flash", contents=HELLO)
    assert failed.value.code == 401 and failed.value.status == "UNAUTHENTICATED"
    keyed = httpx.post(f"{stack.base_url}/v1beta/models/gemini-2.5-flash:generateContent?key={API_KEY}",
                       json={"contents": [{"parts": [{"text": HELLO}]}]}, timeout=60)
    assert keyed.status_code == 200  # ?key= as REST examples send it
    missing = httpx.get(f"{stack.base_url}/v1beta/models", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["status"] == "UNAUTHENTICATED"


def test_unknown_model_and_bad_input_are_not_found_and_invalid_argument(stack: Stack) -> None:
    with pytest.raises(errors.ClientError) as unknown:
        client(stack).models.generate_content(model="llama-3", contents=HELLO)
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    for body, field in [({"contents": []}, "contents"),
                        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
                        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}},
                         "candidateCount"),
                        ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"codeExecution": {}}]}, "codeExecution")]:
        response = raw(stack, "/v1beta/models/gemini-2.5-flash:generateContent", body)
        assert response.status_code == 400, body
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT" and field in response.json()["error"]["message"]


def test_a_busy_pool_is_resource_exhausted_with_retry_info() -> None:
    with running_stack(accounts=1, pool={"queue_size": 0, "queue_timeout": 0.2}, sim={"stall_seconds": 3.0}) as busy:
        holding = threading.Thread(target=lambda: client(busy).models.generate_content(
            model="gemini-2.5-flash", contents="hold [sim:stall=2]"))
        holding.start()
        deadline = time.monotonic() + 10
        while busy.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(errors.ClientError) as limited:
            client(busy).models.generate_content(model="gemini-2.5-flash", contents=HELLO)
        holding.join(30)
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    details = limited.value.details["error"]["details"]
    assert any(d["@type"].endswith("RetryInfo") and d["retryDelay"].endswith("s") for d in details)
    assert limited.value.response.headers["retry-after"]  # type: ignore[union-attr]


def test_an_overloaded_upstream_is_unavailable(stack: Stack) -> None:
    with pytest.raises(errors.ServerError) as failed:
        client(stack).models.generate_content(model="gemini-2.5-flash", contents="busy [sim:fault=busy]")
    assert failed.value.code == 503 and failed.value.status == "UNAVAILABLE"


def test_a_failure_after_the_first_byte_ends_the_stream_with_an_error_chunk(stack: Stack) -> None:
    body = {"contents": [{"parts": [{"text": "cut [sim:fault=cut] [sim:words=50]"}]}]}
    sse = raw(stack, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, alt="sse")
    events = [json.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ")]
    assert sse.status_code == 200 and "candidates" in events[0]
    assert events[-1]["error"]["status"] == "UNAVAILABLE" and events[-1]["error"]["code"] == 502
    array = json.loads(raw(stack, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body).text)
    assert "candidates" in array[0] and array[-1]["error"]["status"] == "UNAVAILABLE"
    with pytest.raises(errors.APIError):
        for _ in client(stack).models.generate_content_stream(model="gemini-2.5-flash",
                                                              contents="cut [sim:fault=cut] [sim:words=50]"):
            pass


def test_a_client_that_hangs_up_mid_stream_returns_the_lease(stack: Stack) -> None:
    body = {"contents": [{"parts": [{"text": "long [sim:words=3000] [sim:fault=slow]"}]}]}
    with httpx.stream("POST", f"{stack.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                      params={"alt": "sse"}, json=body, headers={"x-goog-api-key": API_KEY}, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # one chunk read, then the connection closes
    stack.wait_idle()  # the turn was cancelled and its account is free again


def test_a_silent_upstream_gets_empty_text_chunks_as_keep_alives_the_sdk_reads() -> None:
    with running_stack(accounts=1, server={"keepalive_interval": 0.2}, sim={"stall_seconds": 1.0}) as slow:
        body = {"contents": [{"parts": [{"text": "slow start [sim:fault=stall]"}]}]}
        sse = raw(slow, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, alt="sse")
        assert sse.text.count('"parts":[{"text":""}]') >= 3 and ": keep-alive" not in sse.text
        chunks = list(client(slow).models.generate_content_stream(model="gemini-2.5-flash",
                                                                  contents="slow start [sim:fault=stall]"))
        assert "".join(c.text or "" for c in chunks) == expected("slow start [sim:fault=stall]").content


def test_a_content_filtered_answer_ends_with_safety(stack: Stack) -> None:
    response = client(stack).models.generate_content(model="gemini-2.5-flash",
                                                     contents="filter me [sim:fault=content_filter]")
    assert response.candidates[0].finish_reason == types.FinishReason.SAFETY  # type: ignore[index]
