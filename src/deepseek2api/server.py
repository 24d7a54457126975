"""The gateway application: settings → store, pool, client, runner → FastAPI app.

`create_app(settings)` is all a deployment needs (`app.py`, `api/index.py`, the CLI and the tests
call it). Start-up opens the state store and restores learned tokens and account states; shutdown
lets in-flight turns finish (up to `server.shutdown_grace`), returns their leases and flushes state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import __version__
from .api.auth import Authenticator, Caller
from .api.errors import NO_RETRY, ApiError
from .api.health import router as health_router
from .api.middleware import GatewayMiddleware
from .api.request_limits import request_limits
from .api.openai.router import router as openai_router
from .api.openai.serving import ChatCompletions
from .chat.request import ModelRegistry
from .chat.prewarm import TurnPrewarmer
from .chat.runner import LeaseSource, RunnerOptions, TurnRunner
from .chat.usage import warm_up as warm_up_tokenizer
from .deepseek.client import DeepSeekClient
from .deepseek.errors import ErrorKind, UpstreamFailure
from .deepseek.events import UpstreamError
from .logs import redactor
from .pool.accounts import AccountPool, PoolExhausted
from .pool.passthrough import PassthroughExhausted, PassthroughLeases
from .pool.proxies import ProxyPool
from .settings import AccountSettings, Settings
from .store import open_store
from .tuning import return_free_heap

log = logging.getLogger("deepseek2api.server")


class Gateway:
    """Everything a request needs, built once per process."""

    def __init__(self, settings: Settings, client: DeepSeekClient | None = None) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.models)
        for secret in [k.key for k in settings.keys] + [a.password for a in settings.accounts] \
                + [a.token for a in settings.accounts]:
            redactor.add(secret)
        self.authenticator = Authenticator([(k.name, k.key) for k in settings.keys],
                                           token_passthrough=settings.token_passthrough)
        capacity = max(16, len(settings.accounts) * settings.pool.per_account_concurrency * 2 + 8)
        self.client = client or DeepSeekClient(settings.profile(), max_clients=capacity)
        self.store = open_store(settings.state)
        self.proxies = ProxyPool.from_settings(settings)
        self.pool = AccountPool(settings.accounts, settings=settings.pool, store=self.store,
                                proxies=self.proxies, login=self.login_account)
        # pool.prewarm: idle accounts keep a session + solved PoW ready (chat/prewarm.py)
        self.prewarmer = TurnPrewarmer(self.pool, self.client, self.proxies,
                                       delete_session=settings.upstream.delete_session) \
            if settings.pool.prewarm else None
        self.runner = TurnRunner(self.client, RunnerOptions(
            max_failover=max(1, settings.pool.max_failover),
            max_continue_rounds=settings.upstream.max_continue_rounds,
            delete_session=settings.upstream.delete_session,
            citations=settings.output.citations,
        ), prepared=self.prewarmer)
        self.chat = ChatCompletions(self)
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()  # turns running on their own (strong refs)

    async def login_account(self, account: AccountSettings, proxy: str | None) -> str:
        """Log one configured account in (the pool calls this; so does `deepseek2api check`)."""
        if not account.password:
            raise UpstreamFailure(UpstreamError(ErrorKind.BAD_CREDENTIALS,
                                                "the account has no password configured, so it cannot log in again"))
        device_id = uuid.uuid5(uuid.NAMESPACE_URL, f"deepseek2api:{account.id}").hex  # stable per account
        token = await self.client.login(password=account.password, email=account.email, mobile=account.mobile,
                                        device_id=device_id, proxy=proxy, area_code=account.area_code)
        redactor.add(token)
        return token

    def leases_for(self, caller: Caller) -> LeaseSource:
        if caller.passthrough_token is not None:
            return PassthroughLeases(caller.passthrough_token, self.proxies)  # type: ignore[return-value]
        return self.pool  # type: ignore[return-value]

    def pool_error(self, exc: BaseException) -> ApiError | None:
        """The 429 for a pool that cannot serve now, with a Retry-After estimate and the reason."""
        if isinstance(exc, PoolExhausted):
            # No usable account at all (banned, bad credentials, none configured): retrying cannot help.
            headers = dict(NO_RETRY) if exc.reason == "none_usable" else {}
            return ApiError(429, exc.message, "rate_limit_error", None, f"pool_{exc.reason}",
                            retry_after=exc.retry_after, headers=headers)
        if isinstance(exc, PassthroughExhausted):
            return ApiError(401, str(exc), "invalid_request_error", None, "invalid_api_key")
        return None

    @contextlib.asynccontextmanager
    async def inflight(self) -> AsyncIterator[None]:
        """Count turns in progress, so shutdown can wait for them."""
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    @property
    def inflight_count(self) -> int:
        return self._inflight

    def track(self, task: "asyncio.Task[Any] | None") -> None:
        """Keep a turn's task alive until it ends, and let shutdown stop it."""
        if task is not None and not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        task = asyncio.get_running_loop().create_task(coro)
        self.track(task)
        return task

    async def start(self) -> None:
        await self.pool.start()
        await asyncio.to_thread(warm_up_tokenizer)
        return_free_heap()  # parsing tokenizer.json left ~20 MB of freed heap behind
        if self.prewarmer is not None:
            self.prewarmer.start()
        if not self.authenticator.has_keys and not self.settings.token_passthrough:
            log.warning("no API keys configured: every request will be refused with 401 (add `keys` to the config)")
        log.info("gateway ready: %d account(s), %d usable, upstream %s", len(self.settings.accounts),
                 self.pool.usable_count, self.settings.upstream.base_url)

    async def stop(self) -> None:
        grace = self.settings.server.shutdown_grace
        if self._inflight:
            log.info("waiting up to %g s for %d in-flight request(s)", grace, self._inflight)
            try:
                async with asyncio.timeout(grace):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("%d request(s) still running after %g s; stopping them", self._inflight, grace)
        running = [task for task in self._tasks if not task.done()]
        for task in running:
            task.cancel()  # each turn returns its lease and stops its upstream stream on the way out
        if running:
            await asyncio.wait(running, timeout=10)
        if self.prewarmer is not None:
            await self.prewarmer.stop()
        await self.pool.close()
        await self.store.close()
        await self.client.aclose()


