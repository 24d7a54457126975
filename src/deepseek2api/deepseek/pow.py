"""DeepSeekHashV1 proof-of-work: validate a challenge, find its answer, build `x-ds-pow-response`.

The answer is the smallest n in [0, difficulty) with H(f"{salt}_{expire_at}_{n}") == challenge, where H
is SHA3-256 on Keccak-p[1600, 23] (shared/pow/README.md). Three interchangeable search backends:

- ``native``: the C extension `_pow` (SIMD kernel picked per CPU, GIL released, nonce range striped
  over a few threads that share the best answer found so far) — the default when it was built;
- ``numpy``: the same search vectorised over a batch of nonces — the fallback without a compiler;
- ``python``: `pow_reference` one nonce at a time — far too slow to use, kept for tests.

`DS2API_POW_BACKEND=native|numpy|python` overrides the default (an explicit ``backend=`` argument
still wins). Solving is CPU work: async code must call `solve_async`, which runs it in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import threading
from array import array
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from . import pow_reference


class _NativeModule(Protocol):
    """What pow.py uses of the C extension (`_pow.pyi` types the module itself)."""

    def hash_hex(self, data: bytes, /) -> str: ...

    def solve(
        self, prefix: bytes, target: bytes, difficulty: int, start: int = ..., step: int = ...,
        best: array[int] | None = ...,
    ) -> int: ...

    def kernels(self) -> list[str]: ...

    def kernel(self) -> str: ...

    def set_kernel(self, name: str, /) -> None: ...


_native: _NativeModule | None
try:
    from . import _pow
except ImportError as _error:  # built without a compiler, or a foreign platform: numpy takes over
    _native = None
    _NATIVE_IMPORT_ERROR: str | None = str(_error)
else:
    _native = _pow
    _NATIVE_IMPORT_ERROR = None

ALGORITHM = "DeepSeekHashV1"
BACKEND_ENV = "DS2API_POW_BACKEND"
BACKENDS = ("native", "numpy", "python")
MAX_DIFFICULTY = 2**53  # exclusive: the WASM refuses difficulty >= 2**53

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_RATE = 136


class PowError(ValueError):
    """The challenge is malformed (or a header cannot be decoded): searching would be pointless."""


class PowUnsolvable(PowError):
    """The challenge is well formed but no nonce below its difficulty matches."""


@dataclass(frozen=True)
class PowChallenge:
    """A challenge as `create_pow_challenge` returns it (`data.biz_data.challenge`)."""

    algorithm: str
    challenge: str
    salt: str
    signature: str
    difficulty: int
    expire_at: int  # Unix time in ms
    target_path: str
    expire_after: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowChallenge:
        """Take the server's dict as is (values are checked by `solve`); unknown keys are ignored."""
        if not isinstance(data, Mapping):
            raise PowError(f"a PoW challenge must be a JSON object, not {type(data).__name__}")
        missing = [key for key in ("algorithm", "challenge", "salt", "difficulty", "expire_at") if key not in data]
        if missing:
            raise PowError(f"PoW challenge lacks {', '.join(missing)}")
        return cls(
            algorithm=data["algorithm"],
            challenge=data["challenge"],
            salt=data["salt"],
            signature=data.get("signature", ""),
            difficulty=data["difficulty"],
            expire_at=data["expire_at"],
            target_path=data.get("target_path", ""),
            expire_after=data.get("expire_after"),
        )

    @property
    def prefix(self) -> bytes:
        """`${salt}_${expireAt}_`: what every candidate nonce is appended to."""
        return f"{self.salt}_{self.expire_at}_".encode()


# --- public API ------------------------------------------------------------------------------------


def native_available() -> bool:
    """True when the C extension was built and imports on this machine."""
    return _native is not None


def active_backend() -> str:
    """The backend `solve` uses when none is passed (the environment override included)."""
    return _resolve_backend(None)


