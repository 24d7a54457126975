"""Attachments of a chat turn (images, documents, text files): checked values ready to upload.

Every surface turns its own parts (OpenAI `image_url` / `file`, Anthropic `image` / `document`,
Responses `input_image` / `input_file`) into `Attachment`s with the functions here, so the checks
are the same everywhere: the size cap is applied BEFORE decoding base64 (a 100 MB data URL costs
nothing to refuse), the type is taken from the bytes, not from what the client declared (a "PNG"
that is not one is refused rather than sent upstream), and every error names the part it is about
and carries its HTTP status (413 for size, 400 for the rest). `prepare_attachments` is what the
runner calls once it holds an account: upload, wait until parsed, ids for `ref_file_ids`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..deepseek.files import FileUpload, PollPolicy, upload_and_wait

if TYPE_CHECKING:
    from ..deepseek.client import DeepSeekClient
    from ..settings import Settings

DEFAULT_MAX_BYTES = 7 * 1024 * 1024  # settings.files.max_bytes

IMAGE_TYPES: dict[str, str] = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
DOCUMENT_TYPES: dict[str, str] = {"application/pdf": "pdf"}
TEXT_TYPES: dict[str, str] = {
    "text/plain": "txt", "text/markdown": "md", "text/csv": "csv", "text/html": "html", "text/xml": "xml",
    "application/json": "json", "application/xml": "xml", "text/x-python": "py", "application/x-yaml": "yaml",
    "text/yaml": "yaml", "application/yaml": "yaml",
}
_MEDIA_ALIASES = {"image/jpg": "image/jpeg", "text/x-markdown": "text/markdown", "application/x-pdf": "application/pdf"}
_NAME_CHARS = re.compile(r"[^\w.\- ()+@,]", re.UNICODE)
_MAX_NAME = 100


class AttachmentKind(str, enum.Enum):
    IMAGE = "image"  # uploaded for vision mode
    DOCUMENT = "document"  # PDF: DeepSeek extracts its text
    TEXT = "text"  # UTF-8 text (also the history files of chat/history_file.py)


class AttachmentProblem(str, enum.Enum):
    """Why an attachment was refused; `status` is the HTTP status the surface answers with."""

    TOO_LARGE = "too_large"
    TOO_MANY = "too_many"
    UNSUPPORTED = "unsupported"
    INVALID = "invalid"  # a malformed data URL or base64 block
    REMOTE_DISABLED = "remote_disabled"  # an http(s) URL while files.fetch_remote is off
    REMOTE_REFUSED = "remote_refused"  # private address, redirect, not an image …
    REMOTE_FAILED = "remote_failed"  # the remote server did not deliver (timeout, error status …)

    @property
    def status(self) -> int:
        return 413 if self is AttachmentProblem.TOO_LARGE else 400


class AttachmentError(ValueError):
    """A refused attachment. `part` names it the way the client wrote it (e.g. `messages[2].content[1]`)."""

    def __init__(self, problem: AttachmentProblem, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}" if part else message)
        self.problem = problem
        self.part = part
        self.message = message

    @property
    def status(self) -> int:
        return self.problem.status


@dataclass(frozen=True, slots=True)
class Attachment:
    """One checked file: `data` is the decoded bytes and `media_type` matches them."""

    kind: AttachmentKind
    filename: str
    media_type: str
    data: bytes

    def upload(self) -> FileUpload:
        """The upstream upload (images go in vision mode)."""
        return FileUpload(self.filename, self.media_type, self.data, vision=self.kind is AttachmentKind.IMAGE)


def sniff_media_type(data: bytes) -> str | None:
    """The image or PDF type the bytes really are; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def normalize_media_type(value: str | None) -> str:
    """`Image/JPG; charset=x` → `image/jpeg`; "" for nothing."""
    base = (value or "").split(";", 1)[0].strip().lower()
    return _MEDIA_ALIASES.get(base, base)


def safe_filename(name: str | None, *, default_stem: str, extension: str) -> str:
    """A plain file name: no directories or odd characters, bounded, with a fitting extension."""
    stem = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = _NAME_CHARS.sub("_", stem).strip(" ._") or default_stem
    if "." not in stem:
        stem = f"{stem}.{extension}"
    if len(stem) > _MAX_NAME:
        head, _, ext = stem.rpartition(".")
        stem = f"{head[: _MAX_NAME - len(ext) - 1]}.{ext}"
    return stem


