"""Simulated file endpoints (docs/protocol.md): upload_file, fetch_files, fork_file_task, and the
`ref_file_ids` check of a completion.

An upload answers PENDING; every `fetch_files` poll moves it on (PARSING, then after
`file_parse_polls` polls its final status). The final status follows from the bytes: text (UTF-8),
PDF and images (in vision mode) end SUCCESS; an image uploaded without `x-model-type: vision` ends
CONTENT_EMPTY (no text in it), an empty file CONTENT_EMPTY, text over `max_file_chars` characters
CONTENT_TOO_LONG, anything else UNSUPPORTED. A test forces a status with the `x-sim-file-status`
header or a `[sim:file_status=NAME]` directive inside the file name.

Replies show that the model "read" the files it was given: `file_notes` names each file and echoes
the `MARKER…` words found in it (text and PDF; the first 3 and last 5 when there are many), and
describes images as "an image of N bytes".
Files go with the chat session that referenced them (chat_session/delete, delete_all).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .envelope import bad_request, biz_error, code_error, json_response, ok
from .replies import Reply
from .streams import hint_event

if TYPE_CHECKING:
    from .app import SimulatorApi
    from .state import SimState

UPLOAD_PATH = "/api/v0/file/upload_file"
FETCH_PATH = "/api/v0/file/fetch_files"
FORK_PATH = "/api/v0/file/fork_file_task"
VISION_UNAVAILABLE_TEXT = "vision is temporarily unavailable, please try again later"
MAX_FILES = 2_000  # stored files (oldest dropped first): long benchmarks that never delete stay bounded
MAX_STORED_BYTES = 512 << 20

_STATUS_DIRECTIVE = re.compile(r"\[sim:file_status=([A-Za-z_]+)\]")
_MARKER = re.compile(rb"MARKER[A-Za-z0-9_:.\-]*")
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))
_SSE = "text/event-stream; charset=utf-8"


@dataclass
class SimFile:
    """One uploaded file. `polls` counts fetch_files answers that included it."""

    id: str
    account: str
    name: str
    data: bytes
    model_type: str
    created_at: float
    final_status: str
    polls: int = 0
    sessions: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return sniff(self.data)

    def status(self, parse_polls: int) -> str:
        if self.polls == 0:
            return "PENDING"
        return "PARSING" if self.polls < parse_polls else self.final_status

    def public(self, parse_polls: int) -> dict[str, Any]:
        status = self.status(parse_polls)
        item: dict[str, Any] = {"id": self.id, "status": status, "file_name": self.name, "file_size": len(self.data),
                                "updated_at": self.created_at, "model_type": self.model_type}
        if status == "SUCCESS":
            item["token_usage"] = (len(self.data) + 1) // 2
        return item


def sniff(data: bytes) -> str:
    """"image/PNG" … , "pdf", "text" or "binary" — from the bytes, never from the declared type."""
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return f"image/{name}"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/WEBP"
    if data.startswith(b"%PDF-"):
        return "pdf"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


class FileStore:
    """The uploaded files of every account (lives in `SimState.files`)."""

    def __init__(self) -> None:
        self.files: dict[str, SimFile] = {}
        self.uploads = 0
        self.uploaded_bytes = 0  # all uploads' sizes (bench/continuation.py reads it)
        self.forks = 0
        self.deleted = 0

    def add(self, file: SimFile) -> None:
        self.files[file.id] = file
        while len(self.files) > MAX_FILES or sum(len(f.data) for f in self.files.values()) > MAX_STORED_BYTES:
            del self.files[next(iter(self.files))]

    def owned(self, account: str, file_id: Any) -> SimFile | None:
        found = self.files.get(file_id) if isinstance(file_id, str) else None
        return found if found is not None and found.account == account else None

    def attach(self, session_id: str, files: Iterable[SimFile]) -> None:
        for file in files:
            file.sessions.add(session_id)

    def forget_sessions(self, session_ids: Iterable[str]) -> None:
        """Delete the files used by these (deleted) sessions."""
        gone = set(session_ids)
        for key in [k for k, f in self.files.items() if f.sessions & gone]:
            del self.files[key]
            self.deleted += 1

    def reset_counters(self) -> None:
        self.uploads = self.forks = self.deleted = self.uploaded_bytes = 0

    def clear(self) -> None:
        self.files.clear()
        self.reset_counters()

    def stats(self) -> dict[str, int]:
        return {"stored": len(self.files), "uploads": self.uploads, "forks": self.forks, "deleted": self.deleted,
                "uploaded_bytes": self.uploaded_bytes}


def final_status_for(data: bytes, name: str, model_type: str, forced: str | None, max_chars: int | None) -> str:
    """What parsing will end with (see the module doc)."""
    directive = _STATUS_DIRECTIVE.search(name)
    if forced or directive:
        return (forced or (directive.group(1) if directive else "")).strip().upper()
    if not data:
        return "CONTENT_EMPTY"
    kind = sniff(data)
    if kind.startswith("image/"):
        return "SUCCESS" if model_type == "vision" else "CONTENT_EMPTY"
    if kind == "pdf":
        return "SUCCESS"
    if kind == "text":
        if max_chars is not None and len(data.decode("utf-8")) > max_chars:
            return "CONTENT_TOO_LONG"
        return "SUCCESS"
    return "UNSUPPORTED"


def parse_multipart(body: bytes, content_type: str) -> tuple[str, bytes] | None:
    """(filename, bytes) of the part named `file` of a multipart/form-data body; None when malformed."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = head.decode("utf-8", "replace")
        disposition = re.search(r'content-disposition:[^\r\n]*name="file"', headers, re.IGNORECASE)
        if disposition is None:
            continue
        name = re.search(r'filename="([^"]*)"', headers)
        return (name.group(1) if name else "file"), content.removesuffix(b"\r\n")
    return None


