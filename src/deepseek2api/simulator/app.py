"""The simulated chat.deepseek.com: the `/api/v0/…` endpoints of docs/protocol.md plus the `/_sim/` control API.

Order of checks on chat/completion (and chat/continue): token → account banned → per-account stream
limit → body → PoW (`x-ds-pow-response`, minted for this exact path: chat/continue needs its own,
fresh challenge for `/api/v0/chat/continue`) → request faults → session and parent id → ref_file_ids
(files.py) → prompt length → stream. The file endpoints live in files.py.
"""

from __future__ import annotations

import functools
import hmac
import json
import random
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import control, late2026
from .config import SimulatorConfig, SimUser, normalize_format
from .envelope import bad_request, biz_error, code_error, invalid_parent, invalid_session, ok, token_error
from .eventstream import EventStream
from .faults import first_request_fault, pick_faults, request_fault_response
from .files import FileEndpoints, SimFile, check_refs, with_file_notes
from .history import held_prompt
from .replies import parse_directives, reply_for
from .state import SimMessage, SimSession, SimState, StreamSlot
from .streams import MessageMeta, hint_event, make_writer
from .turns import Turn, plan_turn, stream_round

COMPLETION_PATH = "/api/v0/chat/completion"
CONTINUE_PATH = "/api/v0/chat/continue"
INPUT_TOO_LONG_TEXT = "内容超长，请删减后再试。"
OVER_LIMIT_TEXT = "You have another reply in progress. Please wait for it to finish and try again."

_SSE = "text/event-stream; charset=utf-8"


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _mask(value: str) -> str:
    if "@" in value:
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    return value[:3] + "*" * max(0, len(value) - 7) + value[-4:]


def _user_object(user: SimUser, token: str) -> dict[str, Any]:
    return {
        "id": f"sim-{zlib.crc32(user.account.encode()):08x}", "token": token,
        "email": _mask(user.email) if user.email else "", "mobile_number": _mask(user.mobile) if user.mobile else "",
        "area_code": "+86" if user.mobile else "", "status": 0,
        "id_profile": {"provider": "EMAIL" if user.email else "PHONE", "id": user.account, "name": "", "picture": ""},
        "chat": {"is_muted": 0, "mute_until": 0},
    }


