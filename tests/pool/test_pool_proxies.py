"""Proxy pool: even spread, direct entries, sticky assignment, quarantine with an injected clock."""

from __future__ import annotations

import collections
import random

from deepseek2api.pool.proxies import ProxyPool, redact_proxy

ENTRIES = ["", "http://a:1", "socks5://b:2", "socks4://c:3"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counts(pool: ProxyPool, picks: int, account: str | None = None) -> collections.Counter[str | None]:
    return collections.Counter(pool.pick(account) for _ in range(picks))


def test_least_used_spreads_evenly_and_honours_direct() -> None:
    pool = ProxyPool(ENTRIES, enabled=True, rng=random.Random(1))
    seen = counts(pool, 1000)
    assert set(seen) == {None, "http://a:1", "socks5://b:2", "socks4://c:3"}  # "" → None (direct)
    for value in seen.values():
        assert 237 <= value <= 263  # within ±5% of 250 (least_used is in fact exact)
    assert [s["picks"] for s in pool.stats()] == [250, 250, 250, 250]


def test_ties_are_broken_at_random() -> None:
    firsts = {ProxyPool(ENTRIES, enabled=True, rng=random.Random(seed)).pick() for seed in range(40)}
    assert len(firsts) > 1


def test_disabled_or_empty_is_always_direct() -> None:
    assert ProxyPool(ENTRIES, enabled=False).pick("x") is None
    assert not ProxyPool(ENTRIES, enabled=False).active
    assert ProxyPool([], enabled=True).pick() is None
    only_direct = ProxyPool(["", ""], enabled=True)
    assert only_direct.active and {only_direct.pick() for _ in range(10)} == {None}


def test_sticky_is_stable_and_even() -> None:
    pool = ProxyPool(ENTRIES, enabled=True, strategy="sticky", rng=random.Random(2))
    first = {f"acc{i}": pool.pick(f"acc{i}") for i in range(40)}
    for _ in range(5):
        for account, proxy in first.items():
            assert pool.pick(account) == proxy
    spread = collections.Counter(first.values())
    assert sorted(spread.values()) == [10, 10, 10, 10]
    assert pool.assigned("acc0") == first["acc0"]
    assert [s["sticky_accounts"] for s in pool.stats()] == [10, 10, 10, 10]


def test_quarantine_and_return_after_cooldown() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=3, quarantine_seconds=60, clock=clock,
                     rng=random.Random(3))
    pool.report_failure("http://a:1")
    pool.report_failure("http://a:1")
    assert "http://a:1" in counts(pool, 40)  # two failures: still in use
    pool.report_failure("http://a:1")
    seen = counts(pool, 300)
    assert "http://a:1" not in seen and len(seen) == 3
    stats = {s["proxy"]: s for s in pool.stats()}
    assert stats["http://a:1"]["quarantined"] and stats["http://a:1"]["quarantine_left"] == 60.0

    clock.now += 59.0
    assert "http://a:1" not in counts(pool, 30)
    clock.now += 1.5
    back = counts(pool, 400)
    assert back["http://a:1"] == 100  # it returns by itself, at the others' level (no stampede)
    assert set(back.values()) == {100}


def test_success_resets_the_failure_streak() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=2, clock=clock)
    pool.report_failure("socks5://b:2")
    pool.report_success("socks5://b:2")
    pool.report_failure("socks5://b:2")
    assert "socks5://b:2" in counts(pool, 20)
    pool.report_failure("socks5://b:2")
    assert "socks5://b:2" not in counts(pool, 20)
    pool.report_success("socks5://b:2")  # a lease through it worked after all
    assert "socks5://b:2" in counts(pool, 20)


def test_returned_entry_is_requarantined_by_one_more_failure() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=3, quarantine_seconds=10, clock=clock)
    for _ in range(3):
        pool.report_failure("socks4://c:3")
    clock.now += 11
    pool.report_failure("socks4://c:3")  # no success since: straight back into quarantine
    assert "socks4://c:3" not in counts(pool, 20)


def test_direct_entry_can_be_quarantined_too() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=1, clock=clock)
    pool.report_failure(None)
    assert None not in counts(pool, 30)


def test_all_quarantined_falls_back_to_the_first_quarantined() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=1, quarantine_seconds=100, clock=clock)
    for entry in ["socks5://b:2", "", "socks4://c:3", "http://a:1"]:
        pool.report_failure(entry)
        clock.now += 1
    assert counts(pool, 10) == {"socks5://b:2": 10}  # never nothing


def test_sticky_quarantined_entry_yields_another_temporarily() -> None:
    clock = FakeClock()
    pool = ProxyPool(ENTRIES, enabled=True, strategy="sticky", quarantine_failures=1, quarantine_seconds=30,
                     clock=clock)
    home = pool.pick("acc")
    pool.report_failure(home)
    others = counts(pool, 10, "acc")
    assert home not in others and len(others) >= 1
    clock.now += 31
    assert pool.pick("acc") == home  # its own exit again once the quarantine ends


def test_unknown_proxy_reports_are_ignored() -> None:
    pool = ProxyPool(ENTRIES, enabled=True, quarantine_failures=1)
    pool.report_failure("http://not-in-pool:9")
    assert len(counts(pool, 40)) == 4


def test_redact_proxy() -> None:
    assert redact_proxy("https://user:secret@h:8443") == "https://***@h:8443"
    assert redact_proxy("socks5://h:1080") == "socks5://h:1080"
    assert redact_proxy("") == "direct" and redact_proxy(None) == "direct"
    pool = ProxyPool(["https://user:secret@h:8443"], enabled=True)
    assert "secret" not in repr(pool.stats())


def test_from_settings() -> None:
    from deepseek2api.settings import Settings

    settings = Settings.from_dict({"proxy_pool_enabled": True, "proxy_pool": ["", "http://a:1"],
                                   "proxy_strategy": "sticky", "proxy_quarantine": {"failures": 5, "seconds": 9}})
    pool = ProxyPool.from_settings(settings)
    assert pool.active and pool.strategy == "sticky" and pool.quarantine_failures == 5
    assert pool.quarantine_seconds == 9 and pool.entries == ("", "http://a:1")
    assert not ProxyPool.from_settings(Settings.from_dict({"proxy_pool": ["http://a:1"]})).active
