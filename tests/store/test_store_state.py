"""State store: roundtrips, persistence across reopen, corruption recovery, crash safety."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deepseek2api.settings import StateSettings
from deepseek2api.store import AccountState, MemoryStateStore, SqliteStateStore, StateStore, open_store

STATE = AccountState(token="tok-1", status="cooling", reason="rate limited", until=1234.5, updated_at=1000.0,
                     credentials="abcd", requests=7, failures=2)


async def test_memory_store_roundtrip() -> None:
    store = MemoryStateStore()
    assert isinstance(store, StateStore)
    assert await store.load() == {}
    await store.save("a", STATE)
    await store.save("b", AccountState(token=None, status="banned", reason="x", until=None, updated_at=1.0))
    loaded = await store.load()
    assert loaded["a"] == STATE and loaded["b"].status == "banned"
    loaded.clear()  # the caller's dict is a copy
    assert len(await store.load()) == 2
    await store.close()


async def test_sqlite_roundtrip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.db"
    store = SqliteStateStore(path)
    assert isinstance(store, StateStore)
    assert await store.load() == {}
    await store.save("a@example.com", STATE)
    await store.save("b", AccountState(token=None, status="ready", reason="", until=None, updated_at=2.0))
    await store.save("a@example.com", _replace(STATE, requests=8))
    assert (await store.load())["a@example.com"].requests == 8
    await store.close()
    await store.close()  # idempotent

    again = SqliteStateStore(path)
    loaded = await again.load()
    assert loaded == {"a@example.com": _replace(STATE, requests=8),
                      "b": AccountState(token=None, status="ready", reason="", until=None, updated_at=2.0)}
    assert again.persistent
    await again.close()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _replace(state: AccountState, **changes: object) -> AccountState:
    import dataclasses

    return dataclasses.replace(state, **changes)


async def test_sqlite_work_runs_on_the_worker_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    original = SqliteStateStore._upsert

    def spy(conn: sqlite3.Connection, account_id: str, state: AccountState) -> None:
        threads.append(threading.current_thread().name)
        original(conn, account_id, state)

    monkeypatch.setattr(SqliteStateStore, "_upsert", staticmethod(spy))
    store = SqliteStateStore(tmp_path / "state.db")
    await asyncio.gather(*(store.save(f"acc{i}", STATE) for i in range(10)))
    await store.close()
    assert len(threads) == 10
    assert len(set(threads)) == 1 and threads[0].startswith("ds2api-state")
    assert threads[0] != threading.current_thread().name


async def test_garbage_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    garbage = b"this is not a database at all" * 200
    path.write_bytes(garbage)
    store = SqliteStateStore(path)
    with caplog.at_level(logging.WARNING, logger="deepseek2api.store"):
        assert await store.load() == {}
    await store.save("a", STATE)
    await store.close()
    aside = sorted(tmp_path.glob("state.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert store.moved_aside == [str(aside[0])]
    assert "moving it aside" in caplog.text
    again = SqliteStateStore(path)
    assert (await again.load())["a"] == STATE
    await again.close()


async def test_malformed_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    for i in range(200):
        await store.save(f"account-{i:03d}", _replace(STATE, reason="x" * 200))
    await store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 4 * page] = b"\x5a" * (2 * page)  # smash table pages, keep the header valid
    path.write_bytes(bytes(data))

    store = SqliteStateStore(path)
    assert await store.load() == {}  # fresh start, not an exception
    await store.save("new", STATE)
    assert await store.load() == {"new": STATE}
    await store.close()
    assert len(list(tmp_path.glob("state.db.corrupt-*"))) == 1


async def test_unopenable_path_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SqliteStateStore(blocker / "state.db")  # a path below a regular file cannot exist
    with caplog.at_level(logging.WARNING, logger="deepseek2api.store"):
        assert await store.load() == {}
    await store.save("a", STATE)
    assert await store.load() == {"a": STATE}
    assert not store.persistent and "memory" in caplog.text
    await store.close()


async def test_open_store_picks_backend(tmp_path: Path) -> None:
    memory = open_store(StateSettings(backend="memory"))
    assert isinstance(memory, MemoryStateStore)
    sqlite_store = open_store(StateSettings(backend="sqlite", path=str(tmp_path / "s.db")))
    assert isinstance(sqlite_store, SqliteStateStore)
    await sqlite_store.close()
    assert not (tmp_path / "s.db").exists()  # opened lazily: nothing touched until used


CRASH_WRITER = r"""
import asyncio, sys
from deepseek2api.store import AccountState, SqliteStateStore

async def main():
    store = SqliteStateStore(sys.argv[1])
    await store.load()
    n = 0
    while n < 100000:
        n += 1
        for account in ("a", "b", "c"):
            await store.save(account, AccountState(token=f"tok-{n}", status="ready", reason="r" * (n % 500),
                                                   until=None, updated_at=float(n), requests=n))
        print(n, flush=True)

asyncio.run(main())
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
async def test_kill_9_while_writing_keeps_committed_states(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH_WRITER, str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    committed = 0
    try:
        while committed < 40:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert line, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            committed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SqliteStateStore(path)
    states = await store.load()
    await store.close()
    assert set(states) == {"a", "b", "c"}
    for state in states.values():
        assert state.requests >= committed  # everything reported as saved survived
        assert state.token == f"tok-{state.requests}"  # and each row is internally consistent
        assert state.reason == "r" * (state.requests % 500)
