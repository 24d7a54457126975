"""DeepSeek's file endpoints (docs/protocol.md): upload with its own PoW, status polling, vision fork.

A file is useful to a completion only once upstream has parsed it (status SUCCESS); until then a
`ref_file_ids` entry is refused with biz_code 9. So the unit the runner wants is "upload these and
wait until they are parsed" (`upload_and_wait`), which returns ids to pass to
`DeepSeekClient.completion(ref_file_ids=…)`. Everything raises `UpstreamFailure` with a kind:
account trouble (token, rate limit, PoW…) keeps its usual kind so the runner can retry on another
account, and trouble with the file itself is FILE_TOO_LARGE / FILE_UNSUPPORTED / FILE_PARSE_FAILED /
CONTENT_FILTER, which no other account would fix. Files cannot be deleted one by one: they go with
the chat session that used them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import ErrorKind, UpstreamFailure
from .events import UpstreamError

if TYPE_CHECKING:
    from .client import DeepSeekClient

log = logging.getLogger(__name__)

PATH_UPLOAD_FILE = "/api/v0/file/upload_file"
PATH_FETCH_FILES = "/api/v0/file/fetch_files"
PATH_FORK_FILE_TASK = "/api/v0/file/fork_file_task"

READY = "SUCCESS"
PENDING_STATUSES = frozenset({"PENDING", "PARSING", "PROCESSING", "UPLOADING"})
FAILED_STATUSES: Mapping[str, ErrorKind] = {
    "CONTENT_TOO_LONG": ErrorKind.FILE_TOO_LARGE,
    "UNSUPPORTED": ErrorKind.FILE_UNSUPPORTED,
    "CONTENT_FILTER": ErrorKind.CONTENT_FILTER,
    "CONTENT_EMPTY": ErrorKind.FILE_PARSE_FAILED,
    "FAILED": ErrorKind.FILE_PARSE_FAILED,
    "ERROR": ErrorKind.FILE_PARSE_FAILED,
    "CANCELLED": ErrorKind.FILE_PARSE_FAILED,
}
OFF_LOOP_BYTES = 1 << 20  # build multipart bodies larger than this in a worker thread
MAX_MISSING_POLLS = 3  # a file absent from this many status answers in a row is gone


@dataclass(frozen=True, slots=True)
class FileUpload:
    """One file to send, already decoded and size-checked by the caller.

    `vision` marks an image for DeepSeek's vision mode: it is uploaded with `x-model-type: vision`,
    and an empty text extraction (CONTENT_EMPTY) counts as parsed for it.
    """

    filename: str
    media_type: str
    data: bytes
    vision: bool = False


@dataclass(frozen=True, slots=True)
class FileStatus:
    """One `fetch_files` / `upload_file` item."""

    id: str
    status: str
    file_name: str = ""
    file_size: int | None = None
    token_usage: int | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> FileStatus:
        file_id, status = item.get("id"), item.get("status")
        if not isinstance(file_id, str) or not file_id or not isinstance(status, str):
            raise _protocol("file answer carries no id/status")
        size, usage = item.get("file_size"), item.get("token_usage")
        return cls(id=file_id, status=status.upper(), file_name=str(item.get("file_name") or ""),
                   file_size=size if type(size) is int else None,
                   token_usage=usage if type(usage) is int else None)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How long and how often to ask whether uploads are parsed (exponential backoff, bounded)."""

    timeout: float = 60.0
    first_delay: float = 0.2
    max_delay: float = 2.0
    factor: float = 1.7


def _protocol(message: str) -> UpstreamFailure:
    return UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, message))


def _failure(kind: ErrorKind, message: str) -> UpstreamFailure:
    return UpstreamFailure(UpstreamError(kind, message))


