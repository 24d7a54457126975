"""Async client for DeepSeek's web-chat API (docs/protocol.md): the only module that talks HTTP upstream.

It knows endpoints, bodies, error classification and timeouts; the bytes travel through a `Transport`
(transport.py): curl_cffi with a browser TLS fingerprint by default, or an ASGI app in-process (the
simulator in protocol tests) — only the base URL and the transport differ. It does not know accounts,
pools or OpenAI. Non-streaming calls raise `UpstreamFailure`;
streams never raise for upstream trouble — they end with an `UpstreamError` event — so the runner
handles one shape of failure per kind of call.

Secrets (tokens, passwords, proxy credentials, `x-ds-pow-response`) never appear in log lines or in
error messages: logs carry method, path, status and latency only, and every message built from a
transport error is scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from ..pacing import LoopPacer
from .decode import StreamDecoder
from .errors import ErrorKind, UpstreamFailure, classify_http
from .events import UpstreamError, UpstreamEvent
from .gate import SETTING_HINT, VersionGate
from .modes import ModelModes, parse_model_settings
from .pow import PowChallenge, PowError, PowUnsolvable, encode_pow_response, solve_async
from .profile import ClientProfile, Identity
from .proxy_url import redact_proxy
from .transport import (
    Method,
    ResponseStream,
    Timeouts,
    Transport,
    TransportError,
    TransportErrorKind,
)
from .transport_curl import CurlTransport

log = logging.getLogger("deepseek2api.upstream")
_DECODE_SLICE = 16 * 1024  # bytes of upstream body decoded at a time (the loop may run between two)

PATH_LOGIN = "/api/v0/users/login"
PATH_CURRENT_USER = "/api/v0/users/current"
PATH_CREATE_SESSION = "/api/v0/chat_session/create"
PATH_DELETE_SESSION = "/api/v0/chat_session/delete"
PATH_POW_CHALLENGE = "/api/v0/chat/create_pow_challenge"
PATH_COMPLETION = "/api/v0/chat/completion"
PATH_CONTINUE = "/api/v0/chat/continue"
PATH_STOP_STREAM = "/api/v0/chat/stop_stream"
PATH_MODEL_SETTINGS = "/api/v0/client/settings?scope=model"

MAX_ERROR_BODY = 1 << 20  # an error answer is a small JSON envelope or a WAF page; never buffer more


def _proxy_secrets(proxy: str | None) -> list[str]:
    """Credential strings of a proxy URL, raw and percent-decoded, for scrubbing messages."""
    if not proxy:
        return []
    secrets = [proxy]
    try:
        parts = urlsplit(proxy)
    except ValueError:
        return secrets
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        secrets.append(userinfo)
        for piece in userinfo.split(":", 1):
            secrets.extend((piece, unquote(piece)))
    return secrets


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (longest first) with `***`; short fragments are skipped to keep text readable."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Header dict where `extra` overrides `base` case-insensitively (one line per name)."""
    merged: dict[str, tuple[str, str]] = {k.lower(): (k, v) for k, v in base.items()}
    for key, value in extra.items():
        merged[key.lower()] = (key, value)
    return dict(merged.values())


def _biz_data(envelope: Any) -> Mapping[str, Any]:
    """`data.biz_data` of a success envelope (or `data` itself for the pre-2025 unwrapped shape)."""
    data = envelope.get("data") if isinstance(envelope, Mapping) else None
    if not isinstance(data, Mapping):
        return {}
    biz = data.get("biz_data")
    if isinstance(biz, Mapping):
        return biz
    return {} if "biz_code" in data else data