def backend_notice() -> tuple[bool, str]:
    """(is it the fast native search?, one line saying which backend runs and how to get the fast one).

    Logged at start, so an install that silently fell back to numpy (no C compiler, or an old
    checkout on `sys.path` ahead of the installed package) is visible at once.
    """
    try:
        name = active_backend()
    except (ValueError, RuntimeError) as error:
        return False, f"proof-of-work backend: {error}"
    if name == "native":
        return True, "proof-of-work backend: native (C extension)"
    if os.environ.get(BACKEND_ENV, "").strip():
        return False, (f"proof-of-work backend: {name}, chosen by {BACKEND_ENV}; every completion's proof-of-work "
                       "is much slower than with the native C extension")
    return False, (f"proof-of-work backend: {name}, because the native C extension is not built here "
                   f"({_NATIVE_IMPORT_ERROR}); each proof-of-work takes ~20x longer. For the fast one, install "
                   "with a C compiler present (e.g. apt-get install gcc): `pip install .`")


def solve(challenge: PowChallenge, *, backend: str | None = None, threads: int | None = None) -> int:
    """Validate `challenge`, then return its answer (the smallest matching nonce).

    Raises `PowError` for a malformed challenge (before any search) and `PowUnsolvable` when no
    nonce below the difficulty matches. `threads` caps the native search's threads (default: the
    usable CPUs, at most 4); other backends use one. Blocking: from async code use `solve_async`.
    """
    target = _validate(challenge)
    name = _resolve_backend(backend)
    if name == "native":
        answer = _solve_native(challenge.prefix, target, challenge.difficulty, threads)
    elif name == "numpy":
        answer = _solve_numpy(challenge.prefix, target, challenge.difficulty)
    else:
        answer = _solve_python(challenge.prefix, target, challenge.difficulty)
    if answer < 0:
        raise PowUnsolvable(f"no nonce below difficulty {challenge.difficulty} matches the challenge")
    return answer


async def solve_async(challenge: PowChallenge, *, backend: str | None = None) -> int:
    """`solve` in a worker thread, so the event loop keeps serving while the search runs."""
    return await asyncio.to_thread(solve, challenge, backend=backend)


def hash_hex(data: bytes) -> str:
    """DeepSeekHashV1 of `data` as 64 lowercase hex characters (native when available)."""
    if _native is not None:
        return _native.hash_hex(bytes(data))
    return pow_reference.hash_hex(bytes(data))


def encode_pow_response(challenge: PowChallenge, answer: int, target_path: str | None = None) -> str:
    """The `x-ds-pow-response` value: base64 of the compact JSON the browser sends.

    Key order and separators follow `JSON.stringify`; `answer` must be a JSON integer (a float
    like 86022.0 is rejected upstream).
    """
    if isinstance(answer, bool) or not isinstance(answer, int) or answer < 0:
        raise PowError(f"a PoW answer is a non-negative int, not {answer!r}")
    payload = {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "salt": challenge.salt,
        "answer": answer,
        "signature": challenge.signature,
        "target_path": challenge.target_path if target_path is None else target_path,
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode()).decode("ascii")


def decode_pow_response(header: str) -> dict[str, Any]:
    """Inverse of `encode_pow_response` (the simulator verifies headers with it)."""
    try:
        data = json.loads(base64.b64decode(header.strip(), validate=True))
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise PowError("x-ds-pow-response is not base64 of JSON") from None
    if not isinstance(data, dict):
        raise PowError("x-ds-pow-response does not hold a JSON object")
    return data


# --- validation and backend choice -----------------------------------------------------------------