class SimulatorApi:
    """The request handlers, bound to one `SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # --- shared checks ------------------------------------------------------------------------------
    def _auth(self, request: Request, endpoint: str, *, fault_check: bool = True) -> tuple[str, str] | Response:
        """(account, token) of a valid bearer token, or the error answer."""
        state = self.state
        state.requests[endpoint] += 1
        token = _bearer(request)
        account = state.token_account(token)
        if account is None or token is None:
            return token_error(state.config.token_error_http)
        if state.is_banned(account):
            return code_error(40012, "user is banned")
        if fault_check:
            faults = pick_faults(state, endpoint, account, request.headers.get("x-sim-fault"))
            name = first_request_fault(faults)
            if name:
                return request_fault_response(name, state, endpoint=endpoint, account=account, token=token)
        return account, token

    def _over_limit(self) -> Response:
        config = self.state.config
        if config.over_limit == "hint":
            return Response(hint_event(OVER_LIMIT_TEXT, "rate_limit_reached"), media_type=_SSE)
        return code_error(429, "Too Many Requests: a reply is already in progress on this account", status=429,
                          headers={"Retry-After": f"{config.retry_after:g}"})

    def _check_pow(self, request: Request, path: str) -> Response | None:
        if not self.state.config.pow_required:
            return None
        failure = self.state.pow.verify(request.headers.get("x-ds-pow-response"), path)
        if failure is None:
            return None
        self.state.counts["pow_failures"] += 1
        return code_error(*failure)

    # --- users ------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        state = self.state
        state.requests["login"] += 1
        body = await _json_body(request)
        if body is None:
            return bad_request("body must be a JSON object")
        email, mobile = body.get("email"), body.get("mobile")
        user = state.config.find_user(email=email if isinstance(email, str) else None,
                                      mobile=mobile if isinstance(mobile, str) else None)
        faults = pick_faults(state, "login", user.account if user else None, request.headers.get("x-sim-fault"))
        name = first_request_fault(faults)
        if name:
            return request_fault_response(name, state, endpoint="login", account=user.account if user else None,
                                          token=None)
        password = body.get("password")
        if (user is None or not isinstance(password, str)
                or not hmac.compare_digest(password.encode(), user.password.encode())):
            state.counts["login_failures"] += 1
            return biz_error(2, "PASSWORD_OR_USER_NAME_IS_WRONG")
        if state.is_banned(user.account):
            state.counts["login_failures"] += 1
            return biz_error(10, "user is banned")
        if state.config.risk_control_logins:  # late-2026: correct credentials, refused all the same
            state.counts["login_failures"] += 1
            return biz_error(11, "RISK_DEVICE_DETECTED")
        state.counts["logins"] += 1
        token = state.issue_token(user)
        return ok({"code": 0, "msg": "", "user": _user_object(user, token)})

    async def current(self, request: Request) -> Response:
        checked = self._auth(request, "current")
        if isinstance(checked, Response):
            return checked
        account, token = checked
        user = self.state.config.user_by_account(account)
        if user is None:  # removed from the config since login
            return token_error(self.state.config.token_error_http)
        return ok(_user_object(user, token))

    # --- sessions ---------------------------------------------------------------------------------
    async def create_session(self, request: Request) -> Response:
        checked = self._auth(request, "create_session")
        if isinstance(checked, Response):
            return checked
        session = self.state.create_session(checked[0])
        return ok({"chat_session": session.public(), "ttl_seconds": int(self.state.config.session_ttl)})

    async def delete_session(self, request: Request) -> Response:
        checked = self._auth(request, "delete_session")
        if isinstance(checked, Response):
            return checked
        body = await _json_body(request) or {}
        session = self.state.session_of(checked[0], body.get("chat_session_id"))
        if session is None:
            return invalid_session()
        self.state.delete_session(session)
        return ok(None)

    async def delete_all(self, request: Request) -> Response:
        checked = self._auth(request, "delete_all")
        if isinstance(checked, Response):
            return checked
        self.state.delete_all(checked[0])
        return ok(None)

    async def fetch_page(self, request: Request) -> Response:
        checked = self._auth(request, "fetch_page")
        if isinstance(checked, Response):
            return checked
        try:
            count = max(1, min(100, int(request.query_params.get("count", "50"))))
        except ValueError:
            return bad_request("count must be an integer")
        mine = sorted((s for s in self.state.sessions.values() if s.account == checked[0]),
                      key=lambda s: s.updated_at, reverse=True)
        return ok({"chat_sessions": [s.public() for s in mine[:count]], "has_more": len(mine) > count})

    async def history_messages(self, request: Request) -> Response:
        checked = self._auth(request, "history_messages")
        if isinstance(checked, Response):
            return checked
        session = self.state.session_of(checked[0], request.query_params.get("chat_session_id"))
        if session is None:
            return invalid_session()
        chat_session = session.public() | {"is_empty": not session.messages}
        messages = [_history_record(m) for m in sorted(session.messages.values(), key=lambda m: m.message_id)]
        return ok({"chat_session": chat_session, "chat_messages": messages, "cache_control": "MERGE",
                   "cache_reset_at": None})

    # --- PoW --------------------------------------------------------------------------------------
    async def create_pow_challenge(self, request: Request) -> Response:
        checked = self._auth(request, "create_pow_challenge")
        if isinstance(checked, Response):
            return checked
        body = await _json_body(request) or {}
        target = body.get("target_path")
        if not isinstance(target, str) or not target.startswith("/"):
            return bad_request("target_path is required")
        config = self.state.config
        self.state.counts["pow_challenges"] += 1
        return ok({"challenge": self.state.pow.mint(target, config.difficulty, config.pow_ttl)})

    # --- chat -------------------------------------------------------------------------------------
    async def completion(self, request: Request) -> Response | EventStream:
        return await self._with_stream_slot(request, "completion", self._completion)

    async def _with_stream_slot(
        self, request: Request, endpoint: str,
        handler: Callable[[Request, str, str, StreamSlot], Awaitable[Response | EventStream]],
    ) -> Response | EventStream:
        """Authenticate, take the account's stream slot, run `handler`; the slot goes with the stream
        it returns, or back at once when the answer is not a stream."""
        checked = self._auth(request, endpoint, fault_check=False)
        if isinstance(checked, Response):
            return checked
        account, token = checked
        slot = await self.state.acquire_stream(account)
        if slot is None:
            return self._over_limit()
        handed_off = False
        try:
            response = await handler(request, account, token, slot)
            handed_off = isinstance(response, EventStream)
            return response
        finally:
            if not handed_off:
                slot.release()

    async def _turn_body(self, request: Request, path: str) -> dict[str, Any] | Response:
        """The JSON body of a completion/continue call once its PoW header passed, else the refusal."""
        body = await _json_body(request)
        if body is None:
            return bad_request("body must be a JSON object")
        rejected = self._check_pow(request, path)
        return rejected if rejected is not None else body

    async def _completion(self, request: Request, account: str, token: str,
                          slot: StreamSlot) -> Response | EventStream:
        state, config = self.state, self.state.config
        body = await self._turn_body(request, COMPLETION_PATH)
        if isinstance(body, Response):
            return body
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return bad_request("prompt must be a string")
        state.recent_prompts.append(prompt)
        directives = parse_directives(prompt)
        fmt = _pick_format(request.headers.get("x-sim-format"), directives.format, config.stream_format)
        faults = pick_faults(state, "completion", account, request.headers.get("x-sim-fault"), directives.faults)
        if directives.stall is not None:
            faults.add("stall")
        name = first_request_fault(faults)
        if name:
            return request_fault_response(name, state, endpoint="completion", account=account, token=token, fmt=fmt)
        session = state.session_of(account, body.get("chat_session_id"))
        if session is None:
            return invalid_session()
        parent = _message_id(body.get("parent_message_id"))
        if parent != session.last_response_id:
            return invalid_parent()
        files = check_refs(state, account, body.get("ref_file_ids"), body.get("model_type"))
        if isinstance(files, Response):
            return files
        if "input_too_long" in faults or (config.max_prompt_chars is not None
                                          and len(prompt) > config.max_prompt_chars):
            if "input_too_long" in faults:
                state.faults_injected["input_too_long"] += 1
            return Response(hint_event(INPUT_TOO_LONG_TEXT, "input_exceeds_limit"), media_type=_SSE)
        for fault in faults:
            state.faults_injected[fault] += 1
        thinking, search = bool(body.get("thinking_enabled")), bool(body.get("search_enabled"))
        model_type = body.get("model_type") if isinstance(body.get("model_type"), str) else None
        if "empty" in faults or (model_type or "default") in config.disabled_modes:  # late2026.py
            state.counts["empty_replies"] += 1
            request_id = session.next_message_id
            session.next_message_id += 2
            return Response(late2026.empty_reply(request_id, request_id + 1, model_type or "default", state.clock()),
                            media_type=_SSE)
        session.model_type = model_type or session.model_type or "default"
        turn = self._new_turn(session, prompt, fmt, thinking, search, faults,
                              rounds=directives.rounds, stall=directives.stall, files=files)
        state.counts["completions"] += 1
        rate = config.slow_tokens_per_second if "slow" in faults else config.tokens_per_second
        return EventStream(stream_round(turn, state, slot, resume=False, rate=rate, rng=_stream_rng(config, turn)))

    def _new_turn(self, session: SimSession, prompt: str, fmt: str, thinking: bool, search: bool,
                  faults: set[str], *, rounds: int | None, stall: float | None,
                  files: list[SimFile] | None = None) -> Turn:
        state, config = self.state, self.state.config
        now = state.clock()
        request_id = session.next_message_id
        response_id = request_id + 1
        session.next_message_id += 2
        first_turn = session.last_response_id is None and session.title is None
        session.messages[request_id] = SimMessage(request_id, session.last_response_id, "USER", now, thinking,
                                                  search, prompt=prompt)
        message = SimMessage(response_id, request_id, "ASSISTANT", now, thinking, search, status="WIP")
        session.messages[response_id] = message
        session.last_response_id = response_id
        session.updated_at = now
        meta = MessageMeta(request_message_id=request_id, message_id=response_id,
                           model_type=session.model_type or "default", thinking=thinking, search=search,
                           inserted_at=now)
        parent = session.messages[request_id].parent_id  # a continued session: answer from all it holds
        reply = reply_for(held_prompt(session, parent, prompt), thinking=thinking, search=search)
        if files:
            state.files.attach(session.id, files)
            reply = with_file_notes(reply, files)
        rng = random.Random(f"{config.seed}|{response_id}|{prompt}") if config.seed is not None else random.Random()
        turn = plan_turn(
            session=session, message=message, meta=meta,
            writer=late2026.writer_for(config, make_writer(fmt, meta, finish_event=config.finish_event)),
            reply=reply, rng=rng,
            chunk=reply.split or config.chunk_chars, title=reply.title if first_turn else None,
            stall=(stall if stall is not None else config.stall_seconds) if "stall" in faults else 0.0,
            cut="cut" in faults, content_filter="content_filter" in faults,
            incomplete_rounds=(rounds or 1) if "incomplete" in faults else 0,
        )
        message.turn = turn
        return turn

    async def continue_(self, request: Request) -> Response | EventStream:
        return await self._with_stream_slot(request, "continue", self._continue)

    async def _continue(self, request: Request, account: str, token: str,
                        slot: StreamSlot) -> Response | EventStream:
        state, config = self.state, self.state.config
        body = await self._turn_body(request, CONTINUE_PATH)
        if isinstance(body, Response):
            return body
        faults = pick_faults(state, "continue", account, request.headers.get("x-sim-fault"))
        name = first_request_fault(faults)
        if name:
            return request_fault_response(name, state, endpoint="continue", account=account, token=token)
        session = state.session_of(account, body.get("chat_session_id"))
        if session is None:
            return invalid_session()
        message = session.messages.get(_message_id(body.get("message_id")))  # type: ignore[arg-type]
        if message is None or message.turn is None or message.status != "INCOMPLETE":
            return biz_error(4, "invalid message id: nothing to continue")
        for fault in faults:
            state.faults_injected[fault] += 1
        turn: Turn = message.turn
        turn.stall = config.stall_seconds if "stall" in faults else 0.0
        turn.cut = turn.cut or "cut" in faults
        turn.content_filter = turn.content_filter or "content_filter" in faults
        state.counts["continues"] += 1
        rate = config.slow_tokens_per_second if "slow" in faults else config.tokens_per_second
        return EventStream(stream_round(turn, state, slot, resume=True, rate=rate, rng=_stream_rng(config, turn)))

    async def stop_stream(self, request: Request) -> Response:
        checked = self._auth(request, "stop_stream")
        if isinstance(checked, Response):
            return checked
        body = await _json_body(request) or {}
        session = self.state.session_of(checked[0], body.get("chat_session_id"))
        if session is None:
            return invalid_session()
        self.state.counts["stop_streams"] += 1
        key = (session.id, _message_id(body.get("response_message_id")))
        generation = self.state.generations.get(key)  # type: ignore[arg-type]
        if generation is not None:
            generation.stop()
        return ok(None)


def _message_id(value: Any) -> int | None:
    """Message ids are integers; numeric strings are accepted (some clients send them), anything else is not."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if type(value) is int else None if value is None else -1


