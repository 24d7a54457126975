"""deepseek/files.py against the simulator: upload (own PoW), polling until parsed, vision fork,
`ref_file_ids` on a completion, and the error kinds of every way a file can fail."""

from __future__ import annotations

import pytest

from client_support import (
    ALICE,
    client,
    collect,
    content_of,
    errors_of,
    fresh_sim,
    login,
    on_sim_loop,
    queue_fault,
    reset_sim,
)
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.files import (
    FileUpload,
    PollPolicy,
    encode_multipart,
    fetch_files,
    fork_for_vision,
    upload_and_wait,
    upload_file,
)
from deepseek2api.simulator.files import parse_multipart

__all__ = ["client", "fresh_sim"]  # fixtures imported from client_support

NOTES = FileUpload("notes.txt", "text/plain", b"Agenda\nMARKER:teal-9 is the answer\n")
PNG = FileUpload("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(300), vision=True)


async def ask(client: DeepSeekClient, token: str, prompt: str, ref_file_ids: list[str],
              model_type: str = "default") -> list:
    session_id, header = await client.prepare_completion(token)
    return await collect(client.completion(token, session_id=session_id, prompt=prompt, pow_header=header,
                                           thinking=False, search=False, model_type=model_type,
                                           ref_file_ids=ref_file_ids))


async def test_an_uploaded_text_file_is_read_by_the_completion_that_refers_to_it(client, fresh_sim):
    token = await login(client)
    ids = await upload_and_wait(client, token, [NOTES])
    events = await ask(client, token, "What is the answer?", ids)
    assert not errors_of(events)
    assert 'I read the file "notes.txt"' in content_of(events) and "MARKER:teal-9" in content_of(events)
    stats = fresh_sim.state.stats()
    assert stats["files"]["uploads"] == 1
    assert stats["requests"]["fetch_files"] >= 2  # PENDING → PARSING → SUCCESS takes polls
    assert stats["pow_failures"] == 0


async def test_several_files_keep_their_order_and_a_large_one_arrives_intact(client, fresh_sim):
    token = await login(client)
    big = FileUpload("big.txt", "text/plain", b"MARKER:big " + b"0123456789" * 150_000)  # > 1 MiB: built off-loop
    ids = await upload_and_wait(client, token, [NOTES, big])
    statuses = await fetch_files(client, token, ids)
    assert [s.file_name for s in statuses] == ["notes.txt", "big.txt"]
    assert statuses[1].file_size == len(big.data) and statuses[1].status == "SUCCESS"


async def test_a_vision_upload_describes_the_image_in_vision_mode(client):
    token = await login(client)
    ids = await upload_and_wait(client, token, [PNG])
    events = await ask(client, token, "What is in the picture?", ids, model_type="vision")
    assert f'I see an image of {len(PNG.data)} bytes (PNG) in "photo.png".' in content_of(events)


async def test_an_image_uploaded_for_text_can_be_forked_for_vision(client):
    token = await login(client)
    plain = await upload_file(client, token, FileUpload("photo.png", "image/png", PNG.data))
    with pytest.raises(UpstreamFailure) as caught:  # no text in an image: CONTENT_EMPTY
        await upload_and_wait(client, token, [FileUpload("again.png", "image/png", PNG.data)])
    assert caught.value.kind is ErrorKind.FILE_PARSE_FAILED
    statuses = await fetch_files(client, token, [plain.id])
    assert statuses[0].pending
    await fetch_files(client, token, [plain.id])  # now CONTENT_EMPTY
    vision_id = await fork_for_vision(client, token, plain.id)
    events = await ask(client, token, "describe", [vision_id], model_type="vision")
    assert "I see an image of" in content_of(events)


@pytest.mark.parametrize(("status", "kind"), [
    ("CONTENT_TOO_LONG", ErrorKind.FILE_TOO_LARGE),
    ("UNSUPPORTED", ErrorKind.FILE_UNSUPPORTED),
    ("FAILED", ErrorKind.FILE_PARSE_FAILED),
    ("CONTENT_FILTER", ErrorKind.CONTENT_FILTER),
])
async def test_a_failed_parse_raises_its_kind_and_no_other_account_would_help(client, status, kind):
    token = await login(client)
    doomed = FileUpload(f"doc[sim:file_status={status}].txt", "text/plain", b"hello")
    with pytest.raises(UpstreamFailure) as caught:
        await upload_and_wait(client, token, [doomed])
    assert caught.value.kind is kind
    assert status in caught.value.error.message
    assert not caught.value.kind.try_another_account


async def test_an_upload_over_the_size_limit_is_file_too_large(client, fresh_sim):
    reset_sim(fresh_sim, max_file_bytes=1000)
    token = await login(client)
    with pytest.raises(UpstreamFailure) as caught:
        await upload_file(client, token, FileUpload("big.txt", "text/plain", b"x" * 1001))
    assert caught.value.kind is ErrorKind.FILE_TOO_LARGE


async def test_parsing_that_never_ends_stops_at_the_poll_deadline(client, fresh_sim):
    reset_sim(fresh_sim, file_parse_polls=10_000)
    token = await login(client)
    with pytest.raises(UpstreamFailure) as caught:
        await upload_and_wait(client, token, [NOTES], policy=PollPolicy(timeout=0.3, first_delay=0.05, max_delay=0.1))
    assert caught.value.kind is ErrorKind.FILE_NOT_READY
    assert "PARSING" in caught.value.error.message


async def test_an_account_failure_during_upload_keeps_its_retryable_kind(client, fresh_sim):
    token = await login(client)
    queue_fault(fresh_sim, ALICE.email, "rate_limit", on="upload_file")
    with pytest.raises(UpstreamFailure) as caught:
        await upload_and_wait(client, token, [NOTES])
    assert caught.value.kind is ErrorKind.RATE_LIMITED and caught.value.kind.try_another_account


async def test_completion_with_an_unparsed_or_too_many_files_ends_with_a_classified_error(client, fresh_sim):
    reset_sim(fresh_sim, max_ref_files=1)
    token = await login(client)
    pending = await upload_file(client, token, NOTES)
    (error,) = errors_of(await ask(client, token, "read", [pending.id]))
    assert error.kind is ErrorKind.FILE_NOT_READY
    (error,) = errors_of(await ask(client, token, "read", [pending.id, pending.id]))
    assert error.kind is ErrorKind.TOO_MANY_FILES


async def test_vision_unavailable_is_its_own_kind(client, fresh_sim):
    reset_sim(fresh_sim, vision_available=False)
    token = await login(client)
    ids = await upload_and_wait(client, token, [PNG])
    (error,) = errors_of(await ask(client, token, "describe", ids, model_type="vision"))
    assert error.kind is ErrorKind.VISION_UNAVAILABLE


async def test_files_go_with_the_session_that_used_them(client, fresh_sim):
    token = await login(client)
    ids = await upload_and_wait(client, token, [NOTES])
    session_id, header = await client.prepare_completion(token)
    await collect(client.completion(token, session_id=session_id, prompt="read", pow_header=header, thinking=False,
                                    search=False, ref_file_ids=ids))
    await client.delete_session(token, session_id=session_id)
    assert on_sim_loop(fresh_sim, fresh_sim.state.files.stats)["stored"] == 0


def test_multipart_body_names_the_file_safely_and_keeps_the_bytes():
    data = b"line\r\n--not-a-boundary\r\n\x00\xff"
    body, content_type = encode_multipart(FileUpload('we"ird\r\nname.txt', "text/plain", data))
    assert content_type.startswith("multipart/form-data; boundary=")
    name, parsed = parse_multipart(body, content_type)
    assert parsed == data
    assert "\r" not in name and "\n" not in name and '"' not in name


async def test_a_non_ascii_file_name_arrives_as_written(client):
    token = await login(client)
    status = await upload_file(client, token, FileUpload("报告 2026.txt", "text/plain", b"MARKER:cn"))
    assert status.file_name == "报告 2026.txt"
