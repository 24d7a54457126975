"""Prometheus metrics: what the gateway did, as numbers a scraper can graph (`GET /metrics`).

Each app owns its own `CollectorRegistry` (never the process-global one), so several gateways in one
test process do not mix their counts. Names follow OpenTelemetry's GenAI semantic conventions where
one exists (`gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`,
`gen_ai.client.token.usage`, attribute `gen_ai.provider.name = "deepseek"`), with dots as
underscores; the rest are `deepseek2api_*`. No label ever carries an account, a key or a prompt:
they would leak and make the series count grow with the pool (docs/cluster.md).
Model names are bounded too: a model the gateway does not know is counted as "other", so a client
cannot create series by sending random model names.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..deepseek.drift import CANARY, DriftCanary
from ..deepseek.gate import VersionGate
from ..settings import redact_proxy
from .dialect import error_response
from .errors import ApiError

logger = logging.getLogger(__name__)

PROVIDER = "deepseek"
OTHER_MODEL = "other"

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
POW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)


class Outcome(str, enum.Enum):
    """How a request ended, from the operator's point of view (the `outcome` label)."""

    OK = "ok"  # a complete answer
    CLIENT_ERROR = "client_error"  # 4xx the caller can fix (bad input, auth, too long)
    REJECTED = "rejected"  # 429: the pool could not take it (queue full, all cooling …)
    UPSTREAM_ERROR = "upstream_error"  # DeepSeek failed on every account tried, or mid-stream
    CANCELLED = "cancelled"  # the client hung up first
    ERROR = "error"  # anything else (a bug, shutdown)

    @classmethod
    def from_status(cls, status: int) -> Outcome:
        """The outcome an HTTP status stands for (what the access log already knows)."""
        if status < 400:
            return cls.OK
        if status == 429:
            return cls.REJECTED
        if status == 499:
            return cls.CANCELLED
        if status < 500:
            return cls.CLIENT_ERROR
        if status in (502, 503, 504):
            return cls.UPSTREAM_ERROR
        return cls.ERROR


