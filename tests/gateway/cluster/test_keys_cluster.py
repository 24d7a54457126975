"""Keys for people in cluster mode: two replicas on one Redis (a redis-server of the test's own)
count usage into the same counters, so the usage API of either shows both and `tokens_per_day` holds
across replicas; the counts outlive a replica's restart."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster_gateway_support import cluster_stack
from cluster_support import REDIS_SERVER
from gateway_support import API_KEY
from reliability_support import GatewayProcess

pytestmark = [pytest.mark.slow, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")]

ADMIN = "sk-admin-cluster-keys-000"
KEYS: list[dict[str, Any]] = [{"name": "test", "key": API_KEY}, {"name": "alice", "key": "sk-alice-cluster-0000"},
                              {"name": "capped", "key": "sk-capped-cluster-000", "tokens_per_day": 1}]


def _chat(base_url: str, key: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=60,
                      json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hello cluster"}]})


def _usage(base_url: str, key: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/admin/api/usage", params={"key": key},
                         headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_two_replicas_share_usage_and_daily_limits_and_keep_them_over_a_restart(tmp_path: Path) -> None:
    with cluster_stack(tmp_path, replicas=2, accounts=2, keys=KEYS,
                       admin_keys=[{"name": "admin", "key": ADMIN}]) as stack:
        first, second = stack.replicas
        received = [0, 0]
        for replica in (first, second, first):
            done = _chat(replica.base_url, "sk-alice-cluster-0000")
            assert done.status_code == 200, done.text
            received[0] += done.json()["usage"]["prompt_tokens"]
            received[1] += done.json()["usage"]["completion_tokens"]
        # each replica writes its counts within a second; either one reads the sum
        for replica in (first, second):
            stack.wait_until(lambda r=replica: _usage(r.base_url, "alice")["totals"]["requests"] == 3,
                             what="both replicas' counts")
            totals = _usage(replica.base_url, "alice")["totals"]
            assert [totals["prompt_tokens"], totals["completion_tokens"]] == received

        assert _chat(first.base_url, "sk-capped-cluster-000").status_code == 200  # uses up today's tokens
        stack.wait_until(lambda: _chat(second.base_url, "sk-capped-cluster-000").status_code == 429,
                         what="the other replica refusing the capped key")
        refused = _chat(second.base_url, "sk-capped-cluster-000")
        assert refused.headers["x-ratelimit-limit-tokens"] == "1"

        second.signal(signal.SIGTERM)  # a graceful stop flushes what is pending
        second.wait(30)
        restarted = GatewayProcess(stack.config_paths[1], port=second.port).start(60.0)
        stack.replicas[1] = restarted
        stack.wait_ready([restarted])
        assert _usage(restarted.base_url, "alice")["totals"]["requests"] == 3
        time.sleep(0.1)
        assert _chat(restarted.base_url, "sk-capped-cluster-000").status_code == 429
