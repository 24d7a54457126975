"""`cluster` config section: the Redis URL (env DS2API_REDIS_URL), the namespace, and what reaches the coordinator."""

from __future__ import annotations

import json

import pytest

from deepseek2api.pool.cluster import (
    ClusterConfig,
    proxy_entries,
    proxy_id,
    seed_accounts,
)
from deepseek2api.settings import ConfigError, load_settings

CONFIG = {
    "accounts": [{"email": "a@example.com", "password": "pw", "token": "t0"},
                 {"email": "b@example.com", "password": "pw", "proxy": "http://own:1", "enabled": False}],
    "proxy_pool_enabled": True,
    "proxy_pool": ["", "http://user:secret@proxy:8080"],
    "pool": {"per_account_concurrency": 2, "queue_size": 10},
}


def test_without_a_redis_url_the_pool_stays_in_process() -> None:
    settings = load_settings(env={"DS2API_CONFIG_JSON": json.dumps(CONFIG)})
    assert settings.cluster.redis_url is None
    assert settings.cluster.name == "default"


def test_the_redis_url_and_name_come_from_the_environment_and_never_show_in_repr() -> None:
    settings = load_settings(env={
        "DS2API_CONFIG_JSON": json.dumps(CONFIG),
        "DS2API_REDIS_URL": "rediss://:hunter2@redis.internal:6380/1",
        "DS2API_CLUSTER_NAME": "blue",
    })
    assert settings.cluster.redis_url == "rediss://:hunter2@redis.internal:6380/1"
    assert "hunter2" not in repr(settings.cluster) and "hunter2" not in repr(settings)
    config = ClusterConfig.from_settings(settings)
    assert (config.name, config.per_account_concurrency, config.queue_size) == ("blue", 2, 10)
    assert config.prefix == "ds2:{blue}:"


@pytest.mark.parametrize("url", ["http://redis:6379", "redis", "memcached://x:1"])
def test_a_url_that_is_not_redis_is_refused_at_start(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"DS2API_REDIS_URL": url})
    assert "cluster.redis_url" in str(caught.value)


@pytest.mark.parametrize("name", ["a{b}", "x:y", " padded"])
def test_a_cluster_name_that_would_break_the_key_layout_is_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(env={"DS2API_CONFIG_JSON": json.dumps({"cluster": {"name": name}})})


def test_seed_data_carries_fingerprints_and_proxy_digests_but_no_proxy_secret() -> None:
    settings = load_settings(env={"DS2API_CONFIG_JSON": json.dumps(CONFIG)})
    seeded = seed_accounts(settings, lambda account: f"fp-{account.id}")
    assert [(a.id, a.credentials, a.enabled, a.own_proxy, a.token) for a in seeded] == [
        ("a@example.com", "fp-a@example.com", True, False, "t0"),
        ("b@example.com", "fp-b@example.com", False, True, None),
    ]
    assert "t0" not in repr(seeded)
    entries = proxy_entries(settings)
    assert len(entries) == 2
    assert all("secret" not in proxy_id(entry) for entry in entries)
    assert proxy_id(entries[0]) != proxy_id(entries[1])
