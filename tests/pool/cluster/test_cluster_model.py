"""The shared pool's scripts against a small Python model, on a real redis-server (hypothesis).

The model is the specification in a few lines: least-recently-granted usable account with a free
slot (ties by id), at most `cap` leases per account, idempotent fenced release, health merging (a
cool-down never overrides a ban nor shortens a mute; the operator's forced state always applies),
and the refusal reason when nothing can be granted. Times are far in the future so nothing expires
while a run lasts; expiry, restart and queueing have their own tests in test_cluster_leases.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from cluster_support import REDIS_SERVER, RedisServer, accounts, coordinator
from deepseek2api.pool.cluster import (
    ClusterConfig,
    ClusterCoordinator,
    ClusterExhausted,
    ClusterLease,
    HealthReport,
)

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs it)")

T = TypeVar("T")
IDS = ["acc0", "acc1", "acc2"]
CAP = 2
TIMED = ("cooling", "muted")
DEAD = ("banned", "bad_credentials")
SERVER: RedisServer | None = None


@pytest.fixture(scope="module", autouse=True)
def redis_for_the_model() -> Iterator[None]:
    global SERVER
    if REDIS_SERVER is None:
        yield
        return
    SERVER = RedisServer()
    SERVER.start()
    try:
        yield
    finally:
        SERVER.cleanup()
        SERVER = None


@dataclass
class Health:
    status: str = "ready"
    until: int | None = None  # ms


class ScriptsMachine(RuleBasedStateMachine):
    leases = Bundle("leases")
    released = Bundle("released")

    def __init__(self) -> None:
        super().__init__()
        assert SERVER is not None
        flush = SERVER.client()
        flush.flushall()
        flush.close()
        self.loop = asyncio.new_event_loop()
        config = ClusterConfig(per_account_concurrency=CAP, lease_ttl=60.0, grace=1.0, recovery_window=0)
        accs = accounts(len(IDS))
        self.replicas: list[ClusterCoordinator] = [
            coordinator(SERVER.url, config, accs, replica=f"m{i}") for i in range(2)
        ]
        for coord in self.replicas:
            self.loop.run_until_complete(coord.start())
        self.health = {i: Health() for i in IDS}
        self.lru = dict.fromkeys(IDS, 0)
        self.seq = 0
        self.held: dict[str, int] = dict.fromkeys(IDS, 0)
        self.grants = dict.fromkeys(IDS, 0)
        self.base = int(time.time() * 1000) + 3_600_000

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        for coord in self.replicas:
            self.run(coord.close(release=False))
            self.run(coord._client.aclose())
        self.loop.close()

    # ---- the model -------------------------------------------------------------------

    def expected_refusal(self, exclude: frozenset[str]) -> str:
        soonest = False
        for acc in IDS:
            if acc in exclude:
                continue
            status = self.health[acc].status
            if status == "ready":
                return "all_busy"
            if status in TIMED:
                soonest = True
        return "all_cooling" if soonest else "none_usable"

    def merge(self, acc: str, report: Health, force: bool) -> str:
        current = self.health[acc]
        until = report.until
        if not force and report.status in TIMED:
            if current.status in DEAD:
                return "ignored"
            if current.status == "muted" and report.status == "cooling" and current.until and until \
                    and current.until >= until:
                return "ignored"
            if current.status == report.status and current.until and until and current.until > until:
                until = current.until
        self.health[acc] = Health(report.status, until if report.status in TIMED else None)
        return "applied"

    # ---- rules -----------------------------------------------------------------------

    @rule(target=leases, replica=st.integers(0, 1), exclude=st.frozensets(st.sampled_from(IDS), max_size=2))
    def acquire(self, replica: int, exclude: frozenset[str]) -> ClusterLease | object:
        free = [a for a in IDS if a not in exclude and self.health[a].status == "ready" and self.held[a] < CAP]
        try:
            lease = self.run(self.replicas[replica].acquire(exclude, wait=False))
        except ClusterExhausted as exc:
            assert not free, f"refused ({exc.reason}) although {free} had a free slot"
            assert exc.reason.value == self.expected_refusal(exclude)
            assert exc.retry_after >= 1
            return consumes_nothing()
        expected = min(free, key=lambda a: (self.lru[a], a))
        assert lease.account_id == expected
        self.seq += 1
        self.lru[expected] = self.seq
        self.held[expected] += 1
        self.grants[expected] += 1
        return lease

    @rule(target=released, lease=consumes(leases))
    def release(self, lease: ClusterLease | object) -> ClusterLease | object:
        if not isinstance(lease, ClusterLease):
            return lease
        assert self.run(lease.release()) is True
        self.held[lease.account_id] -= 1
        return lease

    @rule(lease=released)
    def release_again_changes_nothing(self, lease: ClusterLease | object) -> None:
        if isinstance(lease, ClusterLease):
            lease.released = False  # as if a second holder object with the old fence tried
            assert self.run(lease.release()) is False

    @rule(
        acc=st.sampled_from(IDS),
        status=st.sampled_from(["ready", "cooling", "muted", "banned", "bad_credentials"]),
        offset=st.integers(0, 5),
        force=st.booleans(),
    )
    def report(self, acc: str, status: str, offset: int, force: bool) -> None:
        until = self.base + offset * 1000 if status in TIMED else None
        expected = self.merge(acc, Health(status, until), force)
        health = HealthReport(status, "model", until / 1000 if until is not None else None)
        assert self.run(self.replicas[offset % 2].report(acc, health, force=force)) == expected

    @rule(lease=leases, status=st.sampled_from(["cooling", "banned"]), offset=st.integers(0, 5))
    def report_through_a_live_lease(self, lease: ClusterLease | object, status: str, offset: int) -> None:
        if not isinstance(lease, ClusterLease):
            return
        until = self.base + offset * 1000 if status in TIMED else None
        expected = self.merge(lease.account_id, Health(status, until), False)
        health = HealthReport(status, "model", until / 1000 if until is not None else None)
        assert self.run(lease.coordinator.report(lease.account_id, health, lease=lease)) == expected

    @rule(lease=released)
    def a_stale_report_is_dropped(self, lease: ClusterLease | object) -> None:
        if isinstance(lease, ClusterLease):
            health = HealthReport("banned", "stale")
            assert self.run(lease.coordinator.report(lease.account_id, health, lease=lease)) == "stale"

    @invariant()
    def redis_agrees_with_the_model(self) -> None:
        snap = self.run(self.replicas[0].snapshot())
        rows = {str(r["id"]): r for r in snap.accounts}
        for acc in IDS:
            row = rows[acc]
            assert row["in_use"] == self.held[acc] <= CAP
            assert row["status"] == self.health[acc].status
            assert row["requests"] == self.grants[acc]
            until = self.health[acc].until
            if until is not None:
                assert row["until"] == until / 1000
        assert snap.leases == sum(self.held.values())


_NOTHING = object()


def consumes_nothing() -> object:
    """A refused acquire still yields a bundle value; rules that get it do nothing."""
    return _NOTHING


ScriptsMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
test_the_scripts_behave_like_the_model = ScriptsMachine.TestCase
