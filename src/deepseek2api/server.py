"""The composition root: settings → store, pool, client, runner, serving objects → FastAPI app.

`create_app(settings)` is all a deployment needs (`app.py`, `api/index.py`, the CLI and the tests
call it). Every part is built here and handed its dependencies explicitly; nothing imports this
module back. Start-up opens the state store and restores learned tokens and account states;
shutdown lets in-flight turns finish (up to `server.shutdown_grace`), returns their leases and
flushes state.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from . import __version__
from .api import dialect
from .api.admin.auth import AdminAuth
from .api.admin.mount import admin_check, mount_console
from .api.admin.pool_backend import PoolBackend
from .api.admin.requestlog import RequestLog, RequestRecorder
from .api.admin.timeline import Timeline
from .api.admin.upstream import UpstreamPanel
from .api.anthropic.dialect import ANTHROPIC
from .api.anthropic.protocol import ClaudeModels
from .api.anthropic.router import anthropic_router
from .api.anthropic.serving import Messages
from .api.anthropic.signature import ThinkingSigner
from .api.auth import Authenticator, Caller
from .api.dialect import DialectTable
from .api.docs import install_docs
from .api.endpoint import SurfaceDeps
from .api.gemini import errors as gemini_errors
from .api.gemini.protocol import GeminiModels
from .api.gemini.router import gemini_router
from .api.gemini.serving import GenerateContent
from .api.health import health_router
from .api.keys.gate import KeyGate
from .api.keys.manager import KeyManager
from .api.keys.metrics import KeyMetrics
from .api.keys.page import keys_page_routes
from .api.keys.router import KeysApi, key_routes
from .api.metrics import GatewayMetrics
from .api.middleware import GatewayMiddleware
from .api.ollama import errors as ollama_errors
from .api.ollama.router import OllamaGate, ollama_router
from .api.ollama.serving import OllamaTurns
from .api.openai.router import openai_router
from .api.openai.serving import ChatCompletions
from .api.request_limits import request_limits
from .api.responses.router import responses_router
from .api.responses.serving import Responses
from .api.status import status_router
from .chat.attachments import AttachmentPolicy
from .chat.continuation import ContinueOptions, SessionBook
from .chat.exit_probe import probe_exit
from .chat.model_limits import ModelLimits
from .chat.prewarm import TurnPrewarmer
from .chat.runner import AccountSource, RunnerOptions, TurnRunner
from .chat.tracker import TurnTracker
from .chat.turn import ModelRegistry
from .chat.uploads import TurnUploads, UploadOptions
from .deepseek.client import DeepSeekClient
from .keys.directory import KeyDirectory
from .keys.rules import KeyRules
from .keys.usage import UsageLedger
from .pool.accounts import AccountPool
from .pool.interface import Pool
from .pool.login import AccountLogin, register_secrets
from .pool.passthrough import PassthroughLeases
from .pool.proxies import ProxyPool
from .settings import Settings
from .store import open_store
from .store.account_book import open_account_book
from .store.keys import open_key_book
from .store.responses import ResponseStore, StoreLimits, open_response_store
from .store.runtime_settings import open_runtime_settings
from .store.usage import UsageStore, open_usage_store

if TYPE_CHECKING:  # the shared pool and its console load the Redis client (~12 MB): only with cluster.redis_url
    from .api.admin.cluster_backend import ClusterBackend
    from .pool.shared import SharedPool

log = logging.getLogger(__name__)

# Which error dialect each route's clients speak (api/dialect.py); OpenAI's for every other route. A new
# surface whose clients expect another error shape adds its prefixes here.
DIALECTS = DialectTable([
    (gemini_errors.is_gemini_path, gemini_errors.GEMINI),  # /v1beta/…, /v1/models/{m}:{method}
    (ollama_errors.is_ollama_path, ollama_errors.OLLAMA),  # /api/… (even when off: a 404 it reads)
    ("/v1/messages", ANTHROPIC),  # Anthropic Messages and count_tokens
    ("/anthropic/", ANTHROPIC),
])


def open_usage(settings: Settings) -> UsageStore:
    """The usage counts: in Redis when replicas share a pool (docs/keys.md), else in the state file."""
    if settings.cluster.redis_url:
        from .pool.cluster import ClusterConfig
        from .store.usage_redis import RedisUsageStore

        return RedisUsageStore(settings.cluster.redis_url, ClusterConfig.from_settings(settings).prefix)
    return open_usage_store(settings.state.backend, settings.state.path)


def open_responses(settings: Settings) -> ResponseStore:
    """The response store: Redis under the cluster's prefix when replicas share a pool, else the state store's."""
    config = settings.responses
    limits = StoreLimits(config.max_response_bytes, config.max_key_bytes)
    if settings.cluster.redis_url:  # Redis (~12 MB) only when configured
        from .pool.cluster import ClusterConfig
        from .store.responses_redis import RedisResponseStore

        prefix = ClusterConfig.from_settings(settings).prefix
        return RedisResponseStore.from_url(settings.cluster.redis_url, prefix, config.ttl, limits)
    return open_response_store(settings.state.backend, settings.state.path, config.ttl, limits)


class Gateway:
    """The parts of one gateway process, built once, with their start-up and shutdown order.

    Only the composition root (and tests or tools that inspect a running gateway) hold this; the
    API routes get the parts they need, never this object.
    """

    def __init__(self, settings: Settings, client: DeepSeekClient | None = None) -> None:
        self.settings = settings
        register_secrets(settings)
        self.registry = ModelRegistry(settings.models)
        self.authenticator = Authenticator([(k.name, k.key) for k in settings.keys],
                                           token_passthrough=settings.token_passthrough)
        # keys for people (issue 23): each key's rules, what it used, and the gate every turn passes
        self.key_directory = KeyDirectory(KeyRules.from_settings(key) for key in settings.keys)
        # usage counts in Redis when replicas share a pool (docs/keys.md), else in the state file
        self.usage = UsageLedger(open_usage(settings), shared=bool(settings.cluster.redis_url))
        self.timeline = Timeline()
        self.key_gate = KeyGate(self.key_directory, self.usage, self.timeline)
        self.key_book = open_key_book(settings.state.backend, settings.state.path)
        self.keys = KeyManager(self.key_directory, self.key_book, self.authenticator)
        capacity = max(16, len(settings.accounts) * settings.pool.per_account_concurrency * 2 + 8)
        # the console: metrics and the live tail every surface reports to (api/observe.py)
        self.requests = RequestLog()
        self.metrics = GatewayMetrics(known_models=[name for name, _ in self.registry.names()],
                                      snapshot=lambda: self.console.gauges())
        if settings.metrics.per_key:  # series by key name, opt-in (api/keys/metrics.py)
            self.metrics.registry.register(KeyMetrics(self.usage, self.key_gate.limiter,
                                                      [name for name, _ in self.registry.names()]))
        self.recorder = RequestRecorder(self.metrics, self.requests)
        self.client = client or DeepSeekClient(settings.profile(), max_clients=capacity)
        self.client.on_pow_solved = self.metrics.pow_solved
        self.metrics.watch_upstream(self.client.gate)  # version-gate refusals, unknown stream shapes (issue 20)
        # the client identity, switchable from the console and kept in the state file (issue 20)
        self.runtime_settings = open_runtime_settings(settings.state.backend, settings.state.path)
        self.upstream = UpstreamPanel(self.client, settings.upstream.identity(), self.runtime_settings)
        self.store = open_store(settings.state)
        self.book = open_account_book(settings.state.backend, settings.state.path)  # accounts added at runtime
        self.proxies = ProxyPool.from_settings(settings, observer=self.metrics)
        self.login = AccountLogin(self.client)
        # cluster.redis_url: every replica shares one pool through Redis (pool/shared.py, docs/cluster.md);
        # chosen here once, from the config: nothing after this asks which pool it has (pool/interface.py)
        self.pool: Pool
        shared: SharedPool | None = None
        local: AccountPool | None = None
        if settings.cluster.redis_url:
            from .pool.cluster.membership import StoredMembership
            from .pool.shared import SharedPool  # Redis (~12 MB) only when configured

            # the marker that tells a fresh cluster from lost data needs a state file; memory state: none
            membership = StoredMembership(self.runtime_settings, settings.cluster.name) \
                if settings.state.backend != "memory" else None
            self.pool = shared = SharedPool(settings, self.login, observer=self.metrics, membership=membership)
        else:
            self.pool = local = AccountPool(settings.accounts, settings=settings.pool, store=self.store,
                                            proxies=self.proxies, login=self.login, observer=self.metrics)
        self.fair_use = local.fair_use if local is not None else None  # per-account fair use: in-process only
        # pool.prewarm: idle accounts keep a session + solved PoW ready (chat/prewarm.py); per replica, so
        # only with the in-process pool (a prewarmed turn must not outlive a shared lease)
        self.prewarmer = TurnPrewarmer(local, self.client, self.proxies,
                                       delete_session=settings.upstream.delete_session) \
            if settings.pool.prewarm and local is not None else None
        self.runner = TurnRunner(self.client, RunnerOptions.from_settings(settings), prepared=self.prewarmer,
                                 observer=self.metrics,
                                 uploads=TurnUploads(UploadOptions.from_settings(settings)),  # issue 14
                                 sessions=_session_book(settings))
        self.tracker = TurnTracker()
        self.response_store = open_responses(settings)  # in Redis with cluster.redis_url: shared by every replica
        # what every surface needs, once (api/endpoint.py); attachment limits are the same on every surface
        deps = SurfaceDeps(self.runner, self.registry, self.leases_for, self.tracker,
                           keepalive=settings.server.keepalive_interval, write_timeout=settings.server.write_timeout,
                           observer=self.recorder, files=AttachmentPolicy.from_settings(settings))
        self.responses = Responses(deps, self.response_store)
        self.chat = ChatCompletions(deps, usage_chunk=settings.output.usage_chunk)
        claude = settings.anthropic
        self.messages = Messages(deps, ClaudeModels(self.registry, claude.model_map, claude.default_model),
                                 ThinkingSigner(claude.signature_key))
        self.gemini_models = GeminiModels(self.registry, settings.gemini.model_map, settings.gemini.default_model)
        self.gemini = GenerateContent(deps, self.gemini_models)
        self.ollama = OllamaTurns(deps)
        # the console acts on the in-process pool, or on the shared one through Redis (cluster mode)
        exit_probe = functools.partial(probe_exit, self.client)
        self.console: PoolBackend | ClusterBackend
        self._before_pool: list[Callable[[], Awaitable[object]]] = []  # start-up steps before the pool starts
        if local is not None:
            backend = PoolBackend(local, self.proxies, self.runner, self.registry, self.book, observer=self.recorder,
                                  probe_exit=exit_probe, queue_limit=settings.pool.queue_size)
            self._before_pool.append(backend.load_runtime_accounts)  # accounts added from the console
            self.console = backend
        else:
            from .api.admin.cluster_backend import ClusterBackend  # with the shared pool only

            assert shared is not None
            self.console = ClusterBackend(shared, settings, self.runner, self.registry, observer=self.recorder,
                                          probe_exit=exit_probe)

    def leases_for(self, caller: Caller) -> AccountSource:
        """Where a caller's turn gets its account: the pool, or the caller's own token (passthrough)."""
        if caller.passthrough_token is not None:
            return PassthroughLeases(caller.passthrough_token, self.proxies)
        return self.key_gate.leases(caller, self.pool)  # the key's rules, fair turns, usage (api/keys/gate.py)

    def _timeline_sample(self) -> tuple[dict[str, int], int]:
        """Accounts per state and requests waiting, for the console's timeline."""
        states: dict[str, int] = {}
        for row in self.pool.status():
            state = str(row.get("state"))
            states[state] = states.get(state, 0) + 1
        return states, self.pool.waiting

    @property
    def inflight_count(self) -> int:
        return self.tracker.inflight_count

    def status(self) -> dict[str, Any]:
        """What `/admin/status` shows."""
        return {
            "mode": self.pool.mode,
            "inflight": self.tracker.inflight_count,
            "leases_out": self.pool.leases_out,
            "usable_accounts": self.pool.usable_count,
            "accounts": self.pool.status(),
            "proxies": self.pool.proxy_status(),
        }

    async def start(self) -> None:
        for step in self._before_pool:
            await step()
        await self.upstream.load()
        await self.pool.start()
        await self.keys.load()
        await self.usage.start()
        self.timeline.start(self._timeline_sample)
        if self.prewarmer is not None:
            self.prewarmer.start()
        if not self.authenticator.has_keys and not self.settings.token_passthrough:
            log.warning("no API keys configured: every request will be refused with 401 (add `keys` to the config)")
        log.info("gateway ready: %d account(s), %d usable, upstream %s", len(self.pool.status()),
                 self.pool.usable_count, self.settings.upstream.base_url)

    async def stop(self) -> None:
        grace = self.settings.server.shutdown_grace
        inflight = self.tracker.inflight_count
        if inflight:
            log.info("waiting up to %g s for %d in-flight request(s)", grace, inflight)
            if not await self.tracker.wait_idle(grace):
                log.warning("%d request(s) still running after %g s; stopping them",
                            self.tracker.inflight_count, grace)
        steps: list[Callable[[], Awaitable[None]]] = [
            self.tracker.cancel_all,  # each turn returns its lease and stops its upstream stream
            *([self.prewarmer.stop] if self.prewarmer is not None else []),
            self.timeline.stop, self.usage.close, self.key_book.close,
            self.pool.close, self.store.close, self.book.close, self.response_store.close, self.runtime_settings.close,
            self.client.aclose,
        ]
        failure: Exception | None = None
        for step in steps:  # one failing step must not keep the others (state flushes) from running
            try:
                await step()
            except Exception as exc:
                log.exception("shutdown step %s failed", getattr(step, "__qualname__", step))
                failure = failure or exc
        if failure is not None:
            raise failure


