"""The simulator's proof-of-work: real DeepSeekHashV1 challenges, single use, bound to path and time."""

from __future__ import annotations

import base64
import json
import re

import pytest

from deepseek2api.deepseek.pow_reference import hash_hex
from simulator_support import (
    COMPLETION,
    CONTINUE,
    asgi_client,
    auth,
    challenge,
    completion_body,
    encode_answer,
    login,
    new_session,
    small_config,
    solve,
    state_of,
)

INVALID = {"code": 40301, "msg": "INVALID_POW_RESPONSE", "data": None}


async def _post(client, token, session_id, header, path=COMPLETION):
    headers = auth(token) | ({"x-ds-pow-response": header} if header is not None else {})
    body = completion_body(session_id, "hi") if path == COMPLETION else {"chat_session_id": session_id,
                                                                          "message_id": 2, "fallback_to_resume": True}
    return await client.post(path, json=body, headers=headers)


async def test_challenge_shape_is_real_deepseek_hash_v1() -> None:
    async with asgi_client(small_config(difficulty=500)) as client:
        token = await login(client)
        ch = await challenge(client, token)
        assert ch["algorithm"] == "DeepSeekHashV1"
        assert re.fullmatch(r"[0-9a-f]{64}", ch["challenge"])
        assert re.fullmatch(r"[0-9a-f]{20}", ch["salt"])
        assert re.fullmatch(r"[0-9a-f]{64}", ch["signature"])
        assert ch["difficulty"] == 500 and ch["expire_after"] == 300000
        assert ch["target_path"] == COMPLETION
        assert isinstance(ch["expire_at"], int) and len(str(ch["expire_at"])) == 13
        answer = solve(ch)
        assert 0 <= answer < 500
        assert hash_hex(f"{ch['salt']}_{ch['expire_at']}_{answer}".encode()) == ch["challenge"]
        assert state_of(client).stats()["pow_challenges"] == 1


async def test_correct_answer_accepted_once_then_reuse_rejected() -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        ch = await challenge(client, token)
        header = encode_answer(ch, solve(ch))
        first = await _post(client, token, session_id, header)
        assert first.headers["content-type"].startswith("text/event-stream")
        second = await _post(client, token, await new_session(client, token), header)
        assert second.status_code == 200 and second.json() == INVALID
        assert state_of(client).stats()["pow_failures"] == 1


async def test_missing_header_is_40300() -> None:
    async with asgi_client() as client:
        token = await login(client)
        r = await _post(client, token, await new_session(client, token), None)
        assert r.json() == {"code": 40300, "msg": "MISSING_HEADER", "data": None}


async def test_wrong_target_path_rejected() -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        ch = await challenge(client, token, "/api/v0/file/upload_file")
        r = await _post(client, token, session_id, encode_answer(ch, solve(ch)))
        assert r.json() == INVALID
        # the header claiming another path than the challenge's is refused too
        ch = await challenge(client, token)
        r = await _post(client, token, session_id, encode_answer(ch, solve(ch), target_path=CONTINUE))
        assert r.json() == INVALID


async def test_expired_challenge_rejected() -> None:
    async with asgi_client() as client:
        state = state_of(client)
        now = [1_800_000_000.0]
        state.clock = lambda: now[0]
        token = await login(client)
        session_id = await new_session(client, token)
        ch = await challenge(client, token)
        header = encode_answer(ch, solve(ch))
        now[0] += 301
        assert (await _post(client, token, session_id, header)).json() == INVALID


@pytest.mark.parametrize("mangle", ["float", "wrong", "signature", "salt", "base64", "json", "algorithm", "string"])
async def test_malformed_or_wrong_answers_rejected(mangle: str) -> None:
    async with asgi_client() as client:
        token = await login(client)
        session_id = await new_session(client, token)
        ch = await challenge(client, token)
        answer = solve(ch)
        payload = json.loads(base64.b64decode(encode_answer(ch, answer)))
        if mangle == "float":
            payload["answer"] = float(answer)
        elif mangle == "wrong":
            payload["answer"] = (answer + 1) % ch["difficulty"]
        elif mangle == "signature":
            payload["signature"] = "0" * 64
        elif mangle == "salt":
            payload["salt"] = "f" * 20
        elif mangle == "algorithm":
            payload["algorithm"] = "SHA3"
        elif mangle == "string":
            payload["answer"] = str(answer)
        header = base64.b64encode(json.dumps(payload).encode()).decode()
        if mangle == "base64":
            header = "%%%not-base64%%%"
        elif mangle == "json":
            header = base64.b64encode(b"{not json").decode()
        assert (await _post(client, token, session_id, header)).json() == INVALID
        # a refused attempt does not burn the challenge: the right answer still works
        ok = await _post(client, token, session_id, encode_answer(ch, answer))
        assert ok.headers["content-type"].startswith("text/event-stream")


async def test_unpadded_base64_and_spaced_json_accepted() -> None:
    async with asgi_client() as client:
        token = await login(client)
        ch = await challenge(client, token)
        payload = {"algorithm": ch["algorithm"], "challenge": ch["challenge"], "salt": ch["salt"],
                   "signature": ch["signature"], "answer": solve(ch), "target_path": COMPLETION}
        header = base64.b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        r = await _post(client, token, await new_session(client, token), header)
        assert r.headers["content-type"].startswith("text/event-stream")


async def test_pow_can_be_switched_off() -> None:
    async with asgi_client(small_config(pow_required=False)) as client:
        token = await login(client)
        r = await _post(client, token, await new_session(client, token), None)
        assert r.headers["content-type"].startswith("text/event-stream")


async def test_issued_challenges_are_swept_when_expired() -> None:
    async with asgi_client() as client:
        state = state_of(client)
        now = [1_800_000_000.0]
        state.clock = lambda: now[0]
        token = await login(client)
        for _ in range(3):
            await challenge(client, token)
        assert len(state.pow) == 3
        now[0] += 400
        state.pow.sweep()
        assert len(state.pow) == 0


async def test_real_solver_interoperates_at_realistic_difficulty() -> None:
    pow_module = pytest.importorskip("deepseek2api.deepseek.pow")
    async with asgi_client(small_config(difficulty=144000)) as client:
        token = await login(client)
        ch = await challenge(client, token)
        parsed = pow_module.PowChallenge.from_dict(ch)
        header = pow_module.encode_pow_response(parsed, await pow_module.solve_async(parsed))
        r = await _post(client, token, await new_session(client, token), header)
        assert r.headers["content-type"].startswith("text/event-stream")
