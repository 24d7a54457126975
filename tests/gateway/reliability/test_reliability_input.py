"""Bad input never breaks the gateway (issue #6 item 2).

Property-based request bodies — wrong types, missing fields, huge strings, deep nesting, invalid UTF-8,
non-JSON, unknown roles, empty messages — sent to the real app over loopback. Every answer is either
a real completion or a 4xx in the OpenAI error envelope with a specific message; never a 5xx, never
a stack trace in the gateway's log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_support import API_KEY, Stack, running_stack
from reliability_support import error_log, is_error_envelope

EXAMPLES = int(os.environ.get("DS2API_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_PROMPT = 20_000  # the simulator refuses longer prompts (input too long → 400), as DeepSeek does
TEN_MB = 10 * 1024 * 1024  # the default server.max_body_bytes


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=2, sim={"max_prompt_chars": MAX_PROMPT}) as running:
        yield running


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, headers={"authorization": f"Bearer {API_KEY}"},
                      timeout=60) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_errors_logged(stack: Stack) -> Iterator[None]:
    with error_log() as errors:
        yield
    assert not errors.lines(), errors.lines()
    stack.wait_idle()


def post(http: httpx.Client, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return http.post("/v1/chat/completions", content=content, headers={"content-type": content_type})


def check_answer(response: httpx.Response) -> None:
    """A completion, or a 4xx with the error envelope and a message that says what was wrong."""
    status = response.status_code
    assert status < 500, (status, response.text[:500])
    assert "Traceback" not in response.text
    if status == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            events = [e for e in response.text.split("\n\n") if e.startswith("data: ")]
            assert events and (events[-1] == "data: [DONE]" or is_error_envelope(json.loads(events[-1][6:])))
        else:
            assert response.json()["object"] == "chat.completion"
        return
    assert 400 <= status < 500, status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert is_error_envelope(body), body
    message = body["error"]["message"]
    assert len(message) > 15 and "internal" not in message.lower(), message
    assert response.headers.get("x-request-id")


# ---------------------------------------------------------------------------------- strategies

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HUGE_TEXT = st.sampled_from([1_000, 100_000, 1_000_000]).map(lambda n: "x" * n)
ROLES = st.sampled_from(["user", "system", "assistant", "tool", "developer", "function", "wizard", "", "USER"])
PART_TYPES = st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "bogus"])
CONTENT = (
    st.text(max_size=120)
    | st.lists(st.fixed_dictionaries({"type": PART_TYPES | JSON_VALUES}, optional={"text": st.text(max_size=40)
                                                                                  | JSON_VALUES}), max_size=3)
    | HUGE_TEXT
    | JSON_VALUES
)
MESSAGE = st.fixed_dictionaries(
    {}, optional={"role": ROLES | JSON_VALUES, "content": CONTENT, "name": JSON_VALUES,
                  "tool_calls": JSON_VALUES, "tool_call_id": JSON_VALUES, "reasoning_content": JSON_VALUES},
) | JSON_VALUES
MODELS = st.sampled_from(["deepseek-chat", "deepseek-reasoner", "DeepSeek-Chat", "gpt-4o", ""]) | HUGE_TEXT \
    | JSON_VALUES
REQUESTS = st.fixed_dictionaries(
    {}, optional={
        "model": MODELS, "messages": st.lists(MESSAGE, max_size=4) | JSON_VALUES, "stream": st.booleans()
        | JSON_VALUES, "temperature": JSON_VALUES, "top_p": JSON_VALUES, "max_tokens": JSON_VALUES,
        "stop": JSON_VALUES, "n": JSON_VALUES, "stream_options": JSON_VALUES, "tools": JSON_VALUES,
        "tool_choice": JSON_VALUES, "response_format": JSON_VALUES, "user": JSON_VALUES,
        "metadata": JSON_VALUES, "logprobs": JSON_VALUES, "seed": JSON_VALUES, "x-unknown": JSON_VALUES,
    },
)


def _nested(depth: int, kind: str) -> bytes:
    open_, close = ("[", "]") if kind == "list" else ('{"a":', "}")
    inner = open_ * depth + "1" + close * depth if kind == "dict" else open_ * depth + close * depth
    return inner.encode()


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are not a well-formed request: junk, broken JSON, bad UTF-8, deep nesting."""
    kind = draw(st.sampled_from(["binary", "text", "corrupt", "truncated", "nested", "utf8"]))
    valid = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": "hello there"}]}).encode()
    if kind == "binary":
        return draw(st.binary(max_size=3000))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8")
    if kind == "corrupt":  # one byte replaced by something else
        at = draw(st.integers(0, len(valid) - 1))
        return valid[:at] + bytes([draw(st.integers(0, 255))]) + valid[at + 1:]
    if kind == "truncated":
        return valid[:draw(st.integers(0, len(valid) - 1))]
    if kind == "nested":
        depth = draw(st.sampled_from([50, 900, 1_000, 5_000, 100_000]))
        nest = _nested(depth, draw(st.sampled_from(["list", "dict"])))
        where = draw(st.sampled_from(["body", "messages", "content", "extra"]))
        if where == "body":
            return nest
        if where == "messages":
            return b'{"model":"deepseek-chat","messages":' + nest + b"}"
        if where == "content":
            return b'{"model":"deepseek-chat","messages":[{"role":"user","content":' + nest + b"}]}"
        return b'{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"extra":' + nest + b"}"
    # invalid UTF-8 (or a lone surrogate escape) inside an otherwise valid request
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\\ud800",
                                b"\\udfff x", b"\\ud83d"]))
    return b'{"model":"deepseek-chat","messages":[{"role":"user","content":"a' + bad + b'b"}]}'


