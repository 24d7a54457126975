"""PoW solve time at the real difficulty (144000), side by side for every backend.

Prints a markdown table: median milliseconds for the average case (answer 71999) and the worst
case (answer 143999), and the speed-up over DeepSeek's own WASM measured on the reference machine
(55.6 ms / 96.6 ms, shared/pow/README.md). Ratios, not absolute times, are what carry over
between machines.

    python bench/pow.py [--reps 11] [--numpy-reps 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

try:
    from deepseek2api.deepseek import pow as pow_module
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from deepseek2api.deepseek import pow as pow_module

WASM_MS = {"average": 55.6, "worst": 96.6}
DIFFICULTY = 144_000
CASES = {"average": 71_999, "worst": 143_999}  # the worst one is vectors.json's "difficulty-1" entry


def challenge_with_answer(answer: int) -> pow_module.PowChallenge:
    """A real-shaped challenge (20-hex salt, 13-digit expire_at) whose answer is `answer`."""
    salt, expire_at = "7d2c5793110c9297d417", 1740805400236
    digest = pow_module.hash_hex(f"{salt}_{expire_at}_{answer}".encode())
    return pow_module.PowChallenge(algorithm="DeepSeekHashV1", challenge=digest, salt=salt, signature="0" * 64,
                                   difficulty=DIFFICULTY, expire_at=expire_at,
                                   target_path="/api/v0/chat/completion", expire_after=300_000)


CHALLENGES = {case: challenge_with_answer(answer) for case, answer in CASES.items()}


def median_ms(case: str, reps: int, **options: object) -> float:
    """Median wall time of `solve` on one case, checking the answer every time."""
    challenge, expected = CHALLENGES[case], CASES[case]
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        answer = pow_module.solve(challenge, **options)  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
        assert answer == expected, (answer, expected)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=11, help="repetitions per native cell (median)")
    parser.add_argument("--numpy-reps", type=int, default=5, help="repetitions per numpy cell (median)")
    args = parser.parse_args()

    rows: list[tuple[str, dict[str, float]]] = []
    if pow_module.native_available():
        native = pow_module._native
        default_kernel = native.kernel()
        try:
            for kernel in native.kernels():
                native.set_kernel(kernel)
                for threads in (1, 2):
                    default = " (default)" if kernel == default_kernel else ""
                    label = f"native `{kernel}`{default}, {threads} thread{'s' if threads > 1 else ''}"
                    rows.append((label, {case: median_ms(case, args.reps, backend="native", threads=threads)
                                         for case in CASES}))
        finally:
            native.set_kernel(default_kernel)
    else:
        print(f"(native extension not available: {pow_module._NATIVE_IMPORT_ERROR})\n")
    rows.append(("numpy, 1 thread", {case: median_ms(case, args.numpy_reps, backend="numpy")
                                     for case in CASES}))

    print(f"DeepSeekHashV1 PoW, difficulty {DIFFICULTY}, median of {args.reps} (numpy: {args.numpy_reps}) runs; "
          f"{platform.machine()}, {pow_module._usable_cpus()} CPUs, Python {platform.python_version()}\n")
    print("| backend | average (answer 71999) | worst (answer 143999) | speed-up vs WASM, average (55.6 ms) "
          "| speed-up vs WASM, worst (96.6 ms) |")
    print("|---|---:|---:|---:|---:|")
    for label, cells in rows:
        print(f"| {label} | {cells['average']:.1f} ms | {cells['worst']:.1f} ms | "
              f"{WASM_MS['average'] / cells['average']:.2f}x | {WASM_MS['worst'] / cells['worst']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
