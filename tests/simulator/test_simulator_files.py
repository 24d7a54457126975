"""The simulator's file endpoints: upload (multipart + its own PoW), status polling, vision fork,
`ref_file_ids` checks on a completion, replies that show the files were read, deletion with the session."""

from __future__ import annotations

import httpx

from simulator_support import (
    COMPLETION,
    asgi_client,
    auth,
    completion_body,
    decode,
    envelope_ok,
    login,
    new_session,
    pow_header,
    small_config,
    sse_events,
    state_of,
)

UPLOAD = "/api/v0/file/upload_file"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
NOTES = b"Meeting notes\nMARKER:violet-42 is the code word\nnothing else\n"


def multipart(filename: str, data: bytes, content_type: str = "text/plain") -> tuple[bytes, str]:
    boundary = "sim-test-boundary-7f3a"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def upload(client: httpx.AsyncClient, token: str, filename: str, data: bytes, *, model_type: str = "default",
                 pow_path: str = UPLOAD, size: int | None = None, extra: dict[str, str] | None = None) -> dict:
    body, content_type = multipart(filename, data)
    headers = auth(token) | {"content-type": content_type, "x-ds-pow-response": await pow_header(client, token, pow_path),
                             "x-file-size": str(len(data) if size is None else size), "x-model-type": model_type,
                             "x-thinking-enabled": "0"} | (extra or {})
    response = await client.post(UPLOAD, content=body, headers=headers)
    return response.json()


async def poll(client: httpx.AsyncClient, token: str, *ids: str) -> list[dict]:
    r = await client.get("/api/v0/file/fetch_files", params={"file_ids": ",".join(ids)}, headers=auth(token))
    return envelope_ok(r.json())["files"]


async def parsed(client: httpx.AsyncClient, token: str, filename: str, data: bytes, **kwargs: object) -> str:
    file_id = envelope_ok(await upload(client, token, filename, data, **kwargs))["id"]
    for _ in range(5):
        (item,) = await poll(client, token, file_id)
        if item["status"] != "PARSING":
            break
    assert item["status"] == "SUCCESS", item
    return file_id


async def ask(client: httpx.AsyncClient, token: str, session_id: str, prompt: str, ref_file_ids: list[str],
              model_type: str = "default") -> httpx.Response:
    body = completion_body(session_id, prompt) | {"ref_file_ids": ref_file_ids, "model_type": model_type}
    headers = auth(token) | {"x-ds-pow-response": await pow_header(client, token)}
    return await client.post(COMPLETION, json=body, headers=headers)


async def test_upload_answers_pending_and_polls_advance_through_parsing_to_success() -> None:
    async with asgi_client(small_config(file_parse_polls=3)) as client:
        token = await login(client)
        first = envelope_ok(await upload(client, token, "notes.txt", NOTES))
        assert first["status"] == "PENDING" and first["file_name"] == "notes.txt" and first["file_size"] == len(NOTES)
        statuses = [(await poll(client, token, first["id"]))[0]["status"] for _ in range(4)]
        assert statuses == ["PARSING", "PARSING", "SUCCESS", "SUCCESS"]


async def test_upload_needs_a_pow_minted_for_the_upload_path() -> None:
    async with asgi_client() as client:
        token = await login(client)
        refused = await upload(client, token, "notes.txt", NOTES, pow_path=COMPLETION)
        assert refused == {"code": 40301, "msg": "INVALID_POW_RESPONSE", "data": None}
        body, content_type = multipart("notes.txt", NOTES)
        r = await client.post(UPLOAD, content=body, headers=auth(token) | {"content-type": content_type,
                                                                            "x-file-size": str(len(NOTES))})
        assert r.json()["code"] == 40300
        assert state_of(client).files.stats()["uploads"] == 0


async def test_upload_refuses_a_json_content_type_a_wrong_size_header_and_a_file_over_the_limit() -> None:
    async with asgi_client(small_config(max_file_bytes=100)) as client:
        token = await login(client)
        r = await client.post(UPLOAD, json={"file": "x"}, headers=auth(token))
        assert r.status_code == 400 and r.json()["msg"] == "Invalid boundary"
        mismatch = await upload(client, token, "notes.txt", NOTES, size=3)
        assert mismatch["code"] == 40000 and "x-file-size" in mismatch["msg"]
        too_big = await upload(client, token, "big.txt", b"x" * 101)
        assert too_big["data"]["biz_code"] != 0 and "file too large" in too_big["data"]["biz_msg"]
        assert state_of(client).files.stats()["stored"] == 0


async def test_failure_status_on_request_by_header_or_file_name_directive() -> None:
    async with asgi_client(small_config(file_parse_polls=1)) as client:
        token = await login(client)
        by_name = envelope_ok(await upload(client, token, "doc[sim:file_status=CONTENT_TOO_LONG].txt", NOTES))
        by_header = envelope_ok(await upload(client, token, "doc.txt", NOTES,
                                             extra={"x-sim-file-status": "unsupported"}))
        items = {i["id"]: i["status"] for i in await poll(client, token, by_name["id"], by_header["id"])}
        assert items == {by_name["id"]: "CONTENT_TOO_LONG", by_header["id"]: "UNSUPPORTED"}


async def test_final_status_follows_the_bytes() -> None:
    async with asgi_client(small_config(file_parse_polls=1, max_file_chars=10)) as client:
        token = await login(client)
        ids = {name: envelope_ok(await upload(client, token, name, data))["id"] for name, data in
               [("long.txt", b"y" * 11), ("blob.bin", b"\xff\xfe\x00\x81" * 4), ("pic.png", PNG), ("empty.txt", b"")]}
        items = {i["file_name"]: i["status"] for i in await poll(client, token, *ids.values())}
        assert items == {"long.txt": "CONTENT_TOO_LONG", "blob.bin": "UNSUPPORTED", "pic.png": "CONTENT_EMPTY",
                         "empty.txt": "CONTENT_EMPTY"}


