"""The response store on its own, every backend (memory, SQLite, Redis): responses belong to their owner,
chains are stored by reference (linear bytes), the size limits hold, links stay alive while used."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_support import REDIS_SERVER, RedisServer
from deepseek2api.store.responses import (
    BrokenChain,
    MemoryResponseStore,
    PutResult,
    ResponseStore,
    SqliteResponseStore,
    StoredResponse,
    StoreLimits,
    chain_of,
    encoded,
    find_items,
    get_one,
    open_response_store,
)
from deepseek2api.store.responses_redis import RedisResponseStore

ALICE, BOB = "a" * 32, "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def record(response_id: str, expires_at: float, *, owner: str = ALICE, previous: str | None = None,
           text: str = "é") -> StoredResponse:
    return StoredResponse(response_id, owner,
                          {"id": response_id, "output": [{"type": "message", "id": f"msg_out_{response_id}",
                                                          "role": "assistant", "content": [{"text": "ok"}]}]},
                          [{"type": "message", "id": f"msg_in_{response_id}", "role": "user",
                            "content": [{"type": "input_text", "text": text}]},
                           {"type": "item_reference", "id": "msg_elsewhere"}],
                          previous, expires_at)


async def put(store: ResponseStore, rec: StoredResponse) -> PutResult:
    data, size = encoded(rec)
    return await store.put(rec, size, data)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, Clock, Path]]:
    kind: str = request.param
    if kind == "redis" and REDIS_SERVER is None:
        pytest.skip("no redis-server on this machine")
    yield kind, Clock(), tmp_path


class Stores:
    """Opens stores of one backend (a Redis server for the redis one), closes them all."""

    def __init__(self, kind: str, clock: Clock, tmp_path: Path) -> None:
        self.kind, self.clock, self.tmp_path = kind, clock, tmp_path
        self.opened: list[ResponseStore] = []
        self.redis: RedisServer | None = None

    def open(self, limits: StoreLimits | None = None) -> ResponseStore:
        store: ResponseStore
        if self.kind == "memory":
            store = MemoryResponseStore(60, limits, clock=self.clock)
        elif self.kind == "sqlite":
            store = SqliteResponseStore(self.tmp_path / "state.db", 60, limits, clock=self.clock)
        else:
            if self.redis is None:
                self.redis = RedisServer()
                self.redis.start()
            store = RedisResponseStore.from_url(self.redis.url, "ds2:{test}:", 60, limits)
            store._clock = self.clock
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()
        if self.redis is not None:
            self.redis.cleanup()


@pytest.fixture
async def stores(backend: tuple[str, Clock, Path]) -> AsyncIterator[Stores]:
    opened = Stores(*backend)
    yield opened
    await opened.close()


async def test_a_response_comes_back_whole_to_its_owner_only(stores: Stores) -> None:
    store = stores.open()
    now = stores.clock.now
    assert await put(store, record("resp_a", now + 60)) is PutResult.STORED
    got = await get_one(store, ALICE, "resp_a")
    assert got is not None and got.input_items == record("resp_a", 0).input_items and got.owner == ALICE
    assert got.body["output"][0]["id"] == "msg_out_resp_a" and abs(got.expires_at - (now + 60)) < 0.01
    assert await get_one(store, BOB, "resp_a") is None  # another owner sees an unknown id
    assert await store.locate(BOB, ["msg_in_resp_a"]) == {}
    assert await store.delete(BOB, "resp_a") is False
    assert await store.used(BOB) == 0 and await store.used(ALICE) == encoded(got)[1]
    found, holders = await find_items(store, ALICE, ["msg_in_resp_a", "msg_out_resp_a", "msg_elsewhere"])
    assert set(found) == {"msg_in_resp_a", "msg_out_resp_a"}  # references are not items themselves
    assert [h.id for h in holders] == ["resp_a"]
    assert await store.delete(ALICE, "resp_a") is True
    assert await get_one(store, ALICE, "resp_a") is None
    assert await store.delete(ALICE, "resp_a") is False
    assert (await find_items(store, ALICE, ["msg_in_resp_a"]))[0] == {}


# Redis expires by its own clock (the TTL is PEXPIREAT), so its expiry is checked in the cluster gateway test
@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)
async def test_entries_expire_after_their_ttl_unless_a_follow_up_renews_them(stores: Stores) -> None:
    store = stores.open()
    start = stores.clock.now
    await put(store, record("resp_old", start + 60))
    await put(store, record("resp_lone", start + 60))
    stores.clock.now += 50
    follow_up = record("resp_new", stores.clock.now + 60, previous="resp_old")
    await put(store, follow_up)
    chain = await chain_of(store, ALICE, "resp_new")
    assert chain is not None
    await store.extend(ALICE, chain, follow_up.expires_at)
    stores.clock.now += 20  # past the first two's own TTL
    assert await get_one(store, ALICE, "resp_lone") is None
    again = await chain_of(store, ALICE, "resp_new")
    assert again is not None and [r.id for r in again] == ["resp_old", "resp_new"]  # the link lived on
    stores.clock.now += 41
    assert await chain_of(store, ALICE, "resp_new") is None


async def test_a_40_step_chain_stores_linear_bytes(stores: Stores) -> None:
    store = stores.open()
    step = "x" * 30_000
    previous = None
    for n in range(40):
        await put(store, record(f"resp_{n}", stores.clock.now + 60, previous=previous, text=step))
        previous = f"resp_{n}"
    used = await store.used(ALICE)
    assert 40 * 30_000 <= used < 40 * 31_000  # each step once: 1.2 MB, where whole copies took 24.6 MB
    chain = await chain_of(store, ALICE, "resp_39")
    assert chain is not None and [r.id for r in chain] == [f"resp_{n}" for n in range(40)]
    if stores.kind == "sqlite":
        await store.close()
        size = sum(os.path.getsize(p) for p in stores.tmp_path.glob("state.db*"))
        assert size < 3 * 40 * 30_000


async def test_a_deleted_link_breaks_the_chain_loudly(stores: Stores) -> None:
    store = stores.open()
    for n, previous in enumerate((None, "resp_0", "resp_1")):
        await put(store, record(f"resp_{n}", stores.clock.now + 60, previous=previous))
    assert await store.delete(ALICE, "resp_1")
    with pytest.raises(BrokenChain) as caught:
        await chain_of(store, ALICE, "resp_2")
    assert caught.value.missing == "resp_1"
    assert await chain_of(store, BOB, "resp_2") is None  # another owner: simply unknown


async def test_the_limits_refuse_a_response_and_an_owner_beyond_them(stores: Stores) -> None:
    one = encoded(record("resp_probe", 0))[1]
    store = stores.open(StoreLimits(max_response_bytes=one + 10, max_owner_bytes=2 * one + 50))
    expires = stores.clock.now + 60
    assert await put(store, record("resp_big", expires, text="é" * 100)) is PutResult.TOO_LARGE
    assert await put(store, record("resp_001", expires)) is PutResult.STORED
    assert await put(store, record("resp_002", expires)) is PutResult.STORED
    assert await put(store, record("resp_003", expires)) is PutResult.OWNER_FULL
    assert await get_one(store, ALICE, "resp_003") is None
    assert await put(store, record("resp_004", expires, owner=BOB)) is PutResult.STORED  # per owner
    assert await store.delete(ALICE, "resp_001")
    assert await put(store, record("resp_003", expires)) is PutResult.STORED  # a delete frees its bytes


async def test_sqlite_responses_survive_a_restart_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteResponseStore(path, 3600)
    await put(first, record("resp_keep", 4_000_000_000.0))
    await first.close()
    again = open_response_store("sqlite", str(path), 3600)
    got = await get_one(again, ALICE, "resp_keep")
    assert got is not None and got.input_items[0]["content"][0]["text"] == "é"
    await again.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("backend_name", ["memory", "sqlite"])
def test_the_state_backend_picks_the_store(tmp_path: Path, backend_name: str) -> None:
    store = open_response_store(backend_name, str(tmp_path / "s.db"), 5, StoreLimits(10, 20))
    assert store.ttl == 5 and store.limits == StoreLimits(10, 20)
    assert isinstance(store, MemoryResponseStore if backend_name == "memory" else SqliteResponseStore)


async def test_redis_keeps_its_ttl_and_renews_what_a_follow_up_uses(tmp_path: Path) -> None:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server on this machine")
    stores = Stores("redis", Clock(), tmp_path)
    try:
        store = stores.open()
        assert isinstance(store, RedisResponseStore)
        now = time.time()
        old = record("resp_old", now + 60)
        await put(store, old)
        await put(store, record("resp_new", now + 600, previous="resp_old"))
        key, item_key = store._key("resp_old"), store._item_key(ALICE, "msg_in_resp_old")
        assert 0 < await store.client.pttl(key) <= 60_000
        await store.extend(ALICE, [old], now + 600)
        for renewed in (key, item_key):
            assert 60_000 < await store.client.pttl(renewed) <= 600_000
        await store.extend(ALICE, [old], now + 30)  # never shortened
        assert await store.client.pttl(key) > 60_000
        assert [r.id for r in await chain_of(store, ALICE, "resp_new") or []] == ["resp_old", "resp_new"]
    finally:
        await stores.close()