def file_notes(files: Sequence[SimFile]) -> str:
    """What the simulated model says about the attached files (appended to its reply)."""
    notes: list[str] = []
    for file in files:
        kind = file.kind
        if kind.startswith("image/"):
            notes.append(f'I see an image of {len(file.data)} bytes ({kind[6:]}) in "{file.name}".')
            continue
        label = "the PDF" if kind == "pdf" else "the file"
        markers = list(dict.fromkeys(m.decode("ascii") for m in _MARKER.findall(file.data)))
        if len(markers) > 8:  # the first and the last ones (a long history: the latest turns matter)
            markers = [*markers[:3], f"… ({len(markers) - 8} more) …", *markers[-5:]]
        said = f" It contains {', '.join(markers)}." if markers else ""
        notes.append(f'I read {label} "{file.name}" ({len(file.data)} bytes).{said}')
    return " ".join(notes)


def with_file_notes(reply: Reply, files: Sequence[SimFile]) -> Reply:
    if not files:
        return reply
    return dataclasses.replace(reply, content=f"{reply.content} {file_notes(files)}")


def check_refs(state: SimState, account: str, ids: Any, model_type: Any) -> list[SimFile] | Response:
    """The files a completion refers to, or the refusal: biz_code 10 for too many, 9 for an id that is
    not a parsed file of this account; a vision turn while vision is off gets the §6.7 hint."""
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return bad_request("ref_file_ids must be a list of strings")
    config = state.config
    if len(ids) > config.max_ref_files:
        return biz_error(10, "too many ref file")
    files: list[SimFile] = []
    for file_id in ids:
        file = state.files.owned(account, file_id)
        if file is None or file.status(config.file_parse_polls) != "SUCCESS":
            return biz_error(9, "invalid ref file id")
        files.append(file)
    if model_type == "vision" and not config.vision_available:
        return Response(hint_event(VISION_UNAVAILABLE_TEXT, "vision_unavailable"), media_type=_SSE)
    return files