def create_app(settings: Settings, *, client: DeepSeekClient | None = None,
               companion: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> FastAPI:
    """The ASGI app for `settings` (a fresh Gateway per app).

    `companion` is started before the gateway and stopped after it (the demo's simulator).
    """
    gateway = Gateway(settings, client=client)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with companion() if companion is not None else contextlib.nullcontext():
            await gateway.start()
            try:
                yield
            finally:
                await gateway.stop()

    app = FastAPI(title="DeepSeek2API", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
                  redirect_slashes=False)  # a slash redirect would echo the Host header (issue 17 item 7)
    app.state.gateway = gateway
    app.include_router(health_router)
    app.include_router(openai_router)
    app.add_exception_handler(ApiError, _api_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error_handler)  # type: ignore[arg-type]
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.server.max_body_bytes,
                       cors_origins=list(settings.server.cors_origins), limits=request_limits(settings.server))
    return app


def error_response(error: ApiError, request_id: str | None = None) -> Response:
    headers = error.all_headers()
    if request_id:
        headers["x-request-id"] = request_id
    return Response(error.body_bytes(), status_code=error.status, headers=headers, media_type="application/json")


async def _api_error_handler(request: Request, exc: ApiError) -> Response:
    return error_response(exc)


async def _http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        error = ApiError(404, f"Unknown route {request.method} {request.url.path}.", "invalid_request_error",
                         None, "unknown_route")
    elif exc.status_code == 405:
        error = ApiError(405, f"Method {request.method} is not allowed on {request.url.path}.",
                         "invalid_request_error", None, "method_not_allowed")
    else:
        error = ApiError(exc.status_code, str(exc.detail), "invalid_request_error", None, None)
    return error_response(error)


async def _validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
    return JSONResponse(ApiError(400, f"Invalid request: {first.get('msg', 'bad input')}", "invalid_request_error",
                                 where, "invalid_value").body(), status_code=400)