def _session_book(settings: Settings) -> SessionBook | None:
    """`upstream.continue_sessions` (chat/continuation.py): in-process only, so off with a shared pool."""
    upstream = settings.upstream
    if not upstream.continue_sessions or settings.cluster.redis_url:
        return None
    return SessionBook(ContinueOptions(enabled=True, max_turns=upstream.continue_max_turns,
                                       max_age=upstream.continue_max_age, max_chars=upstream.continue_max_chars))


def create_app(settings: Settings, *, client: DeepSeekClient | None = None,
               companion: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> FastAPI:
    """The ASGI app for `settings` (a fresh Gateway per app).

    `companion` is started before the gateway and stopped after it (the demo's simulator).
    """
    gateway = Gateway(settings, client=client)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with companion() if companion is not None else contextlib.nullcontext():
            try:
                await gateway.start()
            except BaseException:  # what started (pool tasks, connections) stops, and state is flushed
                await gateway.stop()
                raise
            try:
                yield
            finally:
                await gateway.stop()

    app = FastAPI(title="DeepSeek2API", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
                  redirect_slashes=False)  # a slash redirect would echo the Host header (issue 17 item 7)
    app.state.gateway = gateway  # for tests and tools that inspect a running gateway; routes never read it
    app.include_router(health_router(lambda: gateway.pool.usable_count))
    limits = ModelLimits(settings.model_limits)  # what both model lists report
    app.include_router(gemini_router(gateway.gemini, gateway.gemini_models, gateway.registry, gateway.authenticator,
                                     limits))
    app.include_router(openai_router(gateway.chat, gateway.registry, gateway.authenticator, limits))
    app.include_router(anthropic_router(gateway.messages, gateway.authenticator))
    app.include_router(status_router(admin_check(settings), gateway.status))
    app.include_router(responses_router(gateway.responses, gateway.authenticator))
    if settings.ollama.enabled:  # no keys in Ollama's API: only when the operator asks (api/ollama/router.py)
        gate = OllamaGate(gateway.authenticator, port=settings.ollama.port, require_key=settings.ollama.require_key)
        app.include_router(ollama_router(gateway.ollama, gateway.registry, gate))
    mount_console(app, settings, backend=gateway.console, requests=gateway.requests, metrics=gateway.metrics,
                  upstream=gateway.upstream)
    admin_auth = AdminAuth([(k.name, k.key) for k in settings.admin_keys], [(k.name, k.key) for k in settings.keys])
    app.router.routes.extend(key_routes(KeysApi(gateway.keys, gateway.key_gate, gateway.timeline, admin_auth,
                                                fair_use=gateway.fair_use)))
    app.router.routes.extend(keys_page_routes())
    dialect.install(app, DIALECTS)
    install_docs(app)  # /docs with Swagger UI from the package, not a CDN
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.server.max_body_bytes,
                       cors_origins=list(settings.server.cors_origins), limits=request_limits(settings.server),
                       dialects=DIALECTS)
    return app