class FileEndpoints:
    """The three file routes, sharing the API's token, fault and PoW checks."""

    def __init__(self, api: SimulatorApi) -> None:
        self.api = api
        self.state: SimState = api.state

    async def upload(self, request: Request) -> Response:
        checked = self.api._auth(request, "upload_file")
        if isinstance(checked, Response):
            return checked
        account = checked[0]
        config = self.state.config
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
            return code_error(40000, "Invalid boundary", status=400)
        rejected = self.api._check_pow(request, UPLOAD_PATH)
        if rejected is not None:
            return rejected
        declared = request.headers.get("x-file-size", "")
        if not declared.isdigit():
            return bad_request("x-file-size header is required")
        if int(declared) > config.max_file_bytes:
            return biz_error(11, f"file too large: {declared} bytes (limit {config.max_file_bytes})")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_file_bytes + 64 * 1024:
                return biz_error(11, f"file too large (limit {config.max_file_bytes} bytes)")
        parsed = parse_multipart(bytes(body), content_type)
        if parsed is None:
            return bad_request("multipart body has no part named file")
        name, data = parsed
        if len(data) != int(declared):
            return bad_request(f"x-file-size says {declared} bytes, the file has {len(data)}")
        if len(data) > config.max_file_bytes:
            return biz_error(11, f"file too large (limit {config.max_file_bytes} bytes)")
        model_type = request.headers.get("x-model-type") or "default"
        if model_type not in ("default", "expert", "vision"):
            return bad_request("x-model-type must be default, expert or vision")
        status = final_status_for(data, name, model_type, request.headers.get("x-sim-file-status"),
                                  config.max_file_chars)
        file = SimFile(id=f"file-{secrets.token_hex(12)}", account=account, name=name, data=data,
                       model_type=model_type, created_at=self.state.clock(), final_status=status)
        self.state.files.add(file)
        self.state.files.uploads += 1
        self.state.files.uploaded_bytes += len(data)
        return ok(file.public(config.file_parse_polls))

    async def fetch(self, request: Request) -> Response:
        checked = self.api._auth(request, "fetch_files")
        if isinstance(checked, Response):
            return checked
        polls = self.state.config.file_parse_polls
        wanted = [i for i in request.query_params.get("file_ids", "").split(",") if i]
        items = []
        for file_id in wanted:
            file = self.state.files.owned(checked[0], file_id)
            if file is not None:
                file.polls += 1
                items.append(file.public(polls))
        return ok({"files": items})

    async def fork(self, request: Request) -> Response:
        checked = self.api._auth(request, "fork_file_task")
        if isinstance(checked, Response):
            return checked
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return bad_request("body must be a JSON object")
        target = body.get("to_model_type")
        if target not in ("default", "expert", "vision"):
            return bad_request("to_model_type must be default, expert or vision")
        polls = self.state.config.file_parse_polls
        source = self.state.files.owned(checked[0], body.get("file_id"))
        if source is None or source.status(polls) not in ("SUCCESS", "CONTENT_EMPTY"):
            return biz_error(9, "invalid file id")
        status = final_status_for(source.data, source.name, target, None, self.state.config.max_file_chars)
        file = SimFile(id=f"file-{secrets.token_hex(12)}", account=source.account, name=source.name,
                       data=source.data, model_type=target, created_at=self.state.clock(), final_status=status)
        self.state.files.add(file)
        self.state.files.forks += 1
        return ok(file.public(polls))

    async def listing(self, request: Request) -> Response:
        """`GET /_sim/files`: what is stored (no contents), for tests and the curious."""
        polls = self.state.config.file_parse_polls
        return json_response({"files": [f.public(polls) | {"account": f.account, "sessions": sorted(f.sessions)}
                                        for f in self.state.files.files.values()],
                              **self.state.files.stats()})

    def routes(self) -> list[Route]:
        return [
            Route(UPLOAD_PATH, self.upload, methods=["POST"]),
            Route(FETCH_PATH, self.fetch, methods=["GET"]),
            Route(FORK_PATH, self.fork, methods=["POST"]),
            Route("/_sim/files", self.listing, methods=["GET"]),
        ]