def _validate(challenge: PowChallenge) -> bytes:
    """The 32 target bytes, once every field the search depends on is sound (the WASM's checks)."""
    if challenge.algorithm != ALGORITHM:
        raise PowError(f"unsupported PoW algorithm {challenge.algorithm!r} (expected {ALGORITHM})")
    digest = challenge.challenge
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise PowError("PoW challenge must be exactly 64 hex digits (32 bytes)")
    difficulty = challenge.difficulty
    if isinstance(difficulty, bool) or not isinstance(difficulty, int):
        raise PowError(f"PoW difficulty must be an integer, not {difficulty!r}")
    if not 0 < difficulty < MAX_DIFFICULTY:
        raise PowError(f"PoW difficulty {difficulty} is outside 1 .. 2**53-1")
    if not isinstance(challenge.salt, str):
        raise PowError("PoW salt must be a string")
    expire_at = challenge.expire_at
    if isinstance(expire_at, bool) or not isinstance(expire_at, int) or expire_at < 0:
        raise PowError(f"PoW expire_at must be a non-negative integer (ms), not {expire_at!r}")
    return bytes.fromhex(digest)


def _resolve_backend(backend: str | None) -> str:
    name = backend or os.environ.get(BACKEND_ENV, "").strip().lower() or None
    if name is None:
        return "native" if _native is not None else "numpy"
    if name not in BACKENDS:
        raise ValueError(f"unknown PoW backend {name!r} (expected one of {', '.join(BACKENDS)})")
    if name == "native" and _native is None:
        raise RuntimeError(f"the native PoW extension is not available: {_NATIVE_IMPORT_ERROR}")
    return name


# --- native: stripe the nonce range over threads -------------------------------------------------

_PARALLEL_MIN_DIFFICULTY = 20_000  # below this, thread hand-off costs more than it saves
_MAX_THREADS = 4
_helpers: ThreadPoolExecutor | None = None
_helpers_lock = threading.Lock()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _helper_pool(workers: int) -> ThreadPoolExecutor:
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            _helpers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pow")
        return _helpers


def _solve_native(prefix: bytes, target: bytes, difficulty: int, threads: int | None) -> int:
    """Thread i searches nonces ≡ i (mod threads); all share `best`, so each stops once it is past
    an answer already found and the smallest answer wins. Helpers that have not started by the time
    the caller's own stripe is done (pool busy with other solves) are run by the caller instead."""
    assert _native is not None
    count = threads if threads is not None else min(_usable_cpus(), _MAX_THREADS)
    if count <= 1 or difficulty < _PARALLEL_MIN_DIFFICULTY:
        return _native.solve(prefix, target, difficulty)
    best = array("q", [difficulty])
    pool = _helper_pool(max(1, min(_usable_cpus(), _MAX_THREADS) - 1))
    stripes: list[tuple[int, Future[int]]] = [
        (start, pool.submit(_native.solve, prefix, target, difficulty, start, count, best))
        for start in range(1, count)
    ]
    results = [_native.solve(prefix, target, difficulty, 0, count, best)]
    for start, future in stripes:
        if future.cancel():
            results.append(_native.solve(prefix, target, difficulty, start, count, best))
        else:
            results.append(future.result())
    found = [answer for answer in results if answer >= 0]
    return min(found) if found else -1


# --- numpy: a batch of nonces per permutation -----------------------------------------------------

_NUMPY_BATCH = 8192  # measured sweet spot: larger batches fall out of cache, smaller pay per-call overhead

# rho + pi, as (destination lane, source lane, rotation, theta column)
_RHO_PI = sorted(
    (y + 5 * ((2 * x + 3 * y) % 5), x + 5 * y, pow_reference._ROTATIONS[x + 5 * y], x)
    for x in range(5)
    for y in range(5)
)
_numpy_consts: tuple[Any, ...] | None = None


