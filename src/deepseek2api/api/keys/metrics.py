"""`/metrics` by key name (opt-in, `metrics.per_key`): requests, tokens, errors and streamed seconds per
key and model since the process started, and each key's running streams — read from the usage ledger at
scrape time, so a request pays nothing for them.

Labels are key *names* (operator-chosen, never the key itself) and model names the gateway knows (any
other is counted as "other", so a client cannot grow the series count).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ...keys.limiter import KeyLimiter
from ...keys.usage import UsageLedger
from ...store.usage import UsageRow

OTHER_MODEL = "other"


class KeyMetrics(Collector):
    def __init__(self, ledger: UsageLedger, limiter: KeyLimiter, known_models: Collection[str]) -> None:
        self._ledger = ledger
        self._limiter = limiter
        self._known = frozenset(known_models)

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("deepseek2api_key_requests", "Requests per API key name and model.",
                                       labels=["key", "model"])
        tokens = CounterMetricFamily("deepseek2api_key_tokens", "Tokens per API key name, model and type "
                                     "(input, output; output includes reasoning).", labels=["key", "model", "type"])
        errors = CounterMetricFamily("deepseek2api_key_errors", "Failed requests per API key name and model.",
                                     labels=["key", "model"])
        seconds = CounterMetricFamily("deepseek2api_key_stream_seconds", "Seconds requests ran, per API key name.",
                                      labels=["key"])
        streams = GaugeMetricFamily("deepseek2api_key_streams", "Requests running now, per API key name.",
                                    labels=["key"])
        merged: dict[tuple[str, str], UsageRow] = {}
        for (key, model), row in list(self._ledger.totals.items()):
            label = model if model in self._known else OTHER_MODEL
            kept = merged.setdefault((key, label), UsageRow("total", 0, key, label))
            kept.add(row)
        per_key: dict[str, float] = {}
        for (key, model), row in sorted(merged.items()):
            requests.add_metric([key, model], row.requests)
            tokens.add_metric([key, model, "input"], row.prompt_tokens)
            tokens.add_metric([key, model, "output"], row.completion_tokens)
            errors.add_metric([key, model], row.errors)
            per_key[key] = per_key.get(key, 0.0) + row.stream_seconds
        for key, value in sorted(per_key.items()):
            seconds.add_metric([key], value)
            streams.add_metric([key], float(self._limiter.streams(key)))
        return [requests, tokens, errors, seconds, streams]

    def describe(self) -> Iterable[Metric]:
        return []


__all__ = ["KeyMetrics"]