async def test_completion_refuses_unparsed_unknown_and_too_many_ref_files() -> None:
    async with asgi_client(small_config(max_ref_files=2, file_parse_polls=2)) as client:
        token = await login(client)
        session_id = await new_session(client, token)
        pending = envelope_ok(await upload(client, token, "notes.txt", NOTES))["id"]
        r = await ask(client, token, session_id, "read it", [pending])
        assert r.json()["data"] == {"biz_code": 9, "biz_msg": "invalid ref file id", "biz_data": None}
        r = await ask(client, token, session_id, "read it", ["file-nobody-uploaded"])
        assert r.json()["data"]["biz_code"] == 9
        r = await ask(client, token, session_id, "read it", [pending, pending, pending])
        assert r.json()["data"] == {"biz_code": 10, "biz_msg": "too many ref file", "biz_data": None}


async def test_another_accounts_file_is_not_a_valid_ref() -> None:
    async with asgi_client() as client:
        alice = await login(client)
        file_id = await parsed(client, alice, "notes.txt", NOTES)
        bob = await login(client, "bob@example.org", "bob-pw")
        r = await ask(client, bob, await new_session(client, bob), "read it", [file_id])
        assert r.json()["data"]["biz_code"] == 9


async def test_reply_echoes_the_markers_of_the_attached_text_and_pdf() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << >> stream\nBT (MARKER:pdf-7 appears here) Tj ET\nendstream\n%%EOF\n"
    async with asgi_client() as client:
        token = await login(client)
        ids = [await parsed(client, token, "notes.txt", NOTES), await parsed(client, token, "report.pdf", pdf)]
        r = await ask(client, token, await new_session(client, token), "What is the code word?", ids)
        content = decode(r.content).content
        assert 'You wrote: "What is the code word?"' in content
        assert f'I read the file "notes.txt" ({len(NOTES)} bytes). It contains MARKER:violet-42.' in content
        assert 'I read the PDF "report.pdf"' in content and "MARKER:pdf-7" in content


async def test_images_parse_only_in_vision_mode_and_fork_file_task_converts_one() -> None:
    async with asgi_client(small_config(file_parse_polls=1)) as client:
        token = await login(client)
        plain = envelope_ok(await upload(client, token, "pic.png", PNG))["id"]
        assert (await poll(client, token, plain))[0]["status"] == "CONTENT_EMPTY"
        r = await client.post("/api/v0/file/fork_file_task", json={"file_id": plain, "to_model_type": "vision"},
                              headers=auth(token))
        forked = envelope_ok(r.json())
        assert forked["id"] != plain and forked["status"] == "PENDING" and forked["model_type"] == "vision"
        assert (await poll(client, token, forked["id"]))[0]["status"] == "SUCCESS"
        r = await ask(client, token, await new_session(client, token), "describe", [forked["id"]], "vision")
        assert f'I see an image of {len(PNG)} bytes (PNG) in "pic.png".' in decode(r.content).content


async def test_vision_turn_gets_the_unavailable_hint_when_vision_is_off() -> None:
    async with asgi_client(small_config(vision_available=False)) as client:
        token = await login(client)
        image = await parsed(client, token, "pic.png", PNG, model_type="vision")
        r = await ask(client, token, await new_session(client, token), "describe", [image], "vision")
        hint = dict(sse_events(r.content))["hint"]
        assert "vision is temporarily unavailable" in hint["content"]


async def test_the_inline_prompt_limit_answers_input_exceeds_limit_but_attached_text_does_not_count() -> None:
    async with asgi_client(small_config(max_prompt_chars=50)) as client:
        token = await login(client)
        session_id = await new_session(client, token)
        r = await ask(client, token, session_id, "x" * 51, [])
        hint = dict(sse_events(r.content))["hint"]
        assert hint["finish_reason"] == "input_exceeds_limit"
        history = await parsed(client, token, "history.txt", b"MARKER:long-history " + b"z" * 5000)
        r = await ask(client, token, session_id, "see the attached history", [history])
        assert "MARKER:long-history" in decode(r.content).content


async def test_files_are_deleted_with_the_session_that_used_them() -> None:
    async with asgi_client() as client:
        token = await login(client)
        used, unused = await parsed(client, token, "a.txt", NOTES), await parsed(client, token, "b.txt", NOTES)
        session_id = await new_session(client, token)
        r = await ask(client, token, session_id, "read", [used])
        assert decode(r.content).status == "FINISHED"
        r = await client.post("/api/v0/chat_session/delete", json={"chat_session_id": session_id},
                              headers=auth(token))
        envelope_ok(r.json())
        assert [i["id"] for i in await poll(client, token, used, unused)] == [unused]
        listing = (await client.get("/_sim/files")).json()
        assert listing["deleted"] == 1 and [f["id"] for f in listing["files"]] == [unused]


async def test_upload_faults_can_be_queued_for_the_upload_endpoint() -> None:
    async with asgi_client() as client:
        token = await login(client)
        state_of(client).add_fault("alice@example.org", "rate_limit", 1, "upload_file")
        body, content_type = multipart("notes.txt", NOTES)
        r = await client.post(UPLOAD, content=body, headers=auth(token) | {"content-type": content_type})
        assert r.status_code == 429
        assert envelope_ok(await upload(client, token, "notes.txt", NOTES))["status"] == "PENDING"
