"""Every entry of tests/data/pow/vectors.json, on every search backend.

The vectors were checked against DeepSeek's WASM; a backend that disagrees with any of them would
mint headers the server rejects. The native extension is tested with every SIMD kernel this CPU
can run (each is separate code), single-threaded and striped over threads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepseek2api.deepseek import pow as pow_module
from deepseek2api.deepseek import pow_reference
from deepseek2api.deepseek.pow import PowChallenge, PowError, PowUnsolvable

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "pow" / "vectors.json").read_text(encoding="utf-8")
)
NATIVE_SKIP = pytest.mark.skipif(
    not pow_module.native_available(),
    reason=f"native PoW extension not built/importable: {pow_module._NATIVE_IMPORT_ERROR}",
)
KERNELS = pow_module._native.kernels() if pow_module._native is not None else []
# (backend, threads): the fast paths as they run in production, plus the native single-thread path
SEARCHES = [
    pytest.param("native", None, marks=NATIVE_SKIP, id="native"),
    pytest.param("native", 1, marks=NATIVE_SKIP, id="native-1thread"),
    pytest.param("numpy", None, id="numpy"),
]


def _ids(entries: list[dict[str, Any]], key: str) -> list[str]:
    return [f"{i}-{entry.get(key, '')}"[:60] for i, entry in enumerate(entries)]


def _challenge(entry: dict[str, Any]) -> PowChallenge:
    return PowChallenge.from_dict({**entry, "signature": "0" * 64, "target_path": "/api/v0/chat/completion"})


@pytest.fixture(params=KERNELS or [pytest.param(None, marks=NATIVE_SKIP)])
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with one native kernel, then restore the default."""
    native = pow_module._native
    default = native.kernel()
    native.set_kernel(request.param)
    try:
        yield request.param
    finally:
        native.set_kernel(default)


def test_vector_file_shape() -> None:
    assert VECTORS["format"] == "deepseek-pow-vectors/1"
    counts = {key: len(VECTORS[key]) for key in ("hash_vectors", "challenges", "unsolvable", "invalid",
                                                  "published_challenges")}
    assert counts == {"hash_vectors": 30, "challenges": 20, "unsolvable": 6, "invalid": 8, "published_challenges": 6}


# --- the hash -----------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["hash_vectors"], ids=_ids(VECTORS["hash_vectors"], "note"))
def test_hash_vectors_reference(vector: dict[str, Any]) -> None:
    data = vector["input"].encode("utf-8")
    assert len(data) == vector["input_bytes"]
    assert pow_reference.hash_hex(data) == vector["hex"]


@NATIVE_SKIP
@pytest.mark.parametrize("vector", VECTORS["hash_vectors"], ids=_ids(VECTORS["hash_vectors"], "note"))
def test_hash_vectors_native(vector: dict[str, Any]) -> None:
    assert pow_module._native.hash_hex(vector["input"].encode("utf-8")) == vector["hex"]


def test_public_hash_hex_matches_reference_at_every_block_edge() -> None:
    for length in (0, 1, 55, 56, 134, 135, 136, 137, 271, 272, 273, 1000):
        data = bytes((i * 7 + length) % 256 for i in range(length))
        assert pow_module.hash_hex(data) == pow_reference.hash_hex(data), length


# --- solvable challenges --------------------------------------------------------------------------


@pytest.mark.parametrize("backend,threads", SEARCHES)
@pytest.mark.parametrize("entry", VECTORS["challenges"], ids=_ids(VECTORS["challenges"], "note"))
def test_challenges(entry: dict[str, Any], backend: str, threads: int | None) -> None:
    assert pow_module.solve(_challenge(entry), backend=backend, threads=threads) == entry["answer"]


@pytest.mark.parametrize("backend,threads", SEARCHES)
@pytest.mark.parametrize("entry", VECTORS["published_challenges"], ids=_ids(VECTORS["published_challenges"], "answer"))
def test_published_challenges(entry: dict[str, Any], backend: str, threads: int | None) -> None:
    assert pow_module.solve(_challenge(entry), backend=backend, threads=threads) == entry["answer"]


def test_every_native_kernel_solves_every_challenge(kernel: str) -> None:
    for entry in VECTORS["challenges"] + VECTORS["published_challenges"]:
        # one stripe; three stripes on fewer helpers (some run by the caller); the 1e6+ ranges once
        for threads in (1, 3) if entry["difficulty"] <= 300_000 else (3,):
            assert pow_module.solve(_challenge(entry), backend="native", threads=threads) == entry["answer"], (
                kernel, threads, entry)


def test_every_native_kernel_reports_unsolvable(kernel: str) -> None:
    for entry in VECTORS["unsolvable"]:
        with pytest.raises(PowUnsolvable):
            pow_module.solve(_challenge(entry), backend="native", threads=2)


def test_python_backend_tiny_solves() -> None:
    """The reference search is only fit for tiny ranges: answer 0 at difficulty 1, worst case at 1000."""
    for entry in VECTORS["challenges"]:
        if entry["difficulty"] <= 1000 or entry["answer"] <= 10:
            assert pow_module.solve(_challenge(entry), backend="python") == entry["answer"]


# --- unsolvable and invalid ----------------------------------------------------------------------


@pytest.mark.parametrize("backend,threads", SEARCHES)
@pytest.mark.parametrize("entry", VECTORS["unsolvable"], ids=_ids(VECTORS["unsolvable"], "reason"))
def test_unsolvable(entry: dict[str, Any], backend: str, threads: int | None) -> None:
    with pytest.raises(PowUnsolvable):
        pow_module.solve(_challenge(entry), backend=backend, threads=threads)


@pytest.mark.parametrize("backend", ["native", "numpy", "python"])
@pytest.mark.parametrize("entry", VECTORS["invalid"], ids=_ids(VECTORS["invalid"], "reason"))
def test_invalid_rejected_without_searching(entry: dict[str, Any], backend: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_search(*args: object) -> int:
        raise AssertionError("searched a malformed challenge")

    for name in ("_solve_native", "_solve_numpy", "_solve_python"):
        monkeypatch.setattr(pow_module, name, no_search)
    monkeypatch.setattr(pow_module, "_native", pow_module._native or object())  # backend resolves either way
    with pytest.raises(PowError) as caught:
        pow_module.solve(_challenge(entry), backend=backend)
    assert not isinstance(caught.value, PowUnsolvable)
