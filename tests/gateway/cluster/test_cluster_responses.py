"""Stored responses shared by every replica (`cluster.redis_url`): created on one replica, which then
dies, they are retrieved, continued (`previous_response_id`) and referenced (`item_reference`) on
another, still only by the key that made them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cluster_gateway_support import cluster_stack
from cluster_support import REDIS_SERVER
from gateway_support import API_KEY

pytestmark = [pytest.mark.slow, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")]

OTHER_KEY = "sk-other-key-9876543210"


def post(base_url: str, body: dict[str, Any], key: str = API_KEY) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/responses", json={"model": "deepseek-chat", **body}, timeout=60,
                      headers={"authorization": f"Bearer {key}"})


def get(base_url: str, path: str, key: str = API_KEY) -> httpx.Response:
    return httpx.get(f"{base_url}/v1/responses/{path}", timeout=30, headers={"authorization": f"Bearer {key}"})


def test_a_response_made_on_one_replica_continues_on_another_after_the_first_dies(tmp_path: Path) -> None:
    keys = [{"name": "test", "key": API_KEY}, {"name": "other", "key": OTHER_KEY}]
    with cluster_stack(tmp_path, replicas=2, accounts=2, keys=keys,
                       responses={"max_key_bytes": 100_000}) as stack:
        a, b = stack.replicas
        created = post(a.base_url, {"input": "remember OCELOT-31"})
        assert created.status_code == 200, created.text
        rid, answer_id = created.json()["id"], created.json()["output"][-1]["id"]
        answer = created.json()["output"][-1]["content"][0]["text"]
        a.kill()  # nothing of it lived only in that replica

        assert get(b.base_url, rid).json()["id"] == rid
        assert get(b.base_url, f"{rid}/input_items").json()["data"][0]["content"][0]["text"] == "remember OCELOT-31"
        continued = post(b.base_url, {"input": "FOLLOW-UP-B", "previous_response_id": rid})
        assert continued.status_code == 200, continued.text
        prompts = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()
        assert "OCELOT-31" in prompts[-1] and "FOLLOW-UP-B" in prompts[-1]
        referenced = post(b.base_url, {"input": [{"type": "item_reference", "id": answer_id},
                                                 {"role": "user", "content": "REFERENCED-ON-B"}]})
        assert referenced.status_code == 200, referenced.text
        prompt = httpx.get(f"{stack.simulator.base_url}/_sim/prompts", timeout=10).json()[-1]
        assert prompt.index(answer) < prompt.index("REFERENCED-ON-B")

        # the same per-key isolation and the same limits as on one replica
        assert get(b.base_url, rid, OTHER_KEY).status_code == 404
        assert post(b.base_url, {"input": "x", "previous_response_id": rid}, OTHER_KEY).status_code == 404
        assert post(b.base_url, {"input": [{"type": "item_reference", "id": answer_id}]}, OTHER_KEY).status_code == 404
        statuses = [post(b.base_url, {"input": "w" * 30_000}, OTHER_KEY).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 400]
        assert post(b.base_url, {"input": "w" * 30_000}).status_code == 200  # the first key has its own budget

        # the TTL is Redis's own: every key the store wrote expires
        client = redis.Redis.from_url(stack.redis.url)
        try:
            keys_written = list(client.scan_iter(match="ds2:*resp*"))
            assert keys_written and all(client.pttl(k) > 0 for k in keys_written)
        finally:
            client.close()
