"""The admin API under `/admin/api/…`: views of the pool, actions on it, the live request tail.

Plain Starlette routes (`console_routes()`), so the composition root can add them to any app and the
tests can mount them on a bare one. Every route checks the admin key first; every action writes one
audit line (key name, action, target — never a password, token or prompt); no response carries a
password or token (the backend's views are masked by construction).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..dialect import error_response
from ..errors import ApiError, bad_request, not_found
from .auth import AdminAuth
from .backend import AccountView, AdminBackend, AdminError, AdminErrorKind
from .bulk_import import ImportLine, ImportTooLarge, LineStatus, parse_import
from .page import page_routes
from .requestlog import RequestLog
from .upstream import UpstreamPanel

logger = logging.getLogger(__name__)
audit_log = logging.getLogger(__name__ + ".audit")

MAX_PROMPT_CHARS = 20_000
MAX_JSON_BYTES = 1_000_000
TAIL_HEARTBEAT = 15.0  # seconds between keep-alive comments on the live tail
_ERROR_STATUS = {AdminErrorKind.NOT_FOUND: 404, AdminErrorKind.CONFLICT: 409, AdminErrorKind.INVALID: 400,
                 AdminErrorKind.UNAVAILABLE: 503}
_NO_STORE = {"cache-control": "no-store"}

_T = TypeVar("_T")
Handler = Callable[[Request, str], Awaitable[Response]]


def admin_error(request: Request, error: ApiError) -> Response:
    """The request's dialect (api/dialect.py), with its request id, never cached (the keys API answers so too)."""
    response = error_response(request, error)
    response.headers.update(_NO_STORE)
    return response


def _json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_NO_STORE)


def _account(view: AccountView) -> dict[str, Any]:
    return asdict(view)


