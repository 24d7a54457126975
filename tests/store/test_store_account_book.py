"""Runtime-added accounts survive a restart in the state file, which stays private to its owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deepseek2api.settings import AccountSettings
from deepseek2api.store.account_book import (
    AccountBook,
    AccountBookError,
    MemoryAccountBook,
    SqliteAccountBook,
)
from deepseek2api.store.base import AccountState
from deepseek2api.store.sqlite import SqliteStateStore

DELTA = AccountSettings(email="delta@example.com", password="pw:with:colons")
MOBILE = AccountSettings(mobile="+8613900000001", password="pw-mobile", proxy="socks5://u:p@10.0.0.1:1080")


def fields(account: AccountSettings) -> dict[str, object]:
    return account.model_dump(exclude_none=True)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_added_accounts_load_back_in_order_and_rebuild_as_settings(kind: str, tmp_path: Path) -> None:
    book: AccountBook = MemoryAccountBook() if kind == "memory" else SqliteAccountBook(tmp_path / "state.db")
    assert await book.add(DELTA.id, fields(DELTA)) is True
    assert await book.add(MOBILE.id, fields(MOBILE)) is True
    assert await book.add(DELTA.id, {"email": "delta@example.com", "password": "other"}) is False
    loaded = await book.load()
    assert list(loaded) == ["delta@example.com", "+8613900000001"]
    assert AccountSettings.model_validate(loaded["delta@example.com"]) == DELTA
    assert AccountSettings.model_validate(loaded["+8613900000001"]) == MOBILE
    assert await book.remove(DELTA.id) is True
    assert await book.remove(DELTA.id) is False
    assert list(await book.load()) == ["+8613900000001"]
    await book.close()


async def test_the_sqlite_book_survives_a_restart_beside_the_state_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    await store.save("alpha", AccountState(token="tok", status="cooling", until=5.0))
    book = SqliteAccountBook(path)
    await book.add(DELTA.id, fields(DELTA))
    await book.close()
    await store.close()

    reopened, store = SqliteAccountBook(path), SqliteStateStore(path)
    assert AccountSettings.model_validate((await reopened.load())[DELTA.id]).password == "pw:with:colons"
    assert (await store.load())["alpha"].status == "cooling"  # the state table is untouched
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    await reopened.close()
    await store.close()


async def test_a_closed_or_broken_book_fails_with_its_own_error(tmp_path: Path) -> None:
    book = SqliteAccountBook(tmp_path / "state.db")
    await book.close()
    with pytest.raises(AccountBookError):
        await book.load()
    (tmp_path / "dir.db").mkdir()
    broken = SqliteAccountBook(tmp_path / "dir.db")
    with pytest.raises(AccountBookError):
        await broken.add(DELTA.id, fields(DELTA))
    await broken.close()
