"""Sessions, message ids, parent checks, listing and deletion in the simulator."""

from __future__ import annotations

import re

from simulator_support import (
    asgi_client,
    auth,
    complete,
    completion_body,
    decode,
    envelope_ok,
    login,
    new_session,
    pow_header,
    state_of,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_create_session_has_the_2026_shape() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await client.post("/api/v0/chat_session/create", json={"agent": "chat"}, headers=auth(token))
        data = envelope_ok(r.json())
        assert data["ttl_seconds"] == 259200
        session = data["chat_session"]
        assert UUID.fullmatch(session["id"])
        assert session["title"] is None and session["current_message_id"] is None
        assert state_of(client).stats()["sessions_created"] == 1


async def test_message_ids_advance_by_two_and_parent_must_be_the_last_response() -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        first = decode((await complete(client, token, session_id, "one")).content)
        assert first.ready["request_message_id"] == 1 and first.ready["response_message_id"] == 2
        assert first.title
        # wrong parents: null on a follow-up, an old id, a future id
        for parent in (None, 1, 4):
            r = await complete(client, token, session_id, "two", parent=parent)
            assert r.json()["data"]["biz_code"] == 4, parent
            assert "parent" in r.json()["data"]["biz_msg"]
        second = decode((await complete(client, token, session_id, "two", parent=2)).content)
        assert (second.ready["request_message_id"], second.ready["response_message_id"]) == (3, 4)
        assert second.title is None  # only the first turn of a session gets a title
        third = decode((await complete(client, token, session_id, "three", parent=4)).content)
        assert third.ready["response_message_id"] == 6


async def test_unknown_or_foreign_session_is_an_envelope_error() -> None:
    async with asgi_client() as client:
        alice = await login(client)
        bob = await login(client, "bob@example.org", "bob-pw")
        bobs_session = await new_session(client, bob)
        for session_id in ("00000000-0000-4000-8000-000000000000", bobs_session):
            r = await complete(client, alice, session_id, "hi")
            assert r.status_code == 200
            body = r.json()
            assert body["code"] == 0 and body["data"]["biz_msg"] == "invalid chat session id"


async def test_fetch_page_delete_and_delete_all() -> None:
    async with asgi_client() as client:
        token = await login(client)
        ids = [await new_session(client, token) for _ in range(3)]
        r = await client.get("/api/v0/chat_session/fetch_page", params={"count": 2, "lte_cursor.pinned": "false"},
                             headers=auth(token))
        page = envelope_ok(r.json())
        assert len(page["chat_sessions"]) == 2 and page["has_more"] is True
        r = await client.post("/api/v0/chat_session/delete", json={"chat_session_id": ids[0]}, headers=auth(token))
        envelope_ok(r.json())
        r = await client.post("/api/v0/chat_session/delete", json={"chat_session_id": ids[0]}, headers=auth(token))
        assert r.json()["data"]["biz_msg"] == "invalid chat session id"
        r = await client.post("/api/v0/chat_session/delete_all", json={}, headers=auth(token))
        envelope_ok(r.json())
        r = await client.get("/api/v0/chat_session/fetch_page", headers=auth(token))
        assert envelope_ok(r.json())["chat_sessions"] == []
        assert state_of(client).stats()["deletes"] == 3


async def test_ref_files_are_refused_as_not_ready() -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        body = completion_body(session_id, "file") | {"ref_file_ids": ["file-1"]}
        r = await client.post("/api/v0/chat/completion", json=body,
                              headers=auth(token) | {"x-ds-pow-response": await pow_header(client, token)})
        assert r.json()["data"]["biz_code"] == 9