def _succeeded(task: asyncio.Future[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _protocol(message: str) -> UpstreamFailure:
    return UpstreamFailure(UpstreamError(ErrorKind.PROTOCOL, message))


class _IdleWatchdog:
    """The idle timeout of one stream: `TimeoutError` when upstream stays silent for `idle` seconds
    while the stream waits for it.

    One timer per idle period, re-armed lazily, instead of an `asyncio.timeout` per chunk: on the
    hot path (one chunk per token) the per-chunk timeout was one of the larger costs of forwarding a
    chunk (a timer handle, a task lookup and, on Python 3.11, a getpid() syscall each time).
    """

    __slots__ = ("_guard", "_timer", "idle", "loop", "waiting_since")

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.waiting_since: float | None = None  # set while the stream awaits its next chunk
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Self:
        self.loop = asyncio.get_running_loop()
        self._guard = asyncio.timeout(None)
        await self._guard.__aenter__()
        self._timer = self.loop.call_at(self.loop.time() + self.idle, self._check)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._guard.__aexit__(exc_type, exc, tb)  # raises TimeoutError when it fired

    def _check(self) -> None:
        now = self.loop.time()
        since = self.waiting_since
        if since is not None and now - since >= self.idle - 0.001:
            self._timer = None
            self._guard.reschedule(now)  # cancels the waiting task; the guard raises TimeoutError
        else:  # data came (or the consumer holds the stream): the deadline moved
            self._timer = self.loop.call_at((since if since is not None else now) + self.idle, self._check)


class DeepSeekClient:
    """Endpoints of chat.deepseek.com (or the simulator: only `profile.base_url` differs).

    `transport` carries the bytes; by default a `CurlTransport` for the profile's fingerprint, with one
    connection pool per proxy whose `max_clients` bounds concurrent transfers per exit: size it to the
    account pool's capacity (curl_cffi's default of 10 silently queues). The client owns its transport
    and closes it in `aclose()`.
    """

    def __init__(self, profile: ClientProfile, *, max_clients: int = 256, transport: Transport | None = None,
                 on_pow_solved: Callable[[float], None] | None = None) -> None:
        self.profile = profile
        self.on_pow_solved = on_pow_solved  # seconds per solve, for the metrics (set by the composition root)
        self.max_clients = max(1, int(max_clients))
        self._own_transport = transport is None  # ours to rebuild when the fingerprint changes
        self.transport: Transport = transport or CurlTransport.for_profile(profile, max_clients=self.max_clients)
        self._retired: list[Transport] = []  # transports of an earlier identity, closed with the client
        self.gate = VersionGate()  # DeepSeek's client-version gate as met by this client (deepseek/gate.py)
        self._closed = False

    def set_identity(self, identity: Identity) -> None:
        """Present another identity from the next call on (the console's persona switch; no restart).

        Calls already running finish with the old one. A new TLS fingerprint gets a new transport; the
        old one is closed with the client, so its running streams are not cut."""
        profile = self.profile.with_identity(identity)
        if self._own_transport and profile.impersonate != self.profile.impersonate:
            self._retired.append(self.transport)
            self.transport = CurlTransport.for_profile(profile, max_clients=self.max_clients)
        self.profile = profile
        self.gate.reset()
        log.info("client identity is now %s", profile.describe())

    def _seen(self, error: UpstreamError) -> UpstreamError:
        """Every upstream error passes here: a version-gate refusal is recorded once for the whole
        gateway and told in terms of what to change."""
        if error.kind is not ErrorKind.CLIENT_TOO_OLD:
            return error
        described = self.profile.describe()
        self.gate.refused(described, error.message)
        return UpstreamError(ErrorKind.CLIENT_TOO_OLD,
                             f"DeepSeek refused the client version ({described}; {error.message}): {SETTING_HINT}")

    # ----------------------------------------------------------------------------------- transport

    def _open_transport(self) -> Transport:
        if self._closed:
            raise RuntimeError("DeepSeekClient is closed")
        return self.transport

    def _headers(self, token: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # authorization belongs to the call, never to the profile: a configured one is dropped
        headers = {k: v for k, v in self.profile.headers.items() if k.lower() != "authorization"}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"  # the wire format, not client identity
        add: dict[str, str] = dict(extra or {})
        if token is not None:
            if any(c in token for c in "\r\n\0"):
                raise UpstreamFailure(UpstreamError(ErrorKind.TOKEN_INVALID, "token contains a control character"))
            add["authorization"] = f"Bearer {token}"
        return _merge_headers(headers, add)

    def _referer(self, session_id: str) -> str:
        return self.profile.url(f"/a/chat/s/{session_id}")

    def _network_error(self, method: str, path: str, exc: TransportError | TimeoutError, proxy: str | None,
                       secrets: Iterable[str | None]) -> UpstreamError:
        if isinstance(exc, TransportError) and exc.kind is TransportErrorKind.SETUP:
            return UpstreamError(ErrorKind.PROTOCOL, f"{method} {path}: {exc.message}")
        detail = exc.message if isinstance(exc, TransportError) else "timed out"
        via = f" (via proxy {redact_proxy(proxy)})" if proxy else ""  # already safe: scrubbing it would mask it
        # only the transport's text can carry a secret; scrubbing the path would turn a user name "user"
        # into "/***s/login"
        text = f"{method} {path}: {_scrub(detail, [*secrets, *_proxy_secrets(proxy)])}{via}"
        return UpstreamError(ErrorKind.NETWORK, text)

    def _call_timeouts(self) -> Timeouts:
        """(connect, rest) for a whole non-streaming call bounded by `request_timeout`."""
        connect = min(self.profile.connect_timeout, self.profile.request_timeout)
        return Timeouts(connect, max(self.profile.request_timeout - connect, 0.001))

    async def _call(self, method: Method, path: str, *, token: str | None = None, body: Any = None,
                    proxy: str | None = None, login: bool = False,
                    secrets: Iterable[str | None] = (), headers: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        """One call → the success envelope; every failure → `UpstreamFailure`.

        `body` is sent as JSON, except `bytes`, which go as they are (file uploads: multipart, with
        their own Content-Type in `headers`).
        """
        secrets = [token, *secrets]
        transport = self._open_transport()
        headers = self._headers(token, headers)
        if isinstance(body, bytes):
            data: bytes | None = body
        else:
            data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            # the transport enforces the timeout itself; the asyncio guard only covers a wedged event source
            async with asyncio.timeout(self.profile.request_timeout + 5.0):
                response = await transport.request(method, self.profile.url(path), headers=headers, body=data,
                                                   proxy=proxy, timeouts=self._call_timeouts())
        except (TransportError, TimeoutError) as exc:
            log.debug("%s %s failed after %.0f ms", method, path, (time.monotonic() - started) * 1000)
            raise UpstreamFailure(self._network_error(method, path, exc, proxy, secrets)) from None
        log.debug("%s %s -> %s in %.0f ms", method, path, response.status, (time.monotonic() - started) * 1000)
        content = response.content
        error = classify_http(response.status, response.headers, content, login=login)
        if error is not None:
            raise UpstreamFailure(self._seen(error))
        try:
            envelope = json.loads(content)
        except ValueError:  # classify_http already rejects non-JSON; keep the guard local
            raise _protocol(f"{method} {path}: body is not JSON") from None
        if not isinstance(envelope, Mapping):  # classify_http lets only a JSON object through; keep it local too
            raise _protocol(f"{method} {path}: body is not a JSON object")
        return envelope

    # ------------------------------------------------------------------------------- JSON endpoints

    async def login(self, *, password: str, email: str | None = None, mobile: str | None = None,
                    device_id: str, proxy: str | None = None, area_code: str | None = None) -> str:
        """Password login (§2.1) → token. Exactly one of `email` / `mobile`."""
        if bool(email) == bool(mobile):
            raise ValueError("login needs exactly one of email or mobile")
        body: dict[str, Any]
        if email:
            body = {"email": email, "password": password, "device_id": device_id, "os": self.profile.login_os}
        else:
            body = {"mobile": mobile, "area_code": area_code, "password": password, "device_id": device_id,
                    "os": self.profile.login_os}
        envelope = await self._call("POST", PATH_LOGIN, body=body, proxy=proxy, login=True, secrets=[password])
        user = _biz_data(envelope).get("user")
        token = user.get("token") if isinstance(user, Mapping) else None
        if not isinstance(token, str) or not token:
            raise _protocol("login answer carries no data.biz_data.user.token")
        return token

    async def current_user(self, token: str, *, proxy: str | None = None) -> dict[str, Any]:
        """`users/current` (§2.2): the user object; doubles as a token check."""
        envelope = await self._call("GET", PATH_CURRENT_USER, token=token, proxy=proxy)
        return dict(_biz_data(envelope))

    async def create_session(self, token: str, *, proxy: str | None = None) -> str:
        """New chat session (§2.3) → chat_session_id (accepts the old and the 2026 answer shape)."""
        envelope = await self._call("POST", PATH_CREATE_SESSION, token=token, body={"agent": "chat"}, proxy=proxy)
        biz = _biz_data(envelope)
        nested = biz.get("chat_session")
        session_id = nested.get("id") if isinstance(nested, Mapping) else None
        session_id = session_id or biz.get("id")
        if not isinstance(session_id, str) or not session_id:
            raise _protocol("chat_session/create answer carries no session id")
        return session_id

    async def model_settings(self, token: str, *, proxy: str | None = None) -> ModelModes:
        """What the account's web settings say about the modes (expert, vision); see deepseek/modes.py.

        The answer's shape is not public, so it is read tolerantly: an unknown shape gives "unknown"
        for every mode, never an error. Upstream failures (token, network …) raise `UpstreamFailure`."""
        envelope = await self._call("GET", PATH_MODEL_SETTINGS, token=token, proxy=proxy)
        return parse_model_settings(envelope)

    async def create_pow_challenge(self, token: str, target_path: str, *, proxy: str | None = None) -> PowChallenge:
        """A PoW challenge bound to `target_path` (§2.4)."""
        envelope = await self._call("POST", PATH_POW_CHALLENGE, token=token, body={"target_path": target_path},
                                    proxy=proxy)
        raw = _biz_data(envelope).get("challenge")
        if not isinstance(raw, Mapping):
            raise _protocol("create_pow_challenge answer carries no challenge")
        try:
            return PowChallenge.from_dict(dict(raw))
        except (PowError, KeyError, TypeError, ValueError) as exc:
            raise _protocol(f"malformed PoW challenge: {exc}") from None

    async def pow_header(self, token: str, target_path: str, *, proxy: str | None = None) -> str:
        """Challenge + solve (in a thread) + encode → the `x-ds-pow-response` value for `target_path`."""
        header, _ = await self.solved_pow(token, target_path, proxy=proxy)
        return header

    async def solved_pow(self, token: str, target_path: str, *,
                         proxy: str | None = None) -> tuple[str, PowChallenge]:
        """`pow_header` and the challenge it answers (its expiry tells how long the header stays valid)."""
        challenge = await self.create_pow_challenge(token, target_path, proxy=proxy)
        started = time.perf_counter()
        try:
            answer = await solve_async(challenge)
        except PowUnsolvable as exc:  # a fresh challenge may well be solvable: let the runner retry
            error = UpstreamError(ErrorKind.POW_REJECTED, f"PoW challenge has no answer: {exc}")
            raise UpstreamFailure(error) from None
        except PowError as exc:
            raise _protocol(f"PoW challenge rejected by the solver: {exc}") from None
        if self.on_pow_solved is not None:
            self.on_pow_solved(time.perf_counter() - started)
        return encode_pow_response(challenge, answer, target_path), challenge

    async def prepare_completion(self, token: str, *, proxy: str | None = None) -> tuple[str, str]:
        """(session_id, PoW header for a completion): both upstream calls run concurrently.

        On the first failure the other call is cancelled and that failure is raised; a session that
        was created all the same is deleted again, so failed attempts leave no chats in the web history.
        """
        tasks = (
            asyncio.ensure_future(self.create_session(token, proxy=proxy)),
            asyncio.ensure_future(self.pow_header(token, PATH_COMPLETION, proxy=proxy)),
        )
        session_task, pow_task = tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pow_task.cancel()  # no-op when finished
            # A session request already on its way is let finish (bounded by its own timeout): cancelling
            # it would not stop upstream from creating the chat, only keep us from deleting it.
            await asyncio.wait(tasks)
            if _succeeded(session_task) and not _succeeded(pow_task):
                await self._forget_session(token, session_task.result(), proxy)
        # retrieve every exception (none is reported as lost), raise the first
        failures = [failure for task in tasks if not task.cancelled() and (failure := task.exception()) is not None]
        if failures:
            raise failures[0]
        session_id, header = (task.result() for task in tasks)
        return session_id, header

    async def _forget_session(self, token: str, session_id: str, proxy: str | None) -> None:
        """Best-effort delete of a session nobody will use (bounded; failures only logged)."""
        try:
            async with asyncio.timeout(self.profile.request_timeout):
                await self.delete_session(token, session_id=session_id, proxy=proxy)
        except (UpstreamFailure, TimeoutError) as exc:
            log.debug("could not delete an unused chat session: %s", exc)

    async def stop_stream(self, token: str, *, session_id: str, response_message_id: int,
                          proxy: str | None = None) -> None:
        """Ask upstream to stop generating (§2.6); raises `UpstreamFailure` on error."""
        await self._call("POST", PATH_STOP_STREAM, token=token, proxy=proxy,
                         body={"chat_session_id": session_id, "response_message_id": response_message_id})

    async def delete_session(self, token: str, *, session_id: str, proxy: str | None = None) -> None:
        """Delete one chat session (§2.7); raises `UpstreamFailure` on error."""
        await self._call("POST", PATH_DELETE_SESSION, token=token, proxy=proxy,
                         body={"chat_session_id": session_id})

    # ------------------------------------------------------------------------------------- streams

    async def completion(self, token: str, *, session_id: str, prompt: str, pow_header: str, thinking: bool,
                         search: bool, model_type: str | None = "default", parent_message_id: int | None = None,
                         proxy: str | None = None,
                         decoder: StreamDecoder | None = None,
                         ref_file_ids: Sequence[str] = ()) -> AsyncIterator[UpstreamEvent]:
        """Send one turn (§2.5, body §5.1) and yield its decoded events.

        `ref_file_ids` are uploads already parsed (status SUCCESS, see files.py) the turn refers to.

        Pass your own `decoder` when the turn may need `continue_stream`: the continue rounds must be
        decoded by the same decoder so their repeated snapshot is not emitted twice.
        """
        body: dict[str, Any] = {
            "chat_session_id": session_id,
            "parent_message_id": parent_message_id,
            "model_type": model_type,
            "prompt": prompt,
            "ref_file_ids": list(ref_file_ids),
            "thinking_enabled": bool(thinking),
            "search_enabled": bool(search),
            "preempt": False,
        }
        async for event in self._stream(PATH_COMPLETION, token, body, session_id=session_id,
                                        pow_header=pow_header, proxy=proxy, decoder=decoder or StreamDecoder()):
            yield event

    async def continue_stream(self, token: str, *, session_id: str, message_id: int, pow_header: str,
                              proxy: str | None = None,
                              decoder: StreamDecoder | None = None) -> AsyncIterator[UpstreamEvent]:
        """Continue an INCOMPLETE reply (§2.6); `pow_header` must be minted for `PATH_CONTINUE`.

        With `decoder` (the one the completion used), this method calls `decoder.begin_continue_round()`
        itself, so only text beyond what was already emitted comes out. Without one, a fresh decoder
        is used and the round's whole snapshot is emitted as new text.
        """
        if decoder is None:
            decoder = StreamDecoder()
        else:
            decoder.begin_continue_round()
        body = {"chat_session_id": session_id, "message_id": message_id, "fallback_to_resume": True}
        async for event in self._stream(PATH_CONTINUE, token, body, session_id=session_id,
                                        pow_header=pow_header, proxy=proxy, decoder=decoder):
            yield event

    async def _open_stream(self, path: str, headers: Mapping[str, str], data: bytes,
                           proxy: str | None) -> ResponseStream:
        """POST and wait (at most `first_byte_timeout`) for the answer to begin.

        The transport ends the transfer when the wait is cancelled (timeout, or our caller is cancelled),
        so nothing keeps running upstream once the lease on the account goes back.
        """
        profile = self.profile
        transport = self._open_transport()
        timeouts = Timeouts(profile.connect_timeout, max(profile.first_byte_timeout, profile.idle_timeout))
        try:
            async with asyncio.timeout(profile.first_byte_timeout):
                return await transport.open_stream("POST", profile.url(path), headers=headers, body=data,
                                                   proxy=proxy, timeouts=timeouts)
        except TimeoutError:
            message = f"POST {path}: no response from upstream within {profile.first_byte_timeout:g} s"
            raise UpstreamFailure(UpstreamError(ErrorKind.NETWORK, message)) from None

    async def _stream(self, path: str, token: str, body: Mapping[str, Any], *, session_id: str, pow_header: str,
                      proxy: str | None, decoder: StreamDecoder) -> AsyncIterator[UpstreamEvent]:
        secrets = [token, pow_header, *_proxy_secrets(proxy)]
        started = time.monotonic()
        response: ResponseStream | None = None
        try:
            try:
                headers = self._headers(token, {"x-ds-pow-response": pow_header, "referer": self._referer(session_id)})
                data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
                response = await self._open_stream(path, headers, data, proxy)
            except UpstreamFailure as failure:
                yield self._seen(failure.error)
                return
            except TransportError as exc:
                log.debug("POST %s failed after %.0f ms", path, (time.monotonic() - started) * 1000)
                yield self._network_error("POST", path, exc, proxy, secrets)
                return
            status = response.status
            log.debug("POST %s -> %s in %.0f ms", path, status, (time.monotonic() - started) * 1000)
            content_type = (response.headers.get("content-type") or "").lower()
            is_stream = status == 200 and (not content_type or "text/event-stream" in content_type)
            if not is_stream:
                yield self._seen(await self._error_answer(path, response, content_type, proxy, secrets))
                return
            self.gate.passed()
            async with contextlib.aclosing(self._decode(path, response, decoder, proxy, secrets)) as events:
                async for event in events:
                    yield self._seen(event) if isinstance(event, UpstreamError) else event
        finally:
            if response is not None:
                await response.aclose()  # ends the transfer now: never drains an unwanted reply
            log.debug("POST %s stream closed after %.0f ms", path, (time.monotonic() - started) * 1000)

    async def _decode(self, path: str, response: ResponseStream, decoder: StreamDecoder, proxy: str | None,
                      secrets: Iterable[str | None]) -> AsyncGenerator[UpstreamEvent]:
        """Body chunks → decoder → events, with the idle timeout between chunks."""
        idle = self.profile.idle_timeout
        chunks = aiter(response)
        pacer = LoopPacer()  # chunks already buffered complete every await at once: yield now and then
        try:
            async with _IdleWatchdog(idle) as watchdog:
                while True:
                    watchdog.waiting_since = watchdog.loop.time()
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    finally:
                        watchdog.waiting_since = None
                    # A large buffered chunk is decoded 16 KiB at a time, yielding every 5 ms, so a fast
                    # upstream's ~1 MB reply does not hold the event loop for seconds.
                    for at in range(0, len(chunk), _DECODE_SLICE):
                        await pacer.tick()
                        for event in decoder.feed(chunk[at:at + _DECODE_SLICE] if len(chunk) > _DECODE_SLICE
                                                  else chunk):
                            yield event
                            if isinstance(event, UpstreamError):
                                return
        except (TransportError, TimeoutError) as exc:
            if decoder.finished_status is None:
                if isinstance(exc, TimeoutError):
                    yield UpstreamError(ErrorKind.NETWORK, f"no data from upstream for {idle:g} s")
                else:
                    yield self._network_error("POST", path, exc, proxy, secrets)
                return
            # else: the reply was complete; a broken tail changes nothing
        for event in decoder.close():
            yield event

    async def _error_answer(self, path: str, response: ResponseStream, content_type: str, proxy: str | None,
                            secrets: Iterable[str | None]) -> UpstreamError:
        """A non-SSE answer to a stream request: read (bounded) and classify it."""
        body: bytearray = bytearray()
        chunks = aiter(response)
        try:
            while len(body) < MAX_ERROR_BODY:
                async with asyncio.timeout(self.profile.idle_timeout):
                    chunk = await anext(chunks)
                body += chunk
        except StopAsyncIteration:
            pass
        except (TransportError, TimeoutError) as exc:
            if not body:
                return self._network_error("POST", path, exc, proxy, secrets)
        status = response.status
        error = classify_http(status, response.headers, bytes(body[:MAX_ERROR_BODY]))
        if error is not None:
            return error
        shown = content_type or "no content type"
        return UpstreamError(ErrorKind.PROTOCOL, f"HTTP {status}: expected text/event-stream, got {shown}")

    # ------------------------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the transport (and with it every connection). The client is unusable after."""
        if self._closed:
            return
        self._closed = True
        for retired in self._retired:
            await retired.aclose()
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
