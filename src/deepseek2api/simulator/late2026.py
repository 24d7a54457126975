"""The simulator's late-2026 behaviour (docs/deepseek-changes.md): what chat.deepseek.com is reported to
do since the spring 2026 captures, switched on by `profile: "late-2026"` (config.py `use_profile`).

* the client-version gate: any `/api/v0/` call whose `x-client-version` is older than
  `min_client_version` answers HTTP 200 `{"code":40005,"msg":"CLIENT_VERSION_TOO_LOW","data":null}`;
* risk-controlled password logins (`biz_code 11 RISK_DEVICE_DETECTED`, app.py) with accounts that work
  with the token they start with (`SimUser.token`, as if pasted from a browser; unknown tokens: 40003);
* the model settings (`GET /api/v0/client/settings?scope=model`) listing `disabled_modes` as
  `enabled: false`, and an empty reply for a completion sent in such a mode anyway (also the `empty` fault);
* stream fields no decoder knows yet (`drift_fields`): a new named event, a new patch path and a fragment
  of a new type, none of which changes the answer.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import SimulatorConfig
from .envelope import ok
from .state import SimState
from .streams import CLOSE, data_event, named_event

VERSION_TOO_LOW = {"code": 40005, "msg": "CLIENT_VERSION_TOO_LOW", "data": None}  # the exact body reported
MODES = ("default", "expert", "vision")


def version_tuple(text: str) -> tuple[int, ...]:
    """"2.0.4" → (2, 0, 4); anything unreadable counts as (0,) (too old)."""
    parts: list[int] = []
    for piece in text.strip().split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def too_old(sent: str | None, minimum: str) -> bool:
    return version_tuple(sent or "") < version_tuple(minimum)


class ClientVersionGate:
    """ASGI middleware: the 40005 answer for an outdated client, on every API call (not `/_sim/`)."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        minimum = self.state.config.min_client_version
        if scope["type"] == "http" and minimum and str(scope.get("path", "")).startswith("/api/v0/"):
            sent = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                         if k.lower() == b"x-client-version"), None)
            if too_old(sent, minimum):
                self.state.counts["version_refusals"] += 1
                body = json.dumps(VERSION_TOO_LOW, separators=(",", ":")).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def model_settings(config: SimulatorConfig) -> Response:
    """`GET /api/v0/client/settings?scope=model`: one entry per mode with its `enabled` flag (the real
    shape is not public; the gateway reads it tolerantly)."""
    return ok({"scope": "model", "model_configs": [
        {"model_type": mode, "enabled": mode not in config.disabled_modes, "file_upload": mode != "expert",
         "search": mode != "expert"} for mode in MODES]})


async def settings_endpoint(request: Request, state: SimState) -> Response:
    from .envelope import token_error  # the 40003 answer for an unknown token, as every endpoint

    state.requests["client_settings"] += 1
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or state.token_account(token.strip() or None) is None:
        return token_error(state.config.token_error_http)
    return model_settings(state.config)


def empty_reply(request_message_id: int, response_message_id: int, model_type: str, now: float) -> bytes:
    """A complete Gen C reply with nothing in it (status FINISHED, no fragment): what an account got in a
    mode it may not use."""
    response = {"message_id": response_message_id, "parent_id": request_message_id, "model": "",
                "role": "ASSISTANT", "thinking_enabled": False, "ban_edit": False, "ban_regenerate": False,
                "status": "WIP", "incomplete_message": None, "accumulated_token_usage": 0, "files": [],
                "feedback": None, "inserted_at": now, "search_enabled": False, "fragments": [],
                "has_pending_fragment": False, "auto_continue": False}
    return (named_event("ready", {"request_message_id": request_message_id,
                                  "response_message_id": response_message_id, "model_type": model_type})
            + data_event({"v": {"response": response}})
            + data_event({"p": "response", "o": "BATCH", "v": [{"p": "accumulated_token_usage", "v": 1},
                                                               {"p": "quasi_status", "v": "FINISHED"}]})
            + data_event({"p": "response/status", "o": "SET", "v": "FINISHED"})
            + named_event("close", CLOSE))


class DriftWriter:
    """Wraps a stream writer: the same reply, plus fields from a newer protocol than anyone decodes."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def opening(self, now: float) -> bytes:
        opening: bytes = self._writer.opening(now)
        return opening + named_event("telemetry", {"stage": "begin", "trace": "sim"})

    def finish(self, status: str, usage: int) -> bytes:
        extra = b""
        if getattr(self._writer, "key", None) == "fragments" and self._writer.fragments:
            extra = (data_event({"p": "response/agent_state", "o": "SET", "v": {"phase": "answer"}})
                     + data_event({"p": "response/fragments", "o": "APPEND",
                                   "v": [{"id": 90, "type": "SUGGESTION", "content": None, "items": []}]}))
            self._writer.forget_path()
        finish: bytes = self._writer.finish(status, usage)
        return extra + finish


def writer_for(config: SimulatorConfig, writer: Any) -> Any:
    return DriftWriter(writer) if config.drift_fields else writer
