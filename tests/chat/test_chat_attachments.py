"""chat/attachments.py: data URLs and base64 blocks become checked attachments; bad ones are refused
with the right status and the part named; prepare_attachments uploads them through the simulator."""

from __future__ import annotations

import base64

import pytest

from client_support import client, collect, content_of, fresh_sim, login
from deepseek2api.chat.attachments import (
    AttachmentError,
    AttachmentKind,
    AttachmentProblem,
    check_count,
    decode_base64,
    from_base64,
    from_bytes,
    from_data_url,
    from_text,
    needs_vision,
    prepare_attachments,
    safe_filename,
)
from deepseek2api.chat.turn import ModelRegistry

__all__ = ["client", "fresh_sim"]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)
PDF = b"%PDF-1.7\n(MARKER:pdf-doc) Tj\n%%EOF\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_png_data_url_becomes_an_image_attachment():
    attachment = from_data_url(f"data:image/png;base64,{b64(PNG)}", part="messages[0].content[1]")
    assert attachment.kind is AttachmentKind.IMAGE
    assert attachment.media_type == "image/png" and attachment.data == PNG
    assert attachment.filename == "image-1.png"
    assert attachment.upload().vision


def test_the_media_type_comes_from_the_bytes_when_the_client_is_vague():
    attachment = from_base64(b64(JPEG), "application/octet-stream", part="p", index=3)
    assert (attachment.kind, attachment.media_type, attachment.filename) == (AttachmentKind.IMAGE, "image/jpeg",
                                                                             "image-3.jpg")
    assert from_base64(b64(JPEG), "image/jpg", part="p").media_type == "image/jpeg"


def test_a_pdf_block_becomes_a_document_and_text_stays_text():
    pdf = from_base64(b64(PDF), "application/pdf", part="messages[0].content[0]", filename="report.pdf")
    assert (pdf.kind, pdf.filename, pdf.upload().vision) == (AttachmentKind.DOCUMENT, "report.pdf", False)
    text = from_data_url("data:text/plain,hello%20world", part="p")
    assert (text.kind, text.data) == (AttachmentKind.TEXT, b"hello world")
    doc = from_text("notes", part="p", filename="notes.md", media_type="text/markdown")
    assert (doc.kind, doc.filename, doc.media_type) == (AttachmentKind.TEXT, "notes.md", "text/markdown")


def test_whitespace_and_url_safe_base64_decode():
    wrapped = "\n".join(b64(PNG)[i:i + 20] for i in range(0, len(b64(PNG)), 20))
    assert decode_base64(wrapped, part="p") == PNG
    assert decode_base64(base64.urlsafe_b64encode(b"\xfb\xff" * 10).decode().rstrip("="), part="p") == b"\xfb\xff" * 10


def test_an_oversized_file_is_413_before_any_decoding():
    huge = "A" * 4_000_000  # would decode to 3 MB
    with pytest.raises(AttachmentError) as caught:
        from_data_url(f"data:image/png;base64,{huge}", part="messages[1].content[0]", max_bytes=1_000_000)
    assert caught.value.status == 413 and caught.value.problem is AttachmentProblem.TOO_LARGE
    assert str(caught.value).startswith("messages[1].content[0]: ")


@pytest.mark.parametrize(("data", "media_type", "words"), [
    (b"MZ\x90\x00binary", "application/x-msdownload", "unsupported file type application/x-msdownload"),
    (b"just text", "image/png", "not a PNG, JPEG, GIF or WEBP image"),
    (PNG, "application/pdf", "not one"),
    (b"\xff\xfe\x00bad", "text/plain", "not UTF-8"),
])
def test_unsupported_or_mislabelled_data_is_400_naming_the_part(data, media_type, words):
    with pytest.raises(AttachmentError) as caught:
        from_base64(b64(data), media_type, part="messages[2].content[3]")
    assert caught.value.status == 400 and caught.value.problem is AttachmentProblem.UNSUPPORTED
    assert "messages[2].content[3]" in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("url", ["data:image/png;base64", "https://example.com/x.png", "data:image/png;base64,@@@@"])
def test_malformed_data_urls_are_400(url):
    with pytest.raises(AttachmentError) as caught:
        from_data_url(url, part="input[0]")
    assert caught.value.status == 400 and caught.value.problem is AttachmentProblem.INVALID


def test_file_names_lose_directories_and_odd_characters():
    assert safe_filename("../../etc/passwd", default_stem="file-1", extension="txt") == "passwd.txt"
    assert safe_filename('a"b\r\n.png', default_stem="image-1", extension="png") == "a_b__.png"
    assert safe_filename(None, default_stem="image-2", extension="gif") == "image-2.gif"
    assert len(safe_filename("x" * 300 + ".pdf", default_stem="d", extension="pdf")) == 100


def test_too_many_files_is_400_and_images_ask_for_vision():
    items = [from_bytes(PNG, "image/png", part="p"), from_bytes(PDF, "application/pdf", part="p")]
    assert needs_vision(items) and not needs_vision(items[1:])
    with pytest.raises(AttachmentError) as caught:
        check_count(items, 1)
    assert caught.value.problem is AttachmentProblem.TOO_MANY and caught.value.status == 400


def test_the_registry_has_a_vision_model():
    spec = ModelRegistry().resolve("deepseek-vision")
    assert spec is not None and spec.model_type == "vision"


async def test_prepare_attachments_uploads_and_returns_ids_the_completion_can_use(client):
    token = await login(client)
    attachments = [from_bytes(PDF, "application/pdf", part="p", filename="report.pdf"),
                   from_bytes(PNG, "image/png", part="p")]
    ids = await prepare_attachments(client, token, None, attachments)
    assert len(ids) == 2
    session_id, header = await client.prepare_completion(token)
    events = await collect(client.completion(token, session_id=session_id, prompt="what is this?", pow_header=header,
                                             thinking=False, search=False, model_type="vision", ref_file_ids=ids))
    text = content_of(events)
    assert 'I read the PDF "report.pdf"' in text and "MARKER:pdf-doc" in text
    assert f"I see an image of {len(PNG)} bytes (PNG)" in text
    assert await prepare_attachments(client, token, None, []) == []
