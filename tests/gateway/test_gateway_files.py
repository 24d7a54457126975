"""Files end to end: images, documents and long histories through the gateway into the simulator's
file endpoints, with the real openai SDK. After every test: leases back, nothing in flight, no
concurrency violation upstream, and no file left upstream (files go with their deleted session)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import pytest

from files_support import (
    LIMITED_SIM,
    SMALL_INLINE,
    create,
    data_url,
    files_stack,
    pdf_bytes,
    png_bytes,
)


def image_message(text: str, image: bytes) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text},
                                        {"type": "image_url", "image_url": {"url": data_url("image/png", image)}}]}


def test_an_image_turn_is_uploaded_for_vision_and_the_model_describes_it() -> None:
    image = png_bytes()
    with files_stack(accounts=1) as stack:
        reply = create(stack.openai(), model="deepseek-chat",
                                                       messages=[image_message("What is in this picture?", image)])
        answer = reply.choices[0].message.content or ""
        assert f"I see an image of {len(image)} bytes (PNG)" in answer
        stats = stack.sim_stats()
        assert stats["files"]["uploads"] == 1


def test_a_streamed_image_turn_runs_in_vision_mode() -> None:
    image = png_bytes(16, 4)
    with files_stack(accounts=1) as stack:
        stream = create(stack.openai(), model="deepseek-chat", stream=True,
                                                        messages=[image_message("Describe it.", image)])
        answer = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert f"I see an image of {len(image)} bytes" in answer


def test_images_need_a_vision_model_when_auto_vision_is_off() -> None:
    image = png_bytes()
    with files_stack(accounts=1, files={"auto_vision": False}) as stack:
        client = stack.openai()
        with pytest.raises(openai.BadRequestError) as refused:
            create(client, model="deepseek-chat", messages=[image_message("What is it?", image)])
        assert "deepseek-vision" in refused.value.message
        reply = create(client, model="deepseek-vision", messages=[image_message("What?", image)])
        assert f"I see an image of {len(image)} bytes" in (reply.choices[0].message.content or "")


def test_a_pdf_file_part_is_read_and_its_markers_echoed() -> None:
    pdf = pdf_bytes("Quarterly figures MARKER-pdf-7731 end")
    with files_stack(accounts=1) as stack:
        reply = create(stack.openai(), model="deepseek-chat", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Summarise the report."},
            {"type": "file", "file": {"file_data": data_url("application/pdf", pdf), "filename": "report.pdf"}},
        ]}])
        answer = reply.choices[0].message.content or ""
        assert 'I read the PDF "report.pdf"' in answer and "MARKER-pdf-7731" in answer
        assert reply.usage is not None and reply.usage.prompt_tokens > 0


def test_a_bare_base64_text_file_counts_in_the_usage() -> None:
    text = ("A plain notes file. MARKER-notes-1 " * 200).encode()
    with files_stack(accounts=1) as stack:
        client = stack.openai()
        plain = create(client, model="deepseek-chat",
                                               messages=[{"role": "user", "content": "Read the notes."}])
        reply = create(client, model="deepseek-chat", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Read the notes."},
            {"type": "file", "file": {"file_data": base64.b64encode(text).decode(), "filename": "notes.txt"}},
        ]}])
        assert "MARKER-notes-1" in (reply.choices[0].message.content or "")
        assert plain.usage is not None and reply.usage is not None
        assert reply.usage.prompt_tokens > plain.usage.prompt_tokens + 400  # the file's text is counted


def agent_history(chars: int) -> list[dict[str, Any]]:
    """A coding agent's conversation: system prompt, task, then tool calls and their (long) results."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent. Use the tools to inspect the repository."},
        {"role": "user", "content": "Find where the retry policy is configured. MARKER-task"},
    ]
    body = "def handler(request):\n    return retry(request, attempts=3)  # policy\n" * 40
    i = 0
    while sum(len(str(m.get("content") or "")) for m in messages) < chars:
        call_id = f"call_{i:04d}"
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "read_file", "arguments": f'{{"path": "src/module_{i}.py"}}'}}]})
        messages.append({"role": "tool", "tool_call_id": call_id,
                         "content": f"# src/module_{i}.py MARKER-turn-{i % 60:03d}\n{body}"})
        i += 1
    messages.append({"role": "user", "content": "So which file holds the retry policy? Answer briefly."})
    return messages


TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a file of the repository.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]


def test_a_150k_character_agent_history_with_tools_succeeds_through_the_history_file() -> None:
    messages = agent_history(150_000)
    with files_stack(accounts=2, sim=LIMITED_SIM, upstream=SMALL_INLINE) as stack:
        reply = create(stack.openai(), model="deepseek-chat", messages=messages, tools=TOOLS)
        answer = reply.choices[0].message.content or ""
        assert 'I read the file "conversation_history.txt"' in answer
        assert "MARKER-task" in answer  # the earliest turn is in the file …
        results = [str(m["content"]).split()[2] for m in messages if m["role"] == "tool"]
        assert results[-2] in answer  # … and so is the latest exchange before the live turn,
        assert answer.startswith("The tool") and results[-1] in answer  # while the live tool result stays inline
        assert reply.usage is not None and reply.usage.prompt_tokens > 30_000  # the attached text counts


def test_the_same_history_without_the_file_route_is_too_long_for_the_web_chat() -> None:
    messages = agent_history(150_000)
    with files_stack(accounts=1, sim=LIMITED_SIM, upstream=SMALL_INLINE, files={"history_as_file": False}) as stack:
        with pytest.raises(openai.BadRequestError) as refused:
            create(stack.openai(), model="deepseek-chat", messages=messages, tools=TOOLS)
        assert refused.value.code == "context_length_exceeded"


def test_a_live_message_too_long_even_for_the_file_route_is_context_length_exceeded() -> None:
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
                {"role": "user", "content": "Review this: " + "word " * 14_000}]
    with files_stack(accounts=1, sim=LIMITED_SIM, upstream=SMALL_INLINE) as stack:
        with pytest.raises(openai.BadRequestError) as refused:
            create(stack.openai(), model="deepseek-chat", messages=messages)
        assert refused.value.code == "context_length_exceeded"
        assert refused.value.param == "messages"


@pytest.mark.parametrize("stream", [False, True])
def test_an_image_over_files_max_bytes_is_413_naming_the_part(stream: bool) -> None:
    image = png_bytes(64, 64) + bytes(4000)
    with files_stack(accounts=1, files={"max_bytes": 2000}) as stack:
        with pytest.raises(openai.APIStatusError) as refused:  # a stream too: refused before its first byte
            create(stack.openai(), model="deepseek-chat", stream=stream, messages=[
                {"role": "user", "content": "hi"}, image_message("Look", image)])
        assert refused.value.status_code == 413
        assert refused.value.body["param"] == "messages[1].content[1].image_url"  # type: ignore[index]
        assert stack.sim_stats()["files"]["uploads"] == 0


