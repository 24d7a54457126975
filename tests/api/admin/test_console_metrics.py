"""`GET /metrics`: after a scripted sequence of events the scraped values are exactly what happened."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from console_support import ADMIN_KEY, CLIENT_KEY, FakeBackend, console_app, gauges_from
from deepseek2api.api.admin import RequestLog
from deepseek2api.api.metrics import GatewayMetrics, Outcome

MODELS = ("deepseek-chat", "deepseek-reasoner")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped[(name, frozenset(labels.items()))]


def names(scraped: Iterable[tuple[str, frozenset[tuple[str, str]]]]) -> set[str]:
    return {name for name, _ in scraped}


def script(metrics: GatewayMetrics, backend: FakeBackend) -> None:
    """Two good requests, one served after a rate limit and a failover, one queue rejection, a bad model."""
    metrics.login("ok")
    metrics.login("ok")
    metrics.login("bad_credentials")
    metrics.pow_solved(0.03)
    metrics.pow_solved(0.07)
    metrics.proxy_used("socks5://user:proxy-Secret9@10.0.0.1:1080")
    metrics.proxy_used(None)
    metrics.proxy_failed("socks5://user:proxy-Secret9@10.0.0.1:1080")
    # 1: a plain non-stream answer
    metrics.queue_waited(0.0)
    metrics.request_finished(surface="openai", model="deepseek-chat", stream=False, outcome=Outcome.OK, duration=1.5,
                             ttft=0.4, tokens_in=20, tokens_out=100)
    # 2: a stream whose first account was rate limited; the retry on another account worked
    metrics.queue_waited(0.0)
    metrics.upstream_error("rate_limited", failover=True)
    metrics.account_transition("ready", "cooling")
    backend.cool("beta@example.com", 60)
    metrics.queue_waited(0.2)
    metrics.request_finished(surface="openai", model="deepseek-chat", stream=True, outcome=Outcome.OK, duration=3.0,
                             ttft=0.8, tokens_in=30, tokens_out=200)
    # 3: the queue was full
    metrics.queue_rejected("queue_full")
    metrics.request_finished(surface="openai", model="deepseek-reasoner", stream=True, outcome=Outcome.REJECTED,
                             duration=0.001)
    # 4: a model nobody configured (counted as "other", so callers cannot invent series)
    metrics.request_finished(surface="anthropic", model="gpt-4-" + "x" * 40, stream=False,
                             outcome=Outcome.CLIENT_ERROR, duration=0.002)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend.with_accounts(RequestLog())


async def scrape(metrics: GatewayMetrics, backend: FakeBackend, *, metrics_key: bool = False,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    app = console_app(backend, RequestLog(), metrics=metrics, metrics_key=metrics_key)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        return await http.get("/metrics", headers=headers or {})


async def test_scraped_values_are_exactly_the_scripted_events(backend: FakeBackend) -> None:
    metrics = GatewayMetrics(known_models=MODELS, snapshot=gauges_from(backend))
    script(metrics, backend)
    response = await scrape(metrics, backend)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(response.text)
    base = {"gen_ai_provider_name": "deepseek"}
    ok_chat = {**base, "gen_ai_request_model": "deepseek-chat", "surface": "openai", "outcome": "ok"}
    assert value(got, "deepseek2api_requests_total", **ok_chat, stream="false") == 1
    assert value(got, "deepseek2api_requests_total", **ok_chat, stream="true") == 1
    assert value(got, "deepseek2api_requests_total", **base, gen_ai_request_model="deepseek-reasoner",
                 surface="openai", stream="true", outcome="rejected") == 1
    assert value(got, "deepseek2api_requests_total", **base, gen_ai_request_model="other", surface="anthropic",
                 stream="false", outcome="client_error") == 1
    assert sum(v for (n, _), v in got.items() if n == "deepseek2api_requests_total") == 4

    assert value(got, "gen_ai_server_request_duration_seconds_count", **ok_chat, stream="true") == 1
    assert value(got, "gen_ai_server_request_duration_seconds_sum", **ok_chat, stream="true") == 3.0
    assert value(got, "gen_ai_server_request_duration_seconds_bucket", **ok_chat, stream="true", le="2.0") == 0
    assert value(got, "gen_ai_server_request_duration_seconds_bucket", **ok_chat, stream="true", le="5.0") == 1
    ttft = {**base, "gen_ai_request_model": "deepseek-chat", "surface": "openai"}
    assert value(got, "gen_ai_server_time_to_first_token_seconds_count", **ttft, stream="false") == 1
    assert value(got, "gen_ai_server_time_to_first_token_seconds_sum", **ttft, stream="true") == 0.8
    assert sum(v for (n, _), v in got.items() if n == "gen_ai_server_time_to_first_token_seconds_count") == 2

    tokens = {**base, "gen_ai_request_model": "deepseek-chat"}
    assert value(got, "deepseek2api_tokens_total", **tokens, gen_ai_token_type="input") == 50
    assert value(got, "deepseek2api_tokens_total", **tokens, gen_ai_token_type="output") == 300
    assert value(got, "gen_ai_client_token_usage_count", **tokens, gen_ai_token_type="output") == 2
    assert value(got, "gen_ai_client_token_usage_sum", **tokens, gen_ai_token_type="output") == 300

    assert value(got, "deepseek2api_queue_wait_seconds_count") == 3
    assert value(got, "deepseek2api_queue_wait_seconds_sum") == pytest.approx(0.2)
    assert value(got, "deepseek2api_queue_rejections_total", reason="queue_full") == 1
    assert value(got, "deepseek2api_upstream_errors_total", **base, error_type="rate_limited") == 1
    assert value(got, "deepseek2api_failovers_total", error_type="rate_limited") == 1
    assert value(got, "deepseek2api_account_transitions_total", from_state="ready", to_state="cooling") == 1
    assert value(got, "deepseek2api_logins_total", result="ok") == 2
    assert value(got, "deepseek2api_logins_total", result="bad_credentials") == 1
    assert value(got, "deepseek2api_pow_solve_seconds_count") == 2
    assert value(got, "deepseek2api_pow_solve_seconds_sum") == pytest.approx(0.1)
    assert value(got, "deepseek2api_proxy_uses_total", proxy="socks5://***@10.0.0.1:1080") == 1
    assert value(got, "deepseek2api_proxy_uses_total", proxy="direct") == 1
    assert value(got, "deepseek2api_proxy_failures_total", proxy="socks5://***@10.0.0.1:1080") == 1

    # gauges read from the pool at scrape time
    assert value(got, "deepseek2api_accounts", state="ready") == 1
    assert value(got, "deepseek2api_accounts", state="cooling") == 1
    assert value(got, "deepseek2api_accounts", state="banned") == 1
    assert value(got, "deepseek2api_accounts", state="muted") == 0
    assert value(got, "deepseek2api_capacity_streams") == 1
    assert value(got, "deepseek2api_proxies") == 2


async def test_no_label_carries_an_account_a_key_a_password_or_a_prompt(backend: FakeBackend) -> None:
    metrics = GatewayMetrics(known_models=MODELS, snapshot=gauges_from(backend))
    script(metrics, backend)
    text = (await scrape(metrics, backend)).text
    for secret in ("alpha@example.com", "beta@example.com", "gamma", "proxy-Secret9", ADMIN_KEY, CLIENT_KEY,
                   "x" * 40):
        assert secret not in text
    labels = {label for family in text_string_to_metric_families(text) for s in family.samples for label in s.labels}
    assert not labels & {"account", "account_id", "key", "key_name", "prompt", "user"}


async def test_in_flight_streams_count_while_held_and_return_to_zero(backend: FakeBackend) -> None:
    metrics = GatewayMetrics(known_models=MODELS)
    with metrics.in_flight("openai"), metrics.in_flight("openai"), metrics.in_flight("anthropic"):
        during = samples((await scrape(metrics, backend)).text)
    after = samples((await scrape(metrics, backend)).text)
    assert value(during, "deepseek2api_streams_in_flight", surface="openai") == 2
    assert value(during, "deepseek2api_streams_in_flight", surface="anthropic") == 1
    assert value(after, "deepseek2api_streams_in_flight", surface="openai") == 0


async def test_two_apps_in_one_process_keep_separate_counts(backend: FakeBackend) -> None:
    first, second = GatewayMetrics(known_models=MODELS), GatewayMetrics(known_models=MODELS)
    first.queue_rejected("all_cooling")
    assert value(samples(first.exposition().decode()), "deepseek2api_queue_rejections_total",
                 reason="all_cooling") == 1
    assert "deepseek2api_queue_rejections_total" not in names(samples(second.exposition().decode()))


async def test_a_failing_pool_snapshot_leaves_the_rest_of_the_scrape_intact(backend: FakeBackend) -> None:
    def broken() -> object:
        raise RuntimeError("pool gone")

    metrics = GatewayMetrics(known_models=MODELS, snapshot=broken)  # type: ignore[arg-type]
    metrics.login("ok")
    response = await scrape(metrics, backend)
    assert response.status_code == 200
    got = samples(response.text)
    assert value(got, "deepseek2api_logins_total", result="ok") == 1
    assert "deepseek2api_accounts" not in names(got)


async def test_metrics_are_open_by_default_and_can_require_any_api_key(backend: FakeBackend) -> None:
    metrics = GatewayMetrics(known_models=MODELS)
    assert (await scrape(metrics, backend)).status_code == 200
    refused = await scrape(metrics, backend, metrics_key=True)
    wrong = await scrape(metrics, backend, metrics_key=True, headers={"Authorization": "Bearer nope"})
    client = await scrape(metrics, backend, metrics_key=True, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    admin = await scrape(metrics, backend, metrics_key=True, headers={"x-api-key": ADMIN_KEY})
    assert (refused.status_code, wrong.status_code, client.status_code, admin.status_code) == (401, 401, 200, 200)
    assert "deepseek2api" not in refused.text


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.OK), (400, Outcome.CLIENT_ERROR), (401, Outcome.CLIENT_ERROR), (413, Outcome.CLIENT_ERROR),
    (429, Outcome.REJECTED), (499, Outcome.CANCELLED), (500, Outcome.ERROR), (502, Outcome.UPSTREAM_ERROR),
    (503, Outcome.UPSTREAM_ERROR),
])
def test_an_http_status_maps_to_one_outcome(status: int, outcome: Outcome) -> None:
    assert Outcome.from_status(status) is outcome
