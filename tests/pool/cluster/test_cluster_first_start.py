"""A fresh cluster is told from one whose Redis lost its data (pool/cluster/membership.py).

Each "replica" is a coordinator with its own state file (the marker `cluster.joined.<name>`); a
replica restart is a new coordinator on the same file. The recovery window is set to 60 s, so a
grant during it is impossible and no test waits it out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cluster_support import REDIS_SERVER, RedisServer, accounts, coordinator
from deepseek2api.pool.cluster import ClusterConfig, ClusterCoordinator, ClusterUnavailable, UnavailableKind
from deepseek2api.pool.cluster.membership import StoredMembership
from deepseek2api.store.runtime_settings import SqliteRuntimeSettings

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs it)")

CONFIG = ClusterConfig(name="fresh", lease_ttl=1.5, grace=0.3, recovery_window=60.0, queue_timeout=2.0)
LOGGER = "deepseek2api.pool.cluster.coordinator"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.cleanup()


class Replicas:
    """Coordinators (each on its own state file) that are always closed, with their stores."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.started: list[tuple[ClusterCoordinator, SqliteRuntimeSettings]] = []

    def make(self, name: str, *, membership: bool = True) -> ClusterCoordinator:
        store = SqliteRuntimeSettings(self.tmp_path / f"{name}.db")
        marker = StoredMembership(store, CONFIG.name) if membership else None
        coord = coordinator(self.url, CONFIG, accounts(2), replica=name, membership=marker)
        self.started.append((coord, store))
        return coord

    async def close(self) -> None:
        for coord, store in self.started:
            await coord.close()
            await coord._client.aclose()
            await store.close()
        self.started.clear()


@pytest.fixture
async def replicas(tmp_path: Path, server: RedisServer) -> AsyncIterator[Replicas]:
    group = Replicas(tmp_path, server.url)
    try:
        yield group
    finally:
        await group.close()


async def granted(coord: ClusterCoordinator) -> bool:
    lease = await coord.acquire(wait=False)
    await lease.release()
    return True


async def recovering(coord: ClusterCoordinator) -> bool:
    with pytest.raises(ClusterUnavailable) as caught:
        await coord.acquire(wait=False)
    return caught.value.kind is UnavailableKind.RECOVERING


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and text in r.getMessage()]


async def test_replicas_starting_a_new_cluster_together_grant_at_once(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    coords = [replicas.make(f"r{i}") for i in range(3)]
    await asyncio.gather(*(c.start() for c in coords))  # racing seeds: the first decides, the rest join
    assert {c._epoch for c in coords} == {coords[0]._epoch}
    for coord in coords:
        assert await granted(coord)  # no 60 s window on a cluster that never existed
    assert (await coords[0].snapshot()).recovering == 0
    first = messages(caplog, "cluster fresh: first start, seeded")
    assert len(first) == 1 and first[0].levelno == logging.INFO
    assert not messages(caplog, "lost its data")
    for coord, store in replicas.started:  # each replica now remembers the epoch it joined
        marker = await store.get("cluster.joined.fresh")
        assert marker is not None and marker["epoch"] == coord._epoch


async def test_redis_losing_its_data_under_running_replicas_still_opens_the_window(
        server: RedisServer, replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    a, b = replicas.make("a"), replicas.make("b")
    await a.start()
    await b.start()
    assert await granted(a)
    flush = server.client()
    flush.flushall()  # the data is gone while both replicas run
    flush.close()
    assert await recovering(b)
    assert await recovering(a)
    lost = messages(caplog, "Redis lost its data; recovery window of")
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING


async def test_a_replica_restarted_against_an_emptied_redis_opens_the_window(
        server: RedisServer, replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    first = replicas.make("a")
    await first.start()
    assert await granted(first)
    await replicas.close()  # the replica stops ...
    server.restart()  # ... and Redis comes back empty (no persistence)
    caplog.clear()
    again = replicas.make("a")  # same state file: it was part of this cluster
    await again.start()
    assert await recovering(again)
    assert messages(caplog, "Redis lost its data; recovery window of")
    assert not messages(caplog, "first start")


async def test_without_a_state_file_an_empty_redis_counts_as_lost_data(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    coord = replicas.make("memory", membership=False)  # state.backend = "memory": nothing to remember with
    await coord.start()
    assert await recovering(coord)
    assert messages(caplog, "first start or lost data")


async def test_a_marker_for_another_cluster_name_does_not_count(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteRuntimeSettings(replicas.tmp_path / "a.db")
    try:
        await store.put("cluster.joined.other", {"epoch": "x", "at": 0})
    finally:
        await store.close()
    caplog.set_level(logging.INFO, logger=LOGGER)
    coord = replicas.make("a")
    await coord.start()
    assert await granted(coord)
    assert messages(caplog, "first start, seeded")