async def json_object_body(request: Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The body as a JSON object (empty → `{}`); 413 over `limit` bytes, 400 for anything but an object."""
    raw = await request.body()
    if len(raw) > limit:
        raise ApiError(413, f"The request body is larger than {limit} bytes.", "invalid_request_error",
                       None, "request_too_large")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.", code="invalid_json")
    return data


class AdminApi:
    """The handlers, bound to one backend, key check and request log."""

    def __init__(self, backend: AdminBackend, auth: AdminAuth, requests: RequestLog, *,
                 clock: Callable[[], float] = time.time, upstream: UpstreamPanel | None = None) -> None:
        self.backend = backend
        self.auth = auth
        self.requests = requests
        self.clock = clock
        self.upstream = upstream

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, run, and turn refusals into answers (never a 500 for a known failure)."""

        async def endpoint(request: Request) -> Response:
            try:
                key_name = self.auth.check(request.headers)
            except ApiError as error:
                return admin_error(request, error)
            try:
                return await handler(request, key_name)
            except ApiError as error:
                return admin_error(request, error)
            except AdminError as error:
                status = _ERROR_STATUS[error.kind]
                kind = "invalid_request_error" if status < 500 else "server_error"
                return admin_error(request, ApiError(status, error.message, kind, None, error.kind.value))

        return endpoint

    def audit(self, key_name: str, action: str, target: str, result: str) -> None:
        audit_log.info("admin key=%s action=%s target=%s result=%s", key_name, action, target, result)

    # ---- views ------------------------------------------------------------------------

    async def whoami(self, request: Request, key_name: str) -> Response:
        return _json({"key_name": key_name, "dedicated_admin_keys": self.auth.dedicated})

    async def summary(self, request: Request, key_name: str) -> Response:
        await self.backend.refresh()
        pool = self.backend.summary()
        cluster = self.backend.cluster()
        traffic = self.requests.stats()
        states: dict[str, int] = {}
        for view in self.backend.accounts():
            states[view.state] = states.get(view.state, 0) + 1
        return _json({
            "now": self.clock(),
            "mode": pool.mode,
            "in_flight": pool.in_flight,
            "capacity": pool.capacity,
            "queue_depth": pool.queue_depth,
            "queue_limit": pool.queue_limit,
            "window": traffic.window,
            "requests": traffic.requests,
            "requests_per_second": traffic.requests_per_second,
            "error_rate": traffic.error_rate,
            "ttft_p50": traffic.ttft_p50,
            "ttft_p95": traffic.ttft_p95,
            "accounts_by_state": states,
            "cluster": asdict(cluster) if cluster is not None else None,
            "version_gate": self.upstream.gate() if self.upstream is not None else None,  # the console's banner
        })

    async def cluster(self, request: Request, key_name: str) -> Response:
        """The cluster panel alone: `{"mode": "single"}` or the shared pool's replicas, queue and leases."""
        await self.backend.refresh()
        cluster = self.backend.cluster()
        if cluster is None:
            return _json({"now": self.clock(), "mode": "single"})
        return _json({"now": self.clock(), "mode": "cluster", **asdict(cluster)})

    async def accounts(self, request: Request, key_name: str) -> Response:
        await self.backend.refresh()
        return _json({"now": self.clock(), "accounts": [_account(v) for v in self.backend.accounts()]})

    async def proxies(self, request: Request, key_name: str) -> Response:
        await self.backend.refresh()
        return _json({"now": self.clock(), "proxies": [asdict(v) for v in self.backend.proxies()]})

    async def models(self, request: Request, key_name: str) -> Response:
        return _json({"models": list(self.backend.models())})

    async def recent(self, request: Request, key_name: str) -> Response:
        limit = _int_param(request, "limit", 100, 0, 1000)
        return _json({"requests": [e.as_dict() for e in self.requests.recent(limit)]})

    async def tail(self, request: Request, key_name: str) -> Response:
        """Server-sent events: the last `backlog` entries, then each new one as it is recorded.
        `max_events` ends the stream after that many (for scripts and tests)."""
        backlog = _int_param(request, "backlog", 50, 0, 500)
        limit = _int_param(request, "max_events", 0, 0, 100_000) or None
        log = self.requests

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            async with log.tail() as queue:
                yield b"retry: 2000\n\n"
                for entry in log.recent(backlog):
                    yield _sse(entry.as_dict())
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                while limit is None or sent < limit:
                    try:
                        entry = await asyncio.wait_for(queue.get(), TAIL_HEARTBEAT)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield _sse(entry.as_dict())
                    sent += 1

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**_NO_STORE, "x-accel-buffering": "no"})

    # ---- account actions --------------------------------------------------------------

    async def test_account(self, request: Request, key_name: str) -> Response:
        account_id = request.path_params["account_id"]
        result = await self._acted(key_name, "test_account", account_id, self.backend.test_account(account_id))
        self.audit(key_name, "test_account", account_id, "ok" if result.ok else f"failed:{result.kind}")
        return _json(asdict(result))

    async def relogin(self, request: Request, key_name: str) -> Response:
        account_id = request.path_params["account_id"]
        result = await self._acted(key_name, "relogin", account_id, self.backend.relogin(account_id))
        self.audit(key_name, "relogin", account_id, "ok" if result.ok else f"failed:{result.kind}")
        return _json(asdict(result))

    async def clear_cooldown(self, request: Request, key_name: str) -> Response:
        account_id = request.path_params["account_id"]
        view = await self._acted(key_name, "clear_cooldown", account_id, self.backend.clear_cooldown(account_id))
        self.audit(key_name, "clear_cooldown", account_id, "ok")
        return _json({"account": _account(view)})

    async def disable(self, request: Request, key_name: str) -> Response:
        return await self._set_enabled(request, key_name, False)

    async def enable(self, request: Request, key_name: str) -> Response:
        return await self._set_enabled(request, key_name, True)

    async def _set_enabled(self, request: Request, key_name: str, enabled: bool) -> Response:
        account_id = request.path_params["account_id"]
        action = "enable" if enabled else "disable"
        view = await self._acted(key_name, action, account_id, self.backend.set_enabled(account_id, enabled))
        self.audit(key_name, action, account_id, "ok")
        return _json({"account": _account(view)})

    async def remove(self, request: Request, key_name: str) -> Response:
        account_id = request.path_params["account_id"]
        await self._acted(key_name, "remove_account", account_id, self.backend.remove_account(account_id))
        self.audit(key_name, "remove_account", account_id, "ok")
        return _json({"removed": account_id})

    async def set_token(self, request: Request, key_name: str) -> Response:
        """`{"token": "<value of userToken>"}`: checked upstream, kept, never shown again."""
        account_id = request.path_params["account_id"]
        token = (await json_object_body(request)).get("token")
        if not isinstance(token, str) or not token.strip():
            raise bad_request("`token` must be the `value` of `userToken` from the browser's local storage.",
                              "token")
        view = await self._acted(key_name, "set_token", account_id, self.backend.set_token(account_id, token))
        self.audit(key_name, "set_token", account_id, "ok")
        return _json({"account": _account(view)})

    async def probe(self, request: Request, key_name: str) -> Response:
        account_id = request.path_params["account_id"]
        report = await self._acted(key_name, "probe", account_id, self.backend.probe_account(account_id))
        self.audit(key_name, "probe", account_id, "ok" if report.get("ok") else f"failed:{report.get('error_kind')}")
        return _json(report)

    # ---- upstream identity ------------------------------------------------------------

    def _panel(self) -> UpstreamPanel:
        if self.upstream is None:
            raise not_found("This gateway has no upstream panel.")
        return self.upstream

    async def upstream_view(self, request: Request, key_name: str) -> Response:
        """The panel's state; `{"available": false}` for a console without one (the page hides the panel)."""
        if self.upstream is None:
            return _json({"available": False})
        return _json(self.upstream.view())

    async def set_identity(self, request: Request, key_name: str) -> Response:
        """`{"persona": "android", "version": "2.0.4", "headers": {…}}`: used from the next call on, kept."""
        panel = self._panel()
        body = await json_object_body(request)
        view = await self._acted(key_name, "set_identity", str(body.get("persona")), panel.set_identity(body))
        self.audit(key_name, "set_identity", view["sent"], "ok")
        return _json(view)

    async def reset_identity(self, request: Request, key_name: str) -> Response:
        view = await self._acted(key_name, "reset_identity", "config", self._panel().reset())
        self.audit(key_name, "reset_identity", view["sent"], "ok")
        return _json(view)

    async def import_accounts(self, request: Request, key_name: str) -> Response:
        """Bulk import: `{"text": "...", "dry_run": true}` → a verdict per line; adds the good ones
        unless `dry_run`. Lines already in the pool or repeated in the paste are reported, not added."""
        body = await json_object_body(request)
        text = body.get("text")
        dry_run = body.get("dry_run", False)
        if not isinstance(text, str) or not text.strip():
            raise bad_request("`text` must be the pasted accounts (login:password lines or JSON).", "text")
        if not isinstance(dry_run, bool):
            raise bad_request("`dry_run` must be true or false.", "dry_run")
        try:
            verdicts = parse_import(text, [v.id for v in self.backend.accounts()])
        except ImportTooLarge as exc:
            raise bad_request(str(exc), "text", "too_many_accounts") from None
        good = [v for v in verdicts if v.status is LineStatus.OK and v.account is not None]
        if not dry_run and good:
            accounts = [v.account for v in good if v.account is not None]
            await self._acted(key_name, "import_accounts", f"{len(accounts)} accounts",
                              self.backend.add_accounts(accounts))
            added = {id(v) for v in good}
            verdicts = [ImportLine(v.line, LineStatus.ADDED, v.id) if id(v) in added else v
                        for v in verdicts]
        counts: dict[str, int] = {}
        for verdict in verdicts:
            counts[verdict.status.value] = counts.get(verdict.status.value, 0) + 1
        summary = ",".join(f"{k}={n}" for k, n in sorted(counts.items()))
        self.audit(key_name, "import_accounts_dry_run" if dry_run else "import_accounts", f"{len(verdicts)} lines",
                   summary or "empty")
        return _json({"dry_run": dry_run, "counts": counts, "lines": [v.as_dict() for v in verdicts]})

    # ---- proxies and tester -----------------------------------------------------------

    async def test_proxy(self, request: Request, key_name: str) -> Response:
        try:
            index = int(request.path_params["index"])
        except ValueError:
            raise not_found("No such proxy (the index must be a number).") from None
        target = f"proxy#{index}"
        result = await self._acted(key_name, "test_proxy", target, self.backend.test_proxy(index))
        self.audit(key_name, "test_proxy", target, "ok" if result.ok else f"failed:{result.kind}")
        return _json(asdict(result))

    async def tester(self, request: Request, key_name: str) -> Response:
        body = await json_object_body(request)
        model, prompt, account_id = body.get("model"), body.get("prompt"), body.get("account_id") or None
        if not isinstance(model, str) or model not in self.backend.models():
            raise bad_request("`model` must be one of the gateway's models.", "model", "model_not_found")
        if not isinstance(prompt, str) or not prompt.strip():
            raise bad_request("`prompt` must be a non-empty string.", "prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise bad_request(f"`prompt` is longer than {MAX_PROMPT_CHARS} characters.", "prompt")
        if account_id is not None and not isinstance(account_id, str):
            raise bad_request("`account_id` must be a string.", "account_id")
        target = account_id or "any account"
        reply = await self._acted(key_name, "tester", target, self.backend.try_prompt(model, prompt, account_id))
        self.audit(key_name, "tester", target, "ok" if reply.ok else "failed")
        return _json(asdict(reply))

    async def _acted(self, key_name: str, action: str, target: str, work: Awaitable[_T]) -> _T:
        """Run a backend action; a refusal is audited before it becomes the answer."""
        try:
            return await work
        except AdminError as error:
            self.audit(key_name, action, target, f"refused:{error.kind.value}")
            raise


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"`{name}` must be an integer.", name) from None
    if not low <= value <= high:
        raise bad_request(f"`{name}` must be between {low} and {high}.", name)
    return value


