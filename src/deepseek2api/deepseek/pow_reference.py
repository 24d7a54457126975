"""A readable pure-Python DeepSeekHashV1, kept as the reference for tests (and for the
simulator's one-hash-per-request verification). Far too slow to *solve* challenges with.

DeepSeekHashV1 is SHA3-256 with Keccak-p[1600, 23]: rounds 1..23 of Keccak-f, round 0 left out
(see shared/pow/README.md).
"""

from __future__ import annotations

_MASK = (1 << 64) - 1
_RATE = 136

_ROUND_CONSTANTS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)

# rho offsets, indexed by lane x + 5*y
_ROTATIONS = (
    0, 1, 62, 28, 27,
    36, 44, 6, 55, 20,
    3, 10, 43, 25, 39,
    41, 45, 15, 21, 8,
    18, 2, 61, 56, 14,
)


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _MASK if shift else value


def keccak_p23(lanes: list[int]) -> None:
    """Apply Keccak-p[1600, 23] (round indices 1..23) to 25 lanes in place."""
    for rc in _ROUND_CONSTANTS[1:]:
        c = [lanes[x] ^ lanes[x + 5] ^ lanes[x + 10] ^ lanes[x + 15] ^ lanes[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rotl(c[(x + 1) % 5], 1) for x in range(5)]
        a = [lanes[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rotl(a[x + 5 * y], _ROTATIONS[x + 5 * y])
        for y in range(5):
            row = b[5 * y : 5 * y + 5]
            for x in range(5):
                lanes[x + 5 * y] = row[x] ^ ((~row[(x + 1) % 5]) & row[(x + 2) % 5])
        lanes[0] ^= rc


def hash_bytes(message: bytes) -> bytes:
    """The 32-byte DeepSeekHashV1 digest of `message`."""
    padded = bytearray(message)
    padded.append(0x06)
    padded.extend(b"\x00" * (-len(padded) % _RATE))
    padded[-1] |= 0x80
    lanes = [0] * 25
    for offset in range(0, len(padded), _RATE):
        block = padded[offset : offset + _RATE]
        for i in range(_RATE // 8):
            lanes[i] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        keccak_p23(lanes)
    return b"".join(lane.to_bytes(8, "little") for lane in lanes[:4])


def hash_hex(message: bytes) -> str:
    """The DeepSeekHashV1 digest of `message` as 64 lowercase hex characters."""
    return hash_bytes(message).hex()
