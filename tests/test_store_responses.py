"""Stored Responses-API responses: both stores keep, expire after their TTL, delete, and survive a restart (sqlite)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deepseek2api.store.responses import (
    MemoryResponseStore,
    ResponseStore,
    SqliteResponseStore,
    StoredResponse,
    open_response_store,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def record(response_id: str, expires_at: float) -> StoredResponse:
    return StoredResponse(response_id, {"id": response_id, "output": [{"type": "message", "text": "é"}]},
                          [{"type": "message", "id": "msg_1", "role": "user"}], [{"type": "message", "id": "msg_0"}],
                          expires_at)


def stores(tmp_path: Path, clock: Clock) -> list[ResponseStore]:
    return [MemoryResponseStore(60, clock=clock), SqliteResponseStore(tmp_path / "state.db", 60, clock=clock)]


async def test_a_stored_response_comes_back_whole_until_it_expires(tmp_path: Path) -> None:
    clock = Clock()
    for store in stores(tmp_path, clock):
        clock.now = 1_000_000.0
        await store.put(record("resp_a", clock.now + store.ttl))
        got = await store.get("resp_a")
        assert got == record("resp_a", clock.now + 60)
        clock.now += 59
        assert await store.get("resp_a") is not None
        clock.now += 1
        assert await store.get("resp_a") is None, type(store).__name__
        await store.close()


async def test_delete_forgets_a_response_once(tmp_path: Path) -> None:
    clock = Clock()
    for store in stores(tmp_path, clock):
        await store.put(record("resp_d", clock.now + 60))
        assert await store.delete("resp_d") is True
        assert await store.get("resp_d") is None
        assert await store.delete("resp_d") is False
        assert await store.delete("resp_unknown") is False
        await store.close()


async def test_sqlite_responses_survive_a_restart_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteResponseStore(path, 3600)
    await first.put(record("resp_keep", 4_000_000_000.0))
    await first.close()
    again = open_response_store("sqlite", str(path), 3600)
    got = await again.get("resp_keep")
    assert got is not None and got.body["output"][0]["text"] == "é"
    await again.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_state_backend_picks_the_store(tmp_path: Path, backend: str) -> None:
    store = open_response_store(backend, str(tmp_path / "s.db"), 5)
    assert store.ttl == 5
    assert isinstance(store, MemoryResponseStore if backend == "memory" else SqliteResponseStore)


def test_responses_ttl_is_configurable_and_defaults_to_one_day() -> None:
    from pydantic import ValidationError

    from deepseek2api.settings import Settings

    assert Settings.model_validate({}).responses.ttl == 86400
    assert Settings.model_validate({"responses": {"ttl": 90}}).responses.ttl == 90
    with pytest.raises(ValidationError):
        Settings.model_validate({"responses": {"ttl": 0}})
