"""The PoW module's contract around the search: validation, backend choice, the header, async use,
and the native module's own entry points (strides and the shared best-answer buffer)."""

from __future__ import annotations

import asyncio
import base64
import json
from array import array
from typing import Any

import pytest

from deepseek2api.deepseek import pow as pow_module
from deepseek2api.deepseek.pow import (
    PowChallenge,
    PowError,
    PowUnsolvable,
    decode_pow_response,
    encode_pow_response,
    solve,
    solve_async,
)

NATIVE_SKIP = pytest.mark.skipif(
    not pow_module.native_available(),
    reason=f"native PoW extension not built/importable: {pow_module._NATIVE_IMPORT_ERROR}",
)
SALT, EXPIRE_AT = "7d2c5793110c9297d417", 1740805400236
WORST_DIGEST = "6422985070ac042663aeaf41e048b8832c087adcf83cd940e24d4c856821773a"  # answer 143999 (vectors.json)


def make_challenge(answer: int | None = None, **changes: Any) -> PowChallenge:
    """The vectors' worst-case challenge, or one with the given answer, with fields overridden."""
    digest = WORST_DIGEST if answer is None else pow_module.hash_hex(f"{SALT}_{EXPIRE_AT}_{answer}".encode())
    fields: dict[str, Any] = {
        "algorithm": "DeepSeekHashV1", "challenge": digest, "salt": SALT, "signature": "ab" * 32,
        "difficulty": 144000, "expire_at": EXPIRE_AT, "target_path": "/api/v0/chat/completion",
        "expire_after": 300000,
    }
    fields.update(changes)
    return PowChallenge(**fields)


# --- from_dict -----------------------------------------------------------------------------------


def test_from_dict_takes_the_server_dict() -> None:
    server = {"algorithm": "DeepSeekHashV1", "challenge": WORST_DIGEST, "salt": SALT, "signature": "s" * 64,
              "difficulty": 144000, "expire_at": EXPIRE_AT, "expire_after": 300000,
              "target_path": "/api/v0/chat/completion", "something_new": 1}
    challenge = PowChallenge.from_dict(server)
    assert challenge == PowChallenge("DeepSeekHashV1", WORST_DIGEST, SALT, "s" * 64, 144000, EXPIRE_AT,
                                     "/api/v0/chat/completion", 300000)
    assert challenge.prefix == f"{SALT}_{EXPIRE_AT}_".encode()


def test_from_dict_rejects_missing_fields_and_non_objects() -> None:
    with pytest.raises(PowError, match="salt"):
        PowChallenge.from_dict({"algorithm": "DeepSeekHashV1", "challenge": WORST_DIGEST, "difficulty": 1,
                                "expire_at": 1})
    with pytest.raises(PowError):
        PowChallenge.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"algorithm": "DeepSeekHashV2"},
    {"challenge": WORST_DIGEST[:-2] + "  "},  # whitespace that bytes.fromhex would accept
    {"challenge": WORST_DIGEST + "00"},
    {"challenge": None},
    {"difficulty": True},
    {"difficulty": 144000.0},
    {"difficulty": "144000"},
    {"difficulty": 0},
    {"difficulty": 2**53},
    {"expire_at": 1740805400236.0},
    {"expire_at": -1},
    {"salt": None},
], ids=lambda changes: repr(changes)[:40])
def test_malformed_challenges_raise_before_searching(changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("_solve_native", "_solve_numpy", "_solve_python"):
        monkeypatch.setattr(pow_module, name, lambda *args: pytest.fail("searched a malformed challenge"))
    with pytest.raises(PowError) as caught:
        solve(make_challenge(**changes), backend="numpy")
    assert not isinstance(caught.value, PowUnsolvable)


def test_largest_allowed_difficulty_passes_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(pow_module, "_solve_numpy", lambda prefix, target, difficulty: seen.append(difficulty) or 7)
    assert solve(make_challenge(difficulty=2**53 - 1), backend="numpy") == 7
    assert seen == [2**53 - 1]


@pytest.mark.parametrize("backend", [pytest.param("native", marks=NATIVE_SKIP), "numpy"])
def test_uppercase_challenge_is_accepted(backend: str) -> None:
    challenge = make_challenge(answer=4242, challenge=make_challenge(answer=4242).challenge.upper())
    assert solve(challenge, backend=backend) == 4242


# --- backend choice ---------------------------------------------------------------------------------


def test_default_backend_is_native_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pow_module.BACKEND_ENV, raising=False)
    assert pow_module.active_backend() == ("native" if pow_module.native_available() else "numpy")
    monkeypatch.setattr(pow_module, "_native", None)
    assert pow_module.active_backend() == "numpy"
    assert not pow_module.native_available()
    assert pow_module.hash_hex(b"abc") == "f841106c601ce9be9bc38525e90d4178d47f21dd8eb9f238fc55ffaa4ca94506"