@dataclass(frozen=True, slots=True)
class PoolGauges:
    """A point-in-time view the gauges read at scrape time (cheap: counts only).

    `accounts_by_state` should list every state, zeros included, so a graph shows a state falling to
    zero instead of a series that disappears.
    """

    accounts_by_state: Mapping[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    capacity: int = 0
    proxies_quarantined: int = 0
    proxies_total: int = 0


class _PoolCollector(Collector):
    """Reads `PoolGauges` at each scrape, so no code path has to keep gauges in step with the pool."""

    def __init__(self, snapshot: Callable[[], PoolGauges]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        try:
            gauges = self._snapshot()
        except Exception:  # a broken snapshot must not break the whole scrape
            logger.exception("metrics: the pool snapshot failed")
            return []
        accounts = GaugeMetricFamily("deepseek2api_accounts", "Accounts by health state.", labels=["state"])
        for state, count in sorted(gauges.accounts_by_state.items()):
            accounts.add_metric([state], float(count))
        return [
            accounts,
            GaugeMetricFamily("deepseek2api_queue_depth", "Requests waiting for a free account.",
                              value=float(gauges.queue_depth)),
            GaugeMetricFamily("deepseek2api_capacity_streams", "Streams the usable accounts can carry at once.",
                              value=float(gauges.capacity)),
            GaugeMetricFamily("deepseek2api_proxies_quarantined", "Proxy exits quarantined now.",
                              value=float(gauges.proxies_quarantined)),
            GaugeMetricFamily("deepseek2api_proxies", "Proxy exits configured.", value=float(gauges.proxies_total)),
        ]

    def describe(self) -> Iterable[Metric]:
        return []  # names are only known at collect time; describe() would call the snapshot too early


class _UpstreamCollector(Collector):
    """DeepSeek's side as the gateway meets it, read at scrape time: version-gate refusals (and whether the
    gate is shut now), and the decoder's unknown shapes by kind (the drift canary, deepseek/drift.py)."""

    def __init__(self, gate: VersionGate, canary: DriftCanary) -> None:
        self._gate = gate
        self._canary = canary

    def collect(self) -> Iterable[Metric]:
        refusals = CounterMetricFamily("deepseek2api_client_version_refusals",
                                       "Upstream calls DeepSeek refused as from a too old client version (40005).",
                                       value=float(self._gate.count))
        shut = GaugeMetricFamily("deepseek2api_client_version_refused",
                                 "1 while DeepSeek refuses the gateway's client version (change the persona).",
                                 value=1.0 if self._gate.state().refused else 0.0)
        unknown = CounterMetricFamily("deepseek2api_upstream_unknown_shapes",
                                      "Stream shapes the decoder did not know, by kind (event, path, fragment, "
                                      "status); the answer is decoded as before.", labels=["kind"])
        for kind, count in sorted(self._canary.counts.items()):
            unknown.add_metric([kind], float(count))
        return [refusals, shut, unknown]

    def describe(self) -> Iterable[Metric]:
        return []


class GatewayMetrics:
    """The gateway's metric set on its own registry, with one recording method per event.

    Recording methods are cheap (a dict lookup and an add) and safe to call on the event loop.
    """

    def __init__(self, *, known_models: Collection[str] = (),
                 snapshot: Callable[[], PoolGauges] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._known_models = frozenset(known_models)
        reg = self.registry
        request_labels = ["gen_ai_provider_name", "gen_ai_request_model", "surface", "stream", "outcome"]
        self._requests = Counter("deepseek2api_requests", "Requests answered, by model, surface, stream and outcome.",
                                 request_labels, registry=reg)
        self._duration = Histogram("gen_ai_server_request_duration_seconds",
                                   "Time from receiving a request to its last byte.",
                                   ["gen_ai_provider_name", "gen_ai_request_model", "surface", "stream", "outcome"],
                                   buckets=DURATION_BUCKETS, registry=reg)
        self._ttft = Histogram("gen_ai_server_time_to_first_token_seconds",
                               "Time from receiving a request to its first content or reasoning token.",
                               ["gen_ai_provider_name", "gen_ai_request_model", "surface", "stream"],
                               buckets=TTFT_BUCKETS, registry=reg)
        self._token_usage = Histogram("gen_ai_client_token_usage", "Tokens per request, by type (input/output).",
                                      ["gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
                                      buckets=TOKEN_BUCKETS, registry=reg)
        self._tokens = Counter("deepseek2api_tokens", "Tokens in and out, by type (input/output).",
                               ["gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"], registry=reg)
        self._in_flight = Gauge("deepseek2api_streams_in_flight", "Requests holding an account right now.",
                                ["surface"], registry=reg)
        self._queue_wait = Histogram("deepseek2api_queue_wait_seconds", "Time a request waited for a free account.",
                                     buckets=QUEUE_BUCKETS, registry=reg)
        self._rejections = Counter("deepseek2api_queue_rejections", "Requests the pool turned away, by reason.",
                                   ["reason"], registry=reg)
        self._upstream_errors = Counter("deepseek2api_upstream_errors", "Upstream failures, by kind.",
                                        ["gen_ai_provider_name", "error_type"], registry=reg)
        self._failovers = Counter("deepseek2api_failovers", "Requests retried on another account, by error kind.",
                                  ["error_type"], registry=reg)
        self._transitions = Counter("deepseek2api_account_transitions", "Account health state changes.",
                                    ["from_state", "to_state"], registry=reg)
        self._pow = Histogram("deepseek2api_pow_solve_seconds", "Time to solve one proof-of-work challenge.",
                              buckets=POW_BUCKETS, registry=reg)
        self._logins = Counter("deepseek2api_logins", "Account logins, by result (ok or an error kind).",
                               ["result"], registry=reg)
        self._proxy_use = Counter("deepseek2api_proxy_uses", "Leases sent through each exit.", ["proxy"],
                                  registry=reg)
        self._proxy_failures = Counter("deepseek2api_proxy_failures", "Connection failures through each exit.",
                                       ["proxy"], registry=reg)
        if snapshot is not None:
            reg.register(_PoolCollector(snapshot))

    def watch_upstream(self, gate: VersionGate, canary: DriftCanary = CANARY) -> None:
        """Expose the client's version gate and the drift canary (called once by the composition root)."""
        self.registry.register(_UpstreamCollector(gate, canary))

    def _model(self, model: str) -> str:
        return model if model in self._known_models else OTHER_MODEL

    # ---- requests ---------------------------------------------------------------------

    def request_finished(self, *, surface: str, model: str, stream: bool, outcome: Outcome, duration: float,
                         ttft: float | None = None, tokens_in: int | None = None,
                         tokens_out: int | None = None) -> None:
        """One request is over (answered, refused or cut). Call exactly once per request."""
        model_label = self._model(model)
        stream_label = "true" if stream else "false"
        self._requests.labels(PROVIDER, model_label, surface, stream_label, outcome.value).inc()
        self._duration.labels(PROVIDER, model_label, surface, stream_label, outcome.value).observe(duration)
        if ttft is not None:
            self._ttft.labels(PROVIDER, model_label, surface, stream_label).observe(ttft)
        for kind, count in (("input", tokens_in), ("output", tokens_out)):
            if count is not None:
                self._token_usage.labels(PROVIDER, model_label, kind).observe(count)
                self._tokens.labels(PROVIDER, model_label, kind).inc(count)

    @contextlib.contextmanager
    def in_flight(self, surface: str) -> Iterator[None]:
        """`with metrics.in_flight("openai"):` around the time a request holds an account."""
        gauge = self._in_flight.labels(surface)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    # ---- pool -------------------------------------------------------------------------

    def queue_waited(self, seconds: float) -> None:
        """A request got an account after waiting this long (0 when one was free at once)."""
        self._queue_wait.observe(seconds)

    def queue_rejected(self, reason: str) -> None:
        """The pool refused a request: `queue_full`, `all_busy`, `all_cooling`, `none_usable`."""
        self._rejections.labels(reason).inc()

    def account_transition(self, from_state: str, to_state: str) -> None:
        """An account's health state changed (ready → cooling, cooling → ready …)."""
        self._transitions.labels(from_state, to_state).inc()

    def login(self, result: str) -> None:
        """A login finished: "ok", or the ErrorKind value of its failure."""
        self._logins.labels(result).inc()

    # ---- upstream ---------------------------------------------------------------------

    def upstream_error(self, kind: str, *, failover: bool = False) -> None:
        """An upstream failure of this ErrorKind value; `failover` when another account is tried next."""
        self._upstream_errors.labels(PROVIDER, kind).inc()
        if failover:
            self._failovers.labels(kind).inc()

    def pow_solved(self, seconds: float) -> None:
        self._pow.observe(seconds)

    def proxy_used(self, proxy: str | None) -> None:
        """A lease goes out through this exit (None: direct). The URL is redacted before it is a label."""
        self._proxy_use.labels(_exit_label(proxy)).inc()

    def proxy_failed(self, proxy: str | None) -> None:
        self._proxy_failures.labels(_exit_label(proxy)).inc()

    # ---- exposition -------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of everything recorded so far."""
        return generate_latest(self.registry)


def _exit_label(proxy: str | None) -> str:
    return redact_proxy(proxy) if proxy else "direct"


KeyCheck = Callable[[Mapping[str, str]], object]


def metrics_route(metrics: GatewayMetrics, *, check: KeyCheck | None = None, path: str = "/metrics") -> Route:
    """`GET /metrics`. `check` (e.g. an Authenticator's `authenticate`) raises `ApiError` to refuse;
    None leaves the route open, which is the default (`metrics.require_key = false`)."""

    # the classic 0.0.4 text format: every Prometheus version and most other scrapers read it
    async def scrape(request: Request) -> Response:
        if check is not None:
            try:
                check(request.headers)
            except ApiError as error:
                return error_response(request, error)
        return Response(metrics.exposition(), headers={"content-type": CONTENT_TYPE_PLAIN_0_0_4,
                                                       "cache-control": "no-store"})

    return Route(path, scrape, methods=["GET"], include_in_schema=False)


__all__ = ["GatewayMetrics", "KeyCheck", "Outcome", "PoolGauges", "metrics_route"]