def _too_large(part: str, size: int, max_bytes: int) -> AttachmentError:
    return AttachmentError(AttachmentProblem.TOO_LARGE, part,
                           f"file of {size} bytes is over the limit of {max_bytes} bytes")


def decode_base64(text: str, *, part: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Decode standard or URL-safe base64 (whitespace allowed); too large → 413 before any decoding."""
    if len(text) > 2 * (max_bytes * 4 // 3 + 4):  # over the cap even if half of it were whitespace
        raise _too_large(part, len(text) * 3 // 4, max_bytes)
    compact = "".join(text.split())
    estimate = len(compact) * 3 // 4 - compact[-2:].count("=")
    if estimate > max_bytes:
        raise _too_large(part, estimate, max_bytes)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError(AttachmentProblem.INVALID, part, "is not valid base64") from None


def from_bytes(data: bytes, media_type: str | None, *, part: str, filename: str | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, index: int = 1) -> Attachment:
    """Check decoded bytes and their declared type → an Attachment (see the module doc)."""
    if len(data) > max_bytes:
        raise _too_large(part, len(data), max_bytes)
    declared = normalize_media_type(media_type)
    sniffed = sniff_media_type(data)
    if declared in IMAGE_TYPES or (sniffed in IMAGE_TYPES and declared in ("", "application/octet-stream")):
        if sniffed is None or sniffed not in IMAGE_TYPES:
            raise AttachmentError(
                AttachmentProblem.UNSUPPORTED, part,
                f"declared {declared or 'an image'} but the data is not a PNG, JPEG, GIF or WEBP image",
            )
        name = safe_filename(filename, default_stem=f"image-{index}", extension=IMAGE_TYPES[sniffed])
        return Attachment(AttachmentKind.IMAGE, name, sniffed, data)
    if declared in DOCUMENT_TYPES or (sniffed in DOCUMENT_TYPES and declared in ("", "application/octet-stream")):
        if sniffed != "application/pdf":
            raise AttachmentError(AttachmentProblem.UNSUPPORTED, part, "declared a PDF but the data is not one")
        name = safe_filename(filename, default_stem=f"document-{index}", extension="pdf")
        return Attachment(AttachmentKind.DOCUMENT, name, "application/pdf", data)
    if declared in TEXT_TYPES or (declared == "" and sniffed is None):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise AttachmentError(AttachmentProblem.UNSUPPORTED, part, "text file is not UTF-8") from None
        media = declared or "text/plain"
        name = safe_filename(filename, default_stem=f"file-{index}", extension=TEXT_TYPES[media])
        return Attachment(AttachmentKind.TEXT, name, media, data)
    shown = declared or "this kind of file"
    raise AttachmentError(AttachmentProblem.UNSUPPORTED, part,
                          f"unsupported file type {shown} (images: PNG, JPEG, GIF, WEBP; documents: PDF; UTF-8 text)")


def from_base64(data: str, media_type: str | None, *, part: str, filename: str | None = None,
                max_bytes: int = DEFAULT_MAX_BYTES, index: int = 1) -> Attachment:
    """An Anthropic `{"type":"base64","media_type","data"}` source (or any base64 block)."""
    if not isinstance(data, str) or not data:
        raise AttachmentError(AttachmentProblem.INVALID, part, "base64 data is missing")
    raw = decode_base64(data, part=part, max_bytes=max_bytes)
    return from_bytes(raw, media_type, part=part, filename=filename, max_bytes=max_bytes, index=index)


_HEX_VALUE = np.full(256, -1, dtype=np.int16)
for _digit in b"0123456789abcdefABCDEF":
    _HEX_VALUE[_digit] = int(chr(_digit), 16)


def percent_decode(text: str) -> bytes:
    """`urllib.parse.unquote_to_bytes`, vectorised: a %XX with two hex digits is its byte, anything else
    (a lone "%" too) stays as it is. The standard function took ~9 s for a 9 MB payload and held the
    GIL in 0.7 s pieces; this takes ~50 ms in a few short numpy steps."""
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    marks = np.flatnonzero(raw[:-2] == 0x25) if len(raw) > 2 else np.empty(0, dtype=np.intp)
    if not len(marks):
        return raw.tobytes()
    high, low = _HEX_VALUE[raw[marks + 1]], _HEX_VALUE[raw[marks + 2]]
    valid = (high >= 0) & (low >= 0)
    marks = marks[valid]
    out = raw.copy()
    out[marks] = (high[valid] * 16 + low[valid]).astype(np.uint8)
    keep = np.ones(len(raw), dtype=bool)
    keep[marks + 1] = False
    keep[marks + 2] = False
    return out[keep].tobytes()


def from_data_url(url: str, *, part: str, filename: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                  index: int = 1) -> Attachment:
    """`data:[media type][;param…][;base64],payload` (RFC 2397) → an Attachment."""
    if not isinstance(url, str) or not url[:5].lower() == "data:":
        raise AttachmentError(AttachmentProblem.INVALID, part, "expected a data: URL")
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise AttachmentError(AttachmentProblem.INVALID, part, "data: URL has no comma before its payload")
    params = [p.strip() for p in header.split(";")]
    is_base64 = any(p.lower() == "base64" for p in params[1:])
    media_type = params[0] or "text/plain"
    if is_base64:
        data = decode_base64(payload, part=part, max_bytes=max_bytes)
    else:
        if len(payload) > 3 * max_bytes:
            raise _too_large(part, len(payload), max_bytes)
        data = percent_decode(payload)
    return from_bytes(data, media_type, part=part, filename=filename, max_bytes=max_bytes, index=index)


OFF_LOOP_CHARS = 64 * 1024  # a source longer than this is decoded in a worker thread (~1 ms of work)


async def decode_data_url(url: str, *, part: str, filename: str | None = None,
                          max_bytes: int = DEFAULT_MAX_BYTES, index: int = 1) -> Attachment:
    """`from_data_url` off the event loop for a large URL: a 9 MB %-encoded payload took ~1 s to decode,
    and every other request waited for it."""
    if len(url) <= OFF_LOOP_CHARS:
        return from_data_url(url, part=part, filename=filename, max_bytes=max_bytes, index=index)
    return await asyncio.to_thread(from_data_url, url, part=part, filename=filename, max_bytes=max_bytes,
                                   index=index)


def from_text(text: str, *, part: str, filename: str | None = None, media_type: str = "text/plain",
              max_bytes: int = DEFAULT_MAX_BYTES, index: int = 1) -> Attachment:
    """A plain-text document (Anthropic `{"type":"text"}` document source, a history file …)."""
    data = text.encode("utf-8")
    return from_bytes(data, media_type, part=part, filename=filename, max_bytes=max_bytes, index=index)


@dataclass(frozen=True, slots=True)
class AttachmentPolicy:
    """The operator's limits for attachments (`files.*`), handed to every surface."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = 10
    fetch_remote: bool = False
    fetch_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentPolicy:
        files = settings.files
        return cls(max_bytes=files.max_bytes, max_files=files.max_files, fetch_remote=files.fetch_remote,
                   fetch_timeout=files.fetch_timeout)


BlockKind = Literal["image", "document"]
_EXTENSION_TYPES = {ext: media for table in (IMAGE_TYPES, DOCUMENT_TYPES, TEXT_TYPES) for media, ext in table.items()}


def media_type_from_name(filename: str | None) -> str | None:
    """`report.pdf` → `application/pdf`; None when the extension says nothing we take."""
    if not filename or "." not in filename:
        return None
    return _EXTENSION_TYPES.get(filename.rsplit(".", 1)[1].lower())


async def from_block(kind: BlockKind, *, part: str, policy: AttachmentPolicy = AttachmentPolicy(),
                     media_type: str | None = None, data: str | None = None, url: str | None = None,
                     text: str | None = None, filename: str | None = None, index: int = 1) -> Attachment:
    """THE converter for every surface: one image or document block → a checked Attachment.

    Give exactly one source: `data` (base64, with `media_type` or a `filename` whose extension says
    it; else the bytes decide), `url` (a `data:` URL; an http(s) URL is fetched for images only and
    only when `policy.fetch_remote`), or `text` (a plain-text document). `kind` "image" insists on an
    image; "document" takes a PDF, UTF-8 text or an image. `part` names the block the way the client
    wrote it (`messages[1].content[0].image_url`); every refusal is an `AttachmentError` naming it
    with status 413 (size) or 400.
    """
    max_bytes = policy.max_bytes
    sources = [s for s in (data, url, text) if s is not None]
    if len(sources) != 1:
        raise AttachmentError(AttachmentProblem.INVALID, part,
                              "give exactly one source: base64 data, a URL or text" if sources
                              else "has no data, URL or text")
    declared = media_type or media_type_from_name(filename)
    if url is not None:
        if not isinstance(url, str) or not url:
            raise AttachmentError(AttachmentProblem.INVALID, part, "URL is missing")
        if kind == "image":  # remote_fetch builds on this module: imported here, not at the top
            from .remote_fetch import image_from_url

            return await image_from_url(url, part=part, fetch_remote=policy.fetch_remote, max_bytes=max_bytes,
                                        timeout=policy.fetch_timeout, index=index)
        if url[:5].lower() != "data:":
            raise AttachmentError(AttachmentProblem.REMOTE_DISABLED, part,
                                  "document URLs are not fetched by this gateway; send the file as base64")
        return await decode_data_url(url, part=part, filename=filename, max_bytes=max_bytes, index=index)
    if text is not None:
        if not isinstance(text, str):
            raise AttachmentError(AttachmentProblem.INVALID, part, "text must be a string")
        found = from_text(text, part=part, filename=filename, media_type=normalize_media_type(declared)
                          if normalize_media_type(declared) in TEXT_TYPES else "text/plain",
                          max_bytes=max_bytes, index=index)
    elif data is not None and len(data) > OFF_LOOP_CHARS:
        found = await asyncio.to_thread(from_base64, data, declared, part=part, filename=filename,
                                        max_bytes=max_bytes, index=index)
    else:
        assert data is not None
        found = from_base64(data, declared, part=part, filename=filename, max_bytes=max_bytes, index=index)
    if kind == "image" and found.kind is not AttachmentKind.IMAGE:
        raise AttachmentError(AttachmentProblem.UNSUPPORTED, part, f"expected an image, got {found.media_type}")
    return found


def check_count(attachments: Sequence[Attachment], max_files: int, *, part: str = "messages") -> None:
    """Refuse a turn with more files than the operator allows (400, naming where they came from)."""
    if len(attachments) > max_files:
        raise AttachmentError(AttachmentProblem.TOO_MANY, part,
                              f"{len(attachments)} files attached; at most {max_files} per request")


def needs_vision(attachments: Iterable[Attachment]) -> bool:
    """True when the turn must run in DeepSeek's vision mode (it carries an image)."""
    return any(a.kind is AttachmentKind.IMAGE for a in attachments)


async def prepare_attachments(client: DeepSeekClient, token: str, proxy: str | None,
                              attachments: Sequence[Attachment], *, model_type: str = "default",
                              thinking: bool = False, policy: PollPolicy | None = None) -> list[str]:
    """Upload the attachments on this account and wait until DeepSeek parsed them → ids for
    `completion(ref_file_ids=…)`, in order. Raises `UpstreamFailure`: account kinds (rate limit,
    token …) mean "retry on another account" (re-upload there: file ids belong to one account),
    file kinds (FILE_TOO_LARGE, FILE_UNSUPPORTED, FILE_PARSE_FAILED, CONTENT_FILTER) are final."""
    if not attachments:
        return []
    uploads = [a.upload() for a in attachments]
    return await upload_and_wait(client, token, uploads, model_type=model_type, thinking=thinking, proxy=proxy,
                                 policy=policy or PollPolicy())


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DOCUMENT_TYPES",
    "IMAGE_TYPES",
    "TEXT_TYPES",
    "Attachment",
    "AttachmentError",
    "AttachmentKind",
    "AttachmentPolicy",
    "AttachmentProblem",
    "BlockKind",
    "check_count",
    "decode_base64",
    "from_base64",
    "from_block",
    "from_bytes",
    "from_data_url",
    "from_text",
    "media_type_from_name",
    "needs_vision",
    "normalize_media_type",
    "prepare_attachments",
    "safe_filename",
    "sniff_media_type",
]