def _pick_format(header: str | None, directive: str | None, default: str) -> str:
    for candidate in (header, directive):
        if candidate:
            try:
                return normalize_format(candidate)
            except ValueError:
                pass
    return default


def _stream_rng(config: SimulatorConfig, turn: Turn) -> random.Random:
    """Jitter randomness: reproducible per message when the config has a seed."""
    if config.seed is None:
        return random.Random()
    return random.Random(f"{config.seed}|jitter|{turn.meta.message_id}")


def _history_record(message: SimMessage) -> dict[str, Any]:
    """One `chat_messages[]` item of history_messages (fragments form)."""
    record: dict[str, Any] = {
        "message_id": message.message_id, "parent_id": message.parent_id, "model": "", "role": message.role,
        "thinking_enabled": message.thinking_enabled, "ban_edit": False, "ban_regenerate": False,
        "status": message.status, "incomplete_message": None, "files": [], "feedback": None,
        "inserted_at": message.inserted_at, "search_enabled": message.search_enabled,
    }
    if message.role == "USER":
        record["accumulated_token_usage"] = (len(message.prompt) + 1) // 2
        record["fragments"] = [{"id": 1, "type": "REQUEST", "content": message.prompt}]
        return record
    turn: Turn = message.turn
    reasoning, content = turn.writer.texts()
    fragments: list[dict[str, Any]] = []
    if turn.meta.search:
        fragments.append({"id": 1, "type": "SEARCH", "status": "FINISHED", "content": None,
                          "queries": [{"query": q} for q in turn.reply.queries], "results": turn.reply.results})
    if reasoning:
        fragments.append({"id": len(fragments) + 2, "type": "THINK", "content": reasoning, "references": [],
                          "stage_id": 1})
    fragments.append({"id": len(fragments) + 2, "type": "RESPONSE", "content": content, "references": [],
                      "stage_id": 1})
    record["accumulated_token_usage"] = turn.usage
    record["fragments"] = fragments
    return record


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; its `SimState` is at `app.state.sim`."""
    state = SimState(config or SimulatorConfig())
    api = SimulatorApi(state)
    routes = [
        Route("/api/v0/users/login", api.login, methods=["POST"]),
        Route("/api/v0/users/current", api.current, methods=["GET"]),
        Route("/api/v0/chat_session/create", api.create_session, methods=["POST"]),
        Route("/api/v0/chat_session/delete", api.delete_session, methods=["POST"]),
        Route("/api/v0/chat_session/delete_all", api.delete_all, methods=["POST"]),
        Route("/api/v0/chat_session/fetch_page", api.fetch_page, methods=["GET"]),
        Route("/api/v0/chat/history_messages", api.history_messages, methods=["GET"]),
        Route("/api/v0/chat/create_pow_challenge", api.create_pow_challenge, methods=["POST"]),
        Route(COMPLETION_PATH, api.completion, methods=["POST"]),
        Route(CONTINUE_PATH, api.continue_, methods=["POST"]),
        Route("/api/v0/chat/stop_stream", api.stop_stream, methods=["POST"]),
        Route("/api/v0/client/settings", functools.partial(late2026.settings_endpoint, state=state), methods=["GET"]),
        *FileEndpoints(api).routes(),
        *control.routes(state),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(late2026.ClientVersionGate, state=state)  # the 40005 gate (late-2026 profile)
    app.state.sim = state
    return app