def _biz_data(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    data = envelope.get("data")
    biz = data.get("biz_data") if isinstance(data, Mapping) else None
    return biz if isinstance(biz, Mapping) else {}


def _disposition_name(filename: str) -> str:
    """A filename safe inside `filename="…"`: no quotes, backslashes or line breaks (UTF-8 kept, as browsers do)."""
    cleaned = "".join(c for c in filename if c >= " " and c != "\x7f")
    cleaned = cleaned.replace("\\", "_").replace('"', "'").strip() or "file"
    return cleaned


def encode_multipart(upload: FileUpload) -> tuple[bytes, str]:
    """(body, content type) of the one-part `multipart/form-data` upload (part name `file`)."""
    boundary = "----DeepSeek2API" + secrets.token_hex(16)
    while boundary.encode() in upload.data:  # practically never; cheap to be sure
        boundary = "----DeepSeek2API" + secrets.token_hex(16)
    media_type = upload.media_type if upload.media_type.isascii() and "\r" not in upload.media_type \
        and "\n" not in upload.media_type else "application/octet-stream"
    name = _disposition_name(upload.filename)
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n").encode()
    body = b"".join((head, upload.data, f"\r\n--{boundary}--\r\n".encode("ascii")))
    return body, f"multipart/form-data; boundary={boundary}"


async def upload_file(client: DeepSeekClient, token: str, upload: FileUpload, *, model_type: str = "default",
                      thinking: bool = False, proxy: str | None = None) -> FileStatus:
    """Upload one file (PoW minted for the upload path) → its first status (usually PENDING)."""
    if len(upload.data) > OFF_LOOP_BYTES:
        body, content_type = await asyncio.to_thread(encode_multipart, upload)
    else:
        body, content_type = encode_multipart(upload)
    pow_header = await client.pow_header(token, PATH_UPLOAD_FILE, proxy=proxy)
    headers = {
        "Content-Type": content_type,
        "x-ds-pow-response": pow_header,
        "x-file-size": str(len(upload.data)),
        "x-model-type": "vision" if upload.vision else model_type,
        "x-thinking-enabled": "1" if thinking else "0",
    }
    envelope = await client._call("POST", PATH_UPLOAD_FILE, token=token, body=body, proxy=proxy,
                                  headers=headers, secrets=[pow_header])
    return FileStatus.from_item(_biz_data(envelope))


async def fetch_files(client: DeepSeekClient, token: str, file_ids: Sequence[str], *,
                      proxy: str | None = None) -> list[FileStatus]:
    """Current status of some files (one call); ids upstream does not know are simply absent."""
    if not file_ids:
        return []
    path = f"{PATH_FETCH_FILES}?file_ids={quote(','.join(file_ids), safe=',')}"
    envelope = await client._call("GET", path, token=token, proxy=proxy)
    items = _biz_data(envelope).get("files")
    if not isinstance(items, list):
        raise _protocol("fetch_files answer carries no files list")
    return [FileStatus.from_item(item) for item in items if isinstance(item, Mapping)]


async def fork_file_task(client: DeepSeekClient, token: str, file_id: str, *, to_model_type: str = "vision",
                         proxy: str | None = None) -> FileStatus:
    """A copy of an uploaded file prepared for another model type (vision) → the new file's status."""
    envelope = await client._call("POST", PATH_FORK_FILE_TASK, token=token, proxy=proxy,
                                  body={"file_id": file_id, "to_model_type": to_model_type})
    biz = _biz_data(envelope)
    nested = biz.get("file")
    return FileStatus.from_item(nested if isinstance(nested, Mapping) else biz)


def _check_failed(status: FileStatus, accept: frozenset[str]) -> None:
    if status.status in accept or status.pending:
        return
    kind = FAILED_STATUSES.get(status.status)
    if kind is None:
        return  # an unknown status: keep polling; the deadline bounds the wait
    shown = status.file_name or status.id
    raise _failure(kind, f"file {shown!r}: upstream could not use it (status {status.status})")


async def wait_until_parsed(client: DeepSeekClient, token: str, file_ids: Sequence[str], *,
                            proxy: str | None = None, policy: PollPolicy = PollPolicy(),
                            accept_empty: Sequence[str] = ()) -> list[FileStatus]:
    """Poll `fetch_files` until every file is SUCCESS (in `file_ids` order).

    A failed status raises at once (its kind says why); still pending at `policy.timeout` raises
    FILE_NOT_READY. Ids in `accept_empty` also count as ready with CONTENT_EMPTY (images: S15).
    Only `asyncio.sleep` between polls, so it is cheap to run on the event loop and to cancel.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.timeout
    done: dict[str, FileStatus] = {}
    missing: dict[str, int] = {}
    empty_ok = frozenset(accept_empty)
    delay = policy.first_delay
    while True:
        waiting = [file_id for file_id in file_ids if file_id not in done]
        if not waiting:
            return [done[file_id] for file_id in file_ids]
        answer = {status.id: status for status in await fetch_files(client, token, waiting, proxy=proxy)}
        for file_id in waiting:
            status = answer.get(file_id)
            if status is None:
                missing[file_id] = missing.get(file_id, 0) + 1
                if missing[file_id] >= MAX_MISSING_POLLS:
                    raise _failure(ErrorKind.FILE_NOT_READY, f"file {file_id!r} is unknown upstream")
                continue
            missing.pop(file_id, None)
            accept = frozenset({READY, "CONTENT_EMPTY"}) if file_id in empty_ok else frozenset({READY})
            _check_failed(status, accept)
            if status.status in accept:
                done[file_id] = status
        if len(done) == len(file_ids):
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            pending = [answer[f].status if f in answer else "unknown" for f in file_ids if f not in done]
            raise _failure(ErrorKind.FILE_NOT_READY,
                           f"{len(pending)} file(s) not parsed after {policy.timeout:g} s ({', '.join(pending)})")
        await asyncio.sleep(min(delay, remaining))
        delay = min(policy.max_delay, delay * policy.factor)


async def upload_and_wait(client: DeepSeekClient, token: str, uploads: Sequence[FileUpload], *,
                          model_type: str = "default", thinking: bool = False, proxy: str | None = None,
                          policy: PollPolicy = PollPolicy()) -> list[str]:
    """Upload every file (one after the other: an account never fires bursts) and wait until all are
    parsed → their ids, in order, for `completion(ref_file_ids=…)`."""
    statuses: list[FileStatus] = []
    for upload in uploads:
        status = await upload_file(client, token, upload, model_type=model_type, thinking=thinking, proxy=proxy)
        log.debug("uploaded %d bytes as %s (%s)", len(upload.data), status.id, status.status)
        statuses.append(status)
    ids = [status.id for status in statuses]
    empty_ok = [status.id for status, upload in zip(statuses, uploads, strict=True) if upload.vision]
    await wait_until_parsed(client, token, ids, proxy=proxy, policy=policy, accept_empty=empty_ok)
    return ids


async def fork_for_vision(client: DeepSeekClient, token: str, file_id: str, *, proxy: str | None = None,
                          policy: PollPolicy = PollPolicy()) -> str:
    """Re-use an already uploaded image in vision mode: fork it, wait until the copy is parsed → its id."""
    forked = await fork_file_task(client, token, file_id, to_model_type="vision", proxy=proxy)
    await wait_until_parsed(client, token, [forked.id], proxy=proxy, policy=policy, accept_empty=[forked.id])
    return forked.id


__all__ = [
    "FAILED_STATUSES",
    "PATH_FETCH_FILES",
    "PATH_FORK_FILE_TASK",
    "PATH_UPLOAD_FILE",
    "PENDING_STATUSES",
    "READY",
    "FileStatus",
    "FileUpload",
    "PollPolicy",
    "encode_multipart",
    "fetch_files",
    "fork_file_task",
    "fork_for_vision",
    "upload_and_wait",
    "upload_file",
    "wait_until_parsed",
]