def _sse(data: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def console_routes(backend: AdminBackend, auth: AdminAuth, requests: RequestLog, *,
                   clock: Callable[[], float] = time.time, prefix: str = "/admin",
                   upstream: UpstreamPanel | None = None) -> list[BaseRoute]:
    """Every console route: the page and its assets at `prefix`, the API at `prefix`/api/…"""
    api = AdminApi(backend, auth, requests, clock=clock, upstream=upstream)
    g = api.guarded
    base = f"{prefix}/api"
    account = f"{base}/accounts/{{account_id}}"
    routes: Sequence[tuple[str, Handler, str]] = (
        ("/whoami", api.whoami, "GET"),
        ("/summary", api.summary, "GET"),
        ("/cluster", api.cluster, "GET"),
        ("/accounts", api.accounts, "GET"),
        ("/accounts/import", api.import_accounts, "POST"),
        ("/proxies", api.proxies, "GET"),
        ("/proxies/{index}/test", api.test_proxy, "POST"),
        ("/models", api.models, "GET"),
        ("/requests", api.recent, "GET"),
        ("/requests/stream", api.tail, "GET"),
        ("/tester", api.tester, "POST"),
        ("/upstream", api.upstream_view, "GET"),
        ("/upstream/identity", api.set_identity, "PUT"),
        ("/upstream/identity", api.reset_identity, "DELETE"),
    )
    out: list[BaseRoute] = [Route(base + path, g(handler), methods=[method]) for path, handler, method in routes]
    out += [
        Route(f"{account}/test", g(api.test_account), methods=["POST"]),
        Route(f"{account}/relogin", g(api.relogin), methods=["POST"]),
        Route(f"{account}/clear-cooldown", g(api.clear_cooldown), methods=["POST"]),
        Route(f"{account}/disable", g(api.disable), methods=["POST"]),
        Route(f"{account}/enable", g(api.enable), methods=["POST"]),
        Route(f"{account}/token", g(api.set_token), methods=["POST"]),
        Route(f"{account}/probe", g(api.probe), methods=["POST"]),
        Route(account, g(api.remove), methods=["DELETE"]),
    ]
    return out + page_routes(prefix)


__all__ = ["AdminApi", "console_routes"]