def _solve_numpy(prefix: bytes, target: bytes, difficulty: int) -> int:
    """Walk the nonces per digit count (fixed block layout), `_NUMPY_BATCH` at a time."""
    mid, tail = _midstate(prefix)
    wanted = [int.from_bytes(target[8 * i : 8 * i + 8], "little") for i in range(4)]
    n = 0
    while n < difficulty:
        digits = len(str(n))
        group_end = min(difficulty, 10**digits)
        length = len(tail) + digits
        template = bytearray(tail) + bytearray((length // _RATE + 1) * _RATE - len(tail))
        template[length] ^= 0x06
        template[-1] ^= 0x80
        for low in range(n, group_end, _NUMPY_BATCH):
            high = min(group_end, low + _NUMPY_BATCH)
            found = _numpy_batch(mid, bytes(template), len(tail), digits, low, high, wanted)
            if found >= 0:
                return found
        n = group_end
    return -1


def _midstate(prefix: bytes) -> tuple[list[int], bytes]:
    """Absorb the prefix's whole blocks once; return the state and the remaining tail."""
    lanes = [0] * 25
    whole = len(prefix) - len(prefix) % _RATE
    for offset in range(0, whole, _RATE):
        for i in range(_RATE // 8):
            lanes[i] ^= int.from_bytes(prefix[offset + 8 * i : offset + 8 * i + 8], "little")
        pow_reference.keccak_p23(lanes)
    return lanes, prefix[whole:]


def _numpy_batch(mid: list[int], template: bytes, tail_len: int, digits: int, low: int, high: int,
                 wanted: list[int]) -> int:
    import numpy as np

    count = high - low
    messages = np.empty((count, len(template)), dtype=np.uint8)
    messages[:] = np.frombuffer(template, dtype=np.uint8)
    rest = np.arange(low, high, dtype=np.uint64)
    for column in range(tail_len + digits - 1, tail_len - 1, -1):
        messages[:, column] = (rest % 10).astype(np.uint8) + 48
        rest //= 10
    blocks = messages.view("<u8").T.astype(np.uint64, order="C")  # (lanes of all blocks, count)
    state = [np.full(count, lane, dtype=np.uint64) for lane in mid]
    last = len(template) // _RATE - 1
    for block in range(last + 1):
        for i in range(_RATE // 8):
            state[i] ^= blocks[block * (_RATE // 8) + i]
        _numpy_permute(state, lanes_0_to_3_only=block == last)
    for index in np.flatnonzero(state[0] == np.uint64(wanted[0])).tolist():
        if all(int(state[i][index]) == wanted[i] for i in (1, 2, 3)):
            return low + index
    return -1


def _numpy_permute(s: list[Any], *, lanes_0_to_3_only: bool = False) -> None:
    """Keccak-p[1600, 23] on 25 lane arrays in place; optionally stop the last round at lanes 0-3
    (all the digest needs)."""
    global _numpy_consts
    import numpy as np

    if _numpy_consts is None:
        _numpy_consts = (
            [np.uint64(rc) for rc in pow_reference._ROUND_CONSTANTS],
            [np.uint64(shift) for shift in range(65)],
        )
    round_constants, shifts = _numpy_consts
    one, sixty_three = shifts[1], shifts[63]
    b: list[Any] = [None] * 25
    for r in range(1, 24):
        c = [s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ ((c[(x + 1) % 5] << one) | (c[(x + 1) % 5] >> sixty_three)) for x in range(5)]
        final = lanes_0_to_3_only and r == 23
        for dest, src, rot, x in _RHO_PI:
            if final and dest > 4:
                break
            lane = s[src] ^ d[x]
            b[dest] = lane if rot == 0 else (lane << shifts[rot]) | (lane >> shifts[64 - rot])
        for y in range(0, 5 if final else 25, 5):
            b0, b1, b2, b3, b4 = b[y : y + 5]
            s[y] = b0 ^ (~b1 & b2)
            s[y + 1] = b1 ^ (~b2 & b3)
            s[y + 2] = b2 ^ (~b3 & b4)
            s[y + 3] = b3 ^ (~b4 & b0)
            if not final:
                s[y + 4] = b4 ^ (~b0 & b1)
        s[0] ^= round_constants[r]


# --- python: the reference, one nonce at a time (tests only) ---------------------------------------


def _solve_python(prefix: bytes, target: bytes, difficulty: int) -> int:
    for n in range(difficulty):
        if pow_reference.hash_bytes(prefix + str(n).encode()) == target:
            return n
    return -1