def test_environment_forces_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    monkeypatch.setattr(pow_module, "_solve_numpy", lambda *args: used.append("numpy") or 1)
    monkeypatch.setattr(pow_module, "_solve_python", lambda *args: used.append("python") or 2)
    monkeypatch.setenv(pow_module.BACKEND_ENV, "python")
    assert pow_module.active_backend() == "python"
    assert solve(make_challenge()) == 2
    assert solve(make_challenge(), backend="numpy") == 1  # an explicit argument still wins
    assert used == ["python", "numpy"]
    monkeypatch.setenv(pow_module.BACKEND_ENV, "wasm")
    with pytest.raises(ValueError, match="wasm"):
        solve(make_challenge())


def test_native_requested_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pow_module, "_native", None)
    with pytest.raises(RuntimeError, match="native"):
        solve(make_challenge(), backend="native")


# --- the header ---------------------------------------------------------------------------------------


def test_header_is_base64_of_compact_json_in_browser_key_order() -> None:
    challenge = make_challenge()
    header = encode_pow_response(challenge, 143999)
    raw = base64.b64decode(header).decode()
    assert raw == (
        '{"algorithm":"DeepSeekHashV1","challenge":"' + WORST_DIGEST + '","salt":"' + SALT + '",'
        '"answer":143999,"signature":"' + "ab" * 32 + '","target_path":"/api/v0/chat/completion"}'
    )
    decoded = decode_pow_response(header)
    assert list(decoded) == ["algorithm", "challenge", "salt", "answer", "signature", "target_path"]
    assert decoded["answer"] == 143999 and type(decoded["answer"]) is int


