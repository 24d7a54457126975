"""Client strings kept in bounded maps are bounded themselves: a 9 MB session id or a
5 MB model name is stored as a digest or a cut copy, not 4096 or 500 times whole."""

from __future__ import annotations

import time

from deepseek2api.api.admin.requestlog import MODEL_CHARS, RequestEntry, RequestLog
from deepseek2api.api.anthropic.serving import SessionAccounts


def test_a_huge_session_id_is_kept_as_a_digest_and_still_finds_its_account() -> None:
    sessions = SessionAccounts(size=4)
    huge = "u" * 9_000_000
    sessions.remember(huge, "acct-1")
    sessions.remember("short-session", "acct-2")
    assert sessions.get(huge) == "acct-1" and sessions.get("u" * 8_999_999 + "v") is None
    assert sessions.get("short-session") == "acct-2"
    assert max(len(key) for key in sessions._last) < 100


def test_the_request_log_cuts_a_huge_model_name() -> None:
    log = RequestLog(size=3)
    log.record(RequestEntry(time=time.time(), surface="openai", model="m" * 5_000_000, status=404))
    kept = log.recent()[0]
    assert len(kept.model) <= MODEL_CHARS + 1 and kept.model.startswith("mmm") and kept.status == 404
    log.record(RequestEntry(time=time.time(), surface="openai", model="deepseek-chat", status=200))
    assert log.recent()[-1].model == "deepseek-chat"
