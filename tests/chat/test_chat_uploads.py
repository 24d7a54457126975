"""chat/uploads.py and chat/attachments.from_block: what a turn uploads and sends, decided once per turn,
and the one converter every surface uses for image and document blocks."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek2api.chat.attachments import (
    AttachmentError,
    AttachmentKind,
    AttachmentPolicy,
    AttachmentProblem,
    from_block,
    from_bytes,
)
from deepseek2api.chat.history_file import HISTORY_FILE, PromptTooLong
from deepseek2api.chat.prompt import END_OF_SENTENCE, USER, build_prompt
from deepseek2api.chat.turn import Message, ModelRegistry, Turn
from deepseek2api.chat.uploads import TurnUploads, UploadOptions, split_prompt

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
PDF = b"%PDF-1.7\n(MARKER-doc) Tj\n%%EOF\n"
REGISTRY = ModelRegistry()


def turn(*messages: tuple[str, str], model: str = "deepseek-chat", attachments: tuple = ()) -> Turn:  # type: ignore[type-arg]
    spec = REGISTRY.resolve(model)
    assert spec is not None
    return Turn(request_id="req-1", model=spec, model_name=model,
                messages=tuple(Message(role, text) for role, text in messages), attachments=attachments)


def conversation(rounds: int, filler: str = "lorem ipsum dolor sit amet ") -> Turn:
    messages: list[tuple[str, str]] = [("system", "Be brief.")]
    for i in range(rounds):
        messages += [("user", f"question {i} {filler * 20}"), ("assistant", f"answer {i} {filler * 20}")]
    messages.append(("user", "the live question"))
    return turn(*messages)


def test_split_prompt_cuts_at_the_gateways_markers_and_loses_nothing() -> None:
    t = conversation(3)
    prompt = build_prompt(t)
    parts = split_prompt(t, prompt)
    assert parts.inline == prompt
    assert parts.system == "Be brief."
    assert parts.history.endswith(END_OF_SENTENCE)
    assert parts.live == USER + "the live question"


def test_split_prompt_of_a_first_message_has_no_history() -> None:
    t = turn(("system", "rules"), ("user", "hello"))
    parts = split_prompt(t, build_prompt(t))
    assert (parts.system, parts.history, parts.live) == ("rules", "", USER + "hello")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["system", "developer", "user", "assistant", "tool"]),
                          st.text(max_size=30)), min_size=1, max_size=8))
def test_split_prompt_always_reassembles_the_prompt(messages: list[tuple[str, str]]) -> None:
    t = turn(*messages)
    prompt = build_prompt(t)
    assert split_prompt(t, prompt).inline == prompt


async def test_a_short_turn_is_sent_inline_without_uploads() -> None:
    t = turn(("user", "hi"))
    staged = await TurnUploads().stage(t, build_prompt(t))
    assert (staged.prompt, staged.uploads, staged.model_type, staged.counted_text) == ("hi", (), "default", "hi")


async def test_a_long_history_goes_into_a_file_and_counts_in_the_usage() -> None:
    t = conversation(60)
    prompt = build_prompt(t)
    staged = await TurnUploads(UploadOptions(inline_prompt_limit=2_000)).stage(t, prompt)
    assert [a.filename for a in staged.uploads] == [HISTORY_FILE]
    assert staged.uploads[0].kind is AttachmentKind.TEXT
    assert len(staged.prompt) < 1_000 and staged.prompt.endswith("the live question")
    assert "answer 59" in staged.uploads[0].data.decode() and "answer 59" in staged.counted_text


async def test_without_history_as_file_a_long_prompt_stays_inline_for_upstream_to_judge() -> None:
    t = conversation(60)
    prompt = build_prompt(t)
    staged = await TurnUploads(UploadOptions(inline_prompt_limit=2_000, history_as_file=False)).stage(t, prompt)
    assert staged.prompt == prompt and staged.uploads == ()


async def test_a_live_message_over_the_limit_on_its_own_is_too_long() -> None:
    t = turn(("user", "hi"), ("assistant", "hello"), ("user", "word " * 5_000))
    with pytest.raises(PromptTooLong):
        await TurnUploads(UploadOptions(inline_prompt_limit=1_000)).stage(t, build_prompt(t))


async def test_an_image_switches_any_model_to_vision_when_auto_vision_is_on() -> None:
    image = from_bytes(PNG, "image/png", part="p")
    t = turn(("user", "what is it"), attachments=(image,))
    staged = await TurnUploads().stage(t, build_prompt(t))
    assert staged.model_type == "vision" and staged.uploads == (image,)


async def test_with_auto_vision_off_only_a_vision_model_takes_images() -> None:
    image = from_bytes(PNG, "image/png", part="p")
    uploads = TurnUploads(UploadOptions(auto_vision=False))
    t = turn(("user", "what is it"), attachments=(image,))
    with pytest.raises(AttachmentError) as refused:
        await uploads.stage(t, build_prompt(t))
    assert refused.value.status == 400 and "deepseek-vision" in str(refused.value)
    vision = turn(("user", "what is it"), model="deepseek-vision", attachments=(image,))
    assert (await uploads.stage(vision, build_prompt(vision))).model_type == "vision"


async def test_history_files_count_against_max_files() -> None:
    doc = from_bytes(PDF, "application/pdf", part="p")
    t = conversation(60)
    t = dataclasses.replace(t, attachments=(doc,))
    with pytest.raises(AttachmentError) as refused:
        await TurnUploads(UploadOptions(inline_prompt_limit=2_000, max_files=1)).stage(t, build_prompt(t))
    assert refused.value.problem is AttachmentProblem.TOO_MANY


async def test_a_file_sent_without_words_still_gets_a_prompt() -> None:
    doc = from_bytes(PDF, "application/pdf", part="p")
    t = turn(("user", ""), attachments=(doc,))
    staged = await TurnUploads().stage(t, build_prompt(t))
    assert staged.prompt.strip() and staged.uploads == (doc,)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_from_block_takes_base64_images_and_documents() -> None:
    image = await from_block("image", part="content[0]", media_type="image/png", data=b64(PNG))
    assert image.kind is AttachmentKind.IMAGE
    doc = await from_block("document", part="content[1]", media_type="application/pdf", data=b64(PDF))
    assert doc.kind is AttachmentKind.DOCUMENT and doc.filename == "document-1.pdf"
    named = await from_block("document", part="content[2]", data=b64(b"a,b\n1,2\n"), filename="table.csv")
    assert named.kind is AttachmentKind.TEXT and named.media_type == "text/csv"


async def test_from_block_takes_text_documents_and_data_urls() -> None:
    text = await from_block("document", part="d", text="plain words", filename="notes")
    assert text.data == b"plain words" and text.filename == "notes.txt"
    via_url = await from_block("document", part="d", url=f"data:application/pdf;base64,{b64(PDF)}")
    assert via_url.kind is AttachmentKind.DOCUMENT


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"kind": "image", "media_type": "application/pdf", "data": b64(PDF)}, AttachmentProblem.UNSUPPORTED),
    ({"kind": "image", "url": "https://example.com/a.png"}, AttachmentProblem.REMOTE_DISABLED),
    ({"kind": "document", "url": "https://example.com/a.pdf"}, AttachmentProblem.REMOTE_DISABLED),
    ({"kind": "document", "data": b64(PDF), "text": "x"}, AttachmentProblem.INVALID),
    ({"kind": "document"}, AttachmentProblem.INVALID),
    ({"kind": "image", "media_type": "image/png", "data": b64(PNG * 100)}, AttachmentProblem.TOO_LARGE),
])
async def test_from_block_refuses_with_the_part_named(kwargs: dict[str, Any], problem: AttachmentProblem) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(AttachmentError) as refused:
        await from_block(kind, part="messages[0].content[3]", policy=AttachmentPolicy(max_bytes=2_000),
                         **kwargs)
    assert refused.value.problem is problem
    assert refused.value.part == "messages[0].content[3]"
    assert refused.value.status == (413 if problem is AttachmentProblem.TOO_LARGE else 400)


def test_the_tool_catalog_is_found_where_the_tool_prompt_puts_it() -> None:
    from deepseek2api.chat.tools.prompt import tools_prompt
    from deepseek2api.chat.tools.spec import ToolSpec
    from deepseek2api.chat.uploads import _TOOLS_HEADING

    spec = ToolSpec(name="read_file", description="Read a file.",
                    parameters={"type": "object", "properties": {"path": {"type": "string"}}})
    catalog = tools_prompt([spec])
    assert catalog is not None and catalog.startswith(_TOOLS_HEADING)
    prompt = "Be brief.\n\n" + catalog + USER + "q" + "<｜Assistant｜>a" + END_OF_SENTENCE + USER + "live"
    t = dataclasses.replace(turn(("system", "Be brief."), ("user", "q"), ("assistant", "a"), ("user", "live")),
                            tools=(spec,))
    parts = split_prompt(t, prompt)
    assert (parts.system, parts.tools) == ("Be brief.\n\n", catalog)
    assert parts.inline == prompt and parts.live == USER + "live"