def test_header_target_path_override_and_answer_type() -> None:
    challenge = make_challenge()
    assert decode_pow_response(encode_pow_response(challenge, 0, "/api/v0/chat/continue"))["target_path"] == (
        "/api/v0/chat/continue")
    for bad in (86022.0, True, -1, "86022"):
        with pytest.raises(PowError):
            encode_pow_response(challenge, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("header", ["not base64!", base64.b64encode(b"[1, 2]").decode(),
                                    base64.b64encode(b"{nope").decode(), ""])
def test_decode_rejects_garbage(header: str) -> None:
    with pytest.raises(PowError):
        decode_pow_response(header)


def test_solved_header_round_trip() -> None:
    challenge = make_challenge(answer=86022)
    decoded = decode_pow_response(encode_pow_response(challenge, solve(challenge)))
    assert decoded["answer"] == 86022
    assert pow_module.hash_hex(f"{decoded['salt']}_{EXPIRE_AT}_{decoded['answer']}".encode()) == decoded["challenge"]


# --- async ----------------------------------------------------------------------------------------------


def _long_worst_case(backend: str) -> PowChallenge:
    """A worst-case challenge (answer = difficulty - 1) long enough to span many loop ticks: the
    vectors' 144000 one for numpy, a larger difficulty for the (much faster) native kernels."""
    if backend == "numpy":
        return make_challenge()
    difficulty = {"avx512": 4_000_000, "avx2": 1_000_000}.get(pow_module._native.kernel(), 300_000)
    return make_challenge(answer=difficulty - 1, difficulty=difficulty)


@pytest.mark.parametrize("backend", [pytest.param("native", marks=NATIVE_SKIP), "numpy"])
async def test_event_loop_keeps_serving_during_a_solve(backend: str) -> None:
    challenge = _long_worst_case(backend)
    ticks = 0
    solving = True

    async def ticker() -> None:
        nonlocal ticks
        while solving:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        answer = await asyncio.wait_for(solve_async(challenge, backend=backend), timeout=60)
    finally:
        solving = False
        await task
    assert answer == challenge.difficulty - 1
    assert ticks > 5


async def test_solve_async_raises_the_typed_errors() -> None:
    with pytest.raises(PowUnsolvable):
        await solve_async(make_challenge(difficulty=1000), backend="numpy")
    with pytest.raises(PowError):
        await solve_async(make_challenge(difficulty=0))


# --- the native module itself -----------------------------------------------------------------------


@NATIVE_SKIP
def test_native_strides_find_only_their_residue() -> None:
    native = pow_module._native
    prefix, target = f"{SALT}_{EXPIRE_AT}_".encode(), bytes.fromhex(WORST_DIGEST)  # answer 143999
    assert native.solve(prefix, target, 144000) == 143999
    assert native.solve(prefix, target, 143999) == -1
    assert native.solve(prefix, target, 144000, 143999) == 143999
    assert native.solve(prefix, target, 144000, 143999 - 5 * 7, 7) == 143999
    assert native.solve(prefix, target, 144000, 4, 7) == -1  # 143999 % 7 == 2
    assert native.solve(prefix, target, 144000, 2, 7) == 143999
    assert native.solve(prefix, target, 144000, start=200000) == -1


@NATIVE_SKIP
def test_native_shared_best_stops_and_is_lowered() -> None:
    native = pow_module._native
    prefix, target = f"{SALT}_{EXPIRE_AT}_".encode(), bytes.fromhex(WORST_DIGEST)
    best = array("q", [143999])  # "someone already found 143999": nothing at or above is searched
    assert native.solve(prefix, target, 144000, 0, 1, best) == -1
    best = array("q", [144000])
    assert native.solve(prefix, target, 144000, 0, 1, best) == 143999
    assert best[0] == 143999
    with pytest.raises(ValueError):
        native.solve(prefix, target, 144000, 0, 1, bytearray(4))
    with pytest.raises(BufferError):
        native.solve(prefix, target, 144000, 0, 1, b"\0" * 8)  # read-only


@NATIVE_SKIP
@pytest.mark.parametrize("args", [
    (b"p", b"\x00" * 31, 10), (b"p", b"\x00" * 32, -1), (b"p", b"\x00" * 32, 2**53 + 1),
    (b"p", b"\x00" * 32, 10, -1), (b"p", b"\x00" * 32, 10, 0, 0),
])
def test_native_argument_checks(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        pow_module._native.solve(*args)


@NATIVE_SKIP
def test_native_kernel_selection() -> None:
    native = pow_module._native
    kernels = native.kernels()
    assert kernels[-1] == "scalar" and native.kernel() == kernels[0]
    with pytest.raises(ValueError):
        native.set_kernel("quantum")
    assert native.kernel() == kernels[0]


def test_challenge_json_survives_a_round_trip() -> None:
    """What the client does: JSON → from_dict → solve; the answer stays an int in the header."""
    challenge = PowChallenge.from_dict(json.loads(json.dumps(make_challenge(answer=10).__dict__)))
    header = json.loads(base64.b64decode(encode_pow_response(challenge, solve(challenge))))
    assert header["answer"] == 10 and isinstance(header["answer"], int)
