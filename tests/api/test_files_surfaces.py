"""Files on the Anthropic Messages and OpenAI Responses surfaces, through the real SDKs: images and
documents become uploads (the same chat/attachments.py converter as the chat surface), a long agent
history goes through the history file, and bad blocks are 4xx errors in each surface's own envelope."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import anthropic
import openai
import pytest

from anthropic_support import client as claude_client
from files_support import (
    LIMITED_SIM,
    SMALL_INLINE,
    files_stack,
    pdf_bytes,
    png_bytes,
)
from gateway_support import Stack


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def zip_bytes() -> bytes:
    """A real ZIP archive (binary: not an image, not a PDF, not UTF-8 text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.bin", bytes(range(256)) * 8)
    return buffer.getvalue()


def claude(stack: Stack, **body: Any) -> Any:
    body.setdefault("model", "claude-haiku-4-5")
    body.setdefault("max_tokens", 512)
    return claude_client(stack).messages.create(**body)


def claude_text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def responses(stack: Stack, **body: Any) -> Any:
    return stack.openai().responses.create(**body)


# ------------------------------------------------------------------------------------------ Anthropic


def test_anthropic_base64_image_block_is_seen_in_vision_mode() -> None:
    image = png_bytes()
    with files_stack(accounts=1) as stack:
        reply = claude(stack, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(image)}},
            {"type": "text", "text": "What is in the picture?"}]}])
        assert f"I see an image of {len(image)} bytes (PNG)" in claude_text(reply)


def test_anthropic_pdf_and_text_documents_are_read() -> None:
    pdf = pdf_bytes("MARKER-claude-pdf-1")
    with files_stack(accounts=1) as stack:
        reply = claude(stack, messages=[{"role": "user", "content": [
            {"type": "document", "title": "spec.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)}},
            {"type": "document", "title": "notes",
             "source": {"type": "text", "media_type": "text/plain", "data": "plain notes MARKER-claude-text-2"}},
            {"type": "text", "text": "Compare them."}]}])
        text = claude_text(reply)
        assert 'I read the PDF "spec.pdf"' in text and "MARKER-claude-pdf-1" in text
        assert "MARKER-claude-text-2" in text


def test_anthropic_image_in_a_tool_result_is_uploaded_too() -> None:
    image = png_bytes(12, 12)
    with files_stack(accounts=1) as stack:
        reply = claude(stack, tools=[{"name": "screenshot", "description": "Take a screenshot.",
                                      "input_schema": {"type": "object", "properties": {}}}],
                       messages=[
                           {"role": "user", "content": "Take a screenshot."},
                           {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "screenshot",
                                                              "input": {}}]},
                           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                               {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                            "data": b64(image)}}]}]}])
        assert f"I see an image of {len(image)} bytes" in claude_text(reply)


def test_anthropic_bad_blocks_are_errors_in_anthropics_envelope() -> None:
    with files_stack(accounts=1, files={"max_bytes": 2000}) as stack:
        with pytest.raises(anthropic.BadRequestError) as bad:
            claude(stack, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(b"not an image at all")}},
                {"type": "text", "text": "hi"}]}])
        assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert "messages.0.content.0.source" in bad.value.message
        with pytest.raises(anthropic.APIStatusError) as large:
            claude(stack, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": b64(png_bytes() + bytes(5000))}},
                {"type": "text", "text": "hi"}]}])
        assert large.value.status_code == 413
        with pytest.raises(anthropic.BadRequestError) as remote:
            claude(stack, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "hi"}]}])
        assert "fetch_remote" in remote.value.message
        assert stack.sim_stats()["files"]["uploads"] == 0


def test_anthropic_long_agent_history_goes_through_the_file_and_too_long_says_prompt_is_too_long() -> None:
    turns: list[dict[str, Any]] = [{"role": "user", "content": "Find the retry policy. MARKER-claude-task"}]
    for i in range(45):
        turns.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{i}", "name": "read_file", "input": {"path": f"src/m{i}.py"}}]})
        turns.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}",
                                                   "content": f"# m{i} MARKER-claude-{i:02d}\n" + "x = 1\n" * 500}]})
    turns.append({"role": "assistant", "content": "Reading done."})
    turns.append({"role": "user", "content": "Which module was it?"})  # no tool-name word: the demo would call it
    tools = [{"name": "read_file", "description": "Read a file.",
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
    with files_stack(accounts=1, sim=LIMITED_SIM, upstream=SMALL_INLINE) as stack:
        reply = claude(stack, system="You are a coding agent.", tools=tools, messages=turns)
        text = claude_text(reply)
        assert 'I read the file "conversation_history.txt"' in text and "MARKER-claude-44" in text
        with pytest.raises(anthropic.BadRequestError) as too_long:
            claude(stack, messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                    {"role": "user", "content": "review: " + "word " * 14_000}])
        assert "prompt is too long" in too_long.value.message


# ------------------------------------------------------------------------------------------ Responses


def test_responses_input_image_and_input_file_are_uploaded() -> None:
    image, pdf = png_bytes(), pdf_bytes("MARKER-resp-pdf-3")
    with files_stack(accounts=1) as stack:
        response = responses(stack, model="deepseek-chat", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "Describe both."},
            {"type": "input_image", "image_url": f"data:image/png;base64,{b64(image)}"},
            {"type": "input_file", "filename": "report.pdf", "file_data": f"data:application/pdf;base64,{b64(pdf)}"},
        ]}])
        assert f"I see an image of {len(image)} bytes" in response.output_text
        assert "MARKER-resp-pdf-3" in response.output_text


def test_responses_image_of_an_earlier_response_is_sent_again_with_the_chain() -> None:
    image = png_bytes(4, 4)
    with files_stack(accounts=1) as stack:
        first = responses(stack, model="deepseek-chat", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "Look."},
            {"type": "input_image", "image_url": f"data:image/png;base64,{b64(image)}"}]}])
        second = responses(stack, model="deepseek-chat", previous_response_id=first.id, input="And now?")
        assert f"I see an image of {len(image)} bytes" in second.output_text  # file ids do not outlive a turn


def test_responses_bad_parts_are_400_naming_them() -> None:
    with files_stack(accounts=1) as stack:
        with pytest.raises(openai.BadRequestError) as bad:
            responses(stack, model="deepseek-chat", input=[{"role": "user", "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_file", "filename": "a.zip", "file_data": b64(zip_bytes())}]}])
        assert bad.value.param == "input[0].content[1].file_data"
        with pytest.raises(openai.BadRequestError) as remote:
            responses(stack, model="deepseek-chat", input=[{"role": "user", "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "http://169.254.169.254/latest/meta-data"}]}])
        assert remote.value.param == "input[0].content[1].image_url"
        assert stack.sim_stats()["files"]["uploads"] == 0