# ---------------------------------------------------------------------------------- properties


@FUZZ
@given(body=REQUESTS)
def test_request_shaped_bodies(http: httpx.Client, body: dict[str, object]) -> None:
    check_answer(post(http, json.dumps(body).encode()))


@FUZZ
@given(body=JSON_VALUES)
def test_any_json_value_as_body(http: httpx.Client, body: object) -> None:
    check_answer(post(http, json.dumps(body).encode()))


@FUZZ
@given(body=raw_bodies())
def test_bytes_that_are_not_a_request(http: httpx.Client, body: bytes) -> None:
    check_answer(post(http, body))


# ---------------------------------------------------------------------------------- specific cases

SPECIFIC = [
    (b"", 400, "empty"),
    (b"   \n ", 400, "empty"),
    (b"{not json", 400, "not valid JSON"),
    (b'{"model":"\xff"}', 400, "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    (b'{"model":"deepseek-chat","messages":[{"role":"user","content":"\\ud800"}]}', 400, "surrogate"),
    (b'{"model":"deepseek-chat","messages":[{"role":"user","content":"\xed\xa0\x80"}]}', 400, "surrogate"),
    (b'{"model":"deepseek-chat","temperature":NaN,"messages":[{"role":"user","content":"x"}]}', 400, "NaN"),
    (b'{"model":"deepseek-chat","messages":[]}', 400, "messages"),
    (b'{"model":"deepseek-chat","messages":[{"role":"wizard","content":"x"}]}', 400, "role"),
    (b'{"model":"deepseek-chat","messages":[{"role":"user","content":""}]}', 400, "text"),
    (b'{"model":"deepseek-chat","messages":"hello"}', 400, "messages"),
    (b'{"model":"deepseek-chat"}', 400, "messages"),
    (b'{"messages":[{"role":"user","content":"x"}]}', 400, "model"),
    (b'[{"model":"deepseek-chat"}]', 400, "object"),
]


@pytest.mark.parametrize("body,status,words", SPECIFIC, ids=[w for _, _, w in SPECIFIC])
def test_specific_bad_bodies(http: httpx.Client, body: bytes, status: int, words: str) -> None:
    response = post(http, body)
    check_answer(response)
    assert response.status_code == status
    error = response.json()["error"]
    assert words.lower() in f"{error['message']} {error['param']}".lower(), error  # says what was wrong


def test_ten_megabyte_bodies(http: httpx.Client) -> None:
    # Just under the default limit: parsed, and refused for what it is (too long for DeepSeek), not for its size.
    filler = "y" * (TEN_MB - 200)
    body = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": filler}]}).encode()
    assert len(body) <= TEN_MB
    response = post(http, body)
    check_answer(response)
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
    # 10 MB of non-JSON: a 400 that says so.
    response = post(http, b"z" * (TEN_MB - 10))
    check_answer(response)
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    # Over the limit, announced by Content-Length: 413 before the body is read.
    response = post(http, b"{" + b" " * TEN_MB + b"}")
    check_answer(response)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

    # Over the limit without Content-Length (chunked): 413 once the limit is crossed.
    def chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(11):
            yield b" " * (1024 * 1024)
        yield b"}"

    response = http.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    check_answer(response)
    assert response.status_code == 413


def test_body_limit_is_configurable() -> None:
    with running_stack(accounts=1, server={"max_body_bytes": 1000}) as small:
        with httpx.Client(base_url=small.base_url, headers={"authorization": f"Bearer {API_KEY}"}) as client:
            ok = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "short"}]}
            assert post(client, json.dumps(ok).encode()).status_code == 200
            big = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "x" * 1000}]}
            response = post(client, json.dumps(big).encode())
            check_answer(response)
            assert response.status_code == 413 and "1000 bytes" in response.json()["error"]["message"]