@pytest.mark.parametrize(("part", "param"), [
    ({"type": "file", "file": {"file_data": data_url("application/zip", b"PK\x03\x04zipzip"), "filename": "a.zip"}},
     "messages[0].content[1].file"),
    ({"type": "image_url", "image_url": {"url": data_url("image/png", b"not a png at all")}},
     "messages[0].content[1].image_url"),
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
     "messages[0].content[1].image_url"),
])
def test_an_unsupported_or_unfetchable_part_is_400_naming_it(part: dict[str, Any], param: str) -> None:
    with files_stack(accounts=1) as stack:
        with pytest.raises(openai.BadRequestError) as refused:
            create(stack.openai(), model="deepseek-chat", messages=[
                {"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}])
        assert refused.value.param == param
        assert stack.sim_stats()["files"]["uploads"] == 0


def test_a_file_the_web_chat_fails_to_parse_is_a_clear_400() -> None:
    with files_stack(accounts=2, leftover=1) as stack:
        with pytest.raises(openai.BadRequestError) as refused:
            create(stack.openai(), model="deepseek-chat", messages=[{"role": "user", "content": [
                {"type": "text", "text": "Read this."},
                {"type": "file", "file": {"file_data": "data:text/plain;base64,", "filename": "empty.txt"}},
            ]}])
        assert refused.value.code == "file_parse_failed"
        assert "CONTENT_EMPTY" in refused.value.message
        assert stack.sim_stats()["files"]["uploads"] == 1  # a file fault is not carried to another account


def test_an_upload_refused_for_account_reasons_is_retried_on_another_account() -> None:
    pdf = pdf_bytes("MARKER-failover-1")
    with files_stack(accounts=2, pool={"max_failover": 3}) as stack:
        for user in ("user1@sim.test", "user2@sim.test"):
            httpx.post(f"{stack.simulator.base_url}/_sim/faults", timeout=10,
                       json={"account": user, "fault": "rate_limit", "on": "upload_file"}).raise_for_status()
        with pytest.raises(openai.APIStatusError) as failed:  # both accounts refuse the upload
            create(stack.openai(), model="deepseek-chat", messages=[{"role": "user", "content": [
                {"type": "text", "text": "Read it."},
                {"type": "file", "file": {"file_data": data_url("application/pdf", pdf), "filename": "a.pdf"}}]}])
        assert failed.value.status_code in (429, 503)
        assert stack.sim_stats()["faults"]["rate_limit"] == 2
    with files_stack(accounts=2) as stack:
        httpx.post(f"{stack.simulator.base_url}/_sim/faults", timeout=10,
                   json={"account": "user1@sim.test", "fault": "busy", "on": "upload_file"}).raise_for_status()
        client = stack.openai()
        for i in range(2):  # whichever account the pool picks first, user1 is tried within two turns
            reply = create(client, model="deepseek-chat", messages=[{"role": "user", "content": [
                {"type": "text", "text": f"Read it ({i})."},
                {"type": "file", "file": {"file_data": data_url("application/pdf", pdf), "filename": "a.pdf"}}]}])
            assert "MARKER-failover-1" in (reply.choices[0].message.content or "")
        stats = stack.sim_stats()
        assert stats["faults"]["busy"] == 1  # one upload refused, and that turn still succeeded
        assert stats["files"]["uploads"] == 2


def test_vision_unavailable_upstream_is_a_clear_503_not_a_silent_drop() -> None:
    image = png_bytes()
    with files_stack(accounts=2, sim={"vision_available": False}, leftover=1) as stack:
        with pytest.raises(openai.InternalServerError) as failed:
            create(stack.openai(), model="deepseek-chat", messages=[image_message("What?", image)])
        assert failed.value.status_code == 503 and failed.value.code == "vision_unavailable"
        assert "vision is not available" in failed.value.message
        assert stack.sim_stats()["files"]["uploads"] == 1  # not carried to the other account


def test_a_token_rejected_during_upload_means_one_relogin_on_the_same_account() -> None:
    pdf = pdf_bytes("MARKER-relogin-5")
    with files_stack(accounts=1) as stack:
        client = stack.openai()
        create(client, model="deepseek-chat", messages=[{"role": "user", "content": "warm up"}])
        logins = stack.sim_stats()["logins"]
        httpx.post(f"{stack.simulator.base_url}/_sim/faults", timeout=10,
                   json={"account": "user1@sim.test", "fault": "token_expired", "on": "upload_file"}).raise_for_status()
        reply = create(client, model="deepseek-chat", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Read it."},
            {"type": "file", "file": {"file_data": data_url("application/pdf", pdf), "filename": "a.pdf"}}]}])
        assert "MARKER-relogin-5" in (reply.choices[0].message.content or "")
        assert stack.sim_stats()["logins"] == logins + 1
