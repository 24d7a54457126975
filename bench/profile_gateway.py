"""Profile the gateway process under a benchmark load with py-spy (sampling, from outside the process).

Starts the simulator and the gateway like the other benchmarks, warms up, then runs one of the loads
while `py-spy record --pid <gateway>` samples it, and prints the functions with the most samples
(own time and inclusive). The raw collapsed stacks are kept for flame graphs (`--keep`).

    pip install py-spy   # not a dependency of the project
    python bench/profile_gateway.py --load ttfb   # short turns at concurrency 64 (added latency)
    python bench/profile_gateway.py --load stream # long unpaced streams at concurrency 64 (CPU per chunk)
    python bench/profile_gateway.py --load paced  # 200 streams at 40 pieces/s (the scale run)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Connection, Gateway, Simulator, gateway_turn, run_workers, use_uvloop

LOADS = {
    # name: (accounts, concurrency, prompt, simulator pieces per second)
    "ttfb": (96, 64, "Hello, how fast is the gateway?", 0.0),
    "stream": (96, 64, "Stream a long answer [sim:words=400]", 0.0),
    "paced": (200, 200, "Stream a long answer [sim:words=150]", 40.0),
}


IDLE_FRAMES = ("_worker (concurrent/futures/thread.py:81)",)


def summarize(raw: Path, top: int) -> str:
    """Top functions by own samples and by inclusive samples from py-spy's collapsed (raw) output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if frames and any(frames[-1].startswith(idle) for idle in IDLE_FRAMES):
            continue  # a pool thread waiting for work (py-spy cannot always tell it is idle)
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def drive(gw: Gateway, concurrency: int, prompt: str, seconds: float) -> int:
    conns = [Connection(gw.port) for _ in range(concurrency)]
    deadline = time.monotonic() + seconds
    done = 0

    async def worker(i: int) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            sample = await gateway_turn(conns[i], prompt)
            done += sample.ok

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", choices=sorted(LOADS), default="ttfb")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", help="write the collapsed stacks here")
    parser.add_argument("--native", action="store_true", help="include native frames (py-spy --native)")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    use_uvloop()
    accounts, concurrency, prompt, rate = LOADS[args.load]
    with Simulator(accounts, tokens_per_second=rate) as sim, Gateway(sim) as gw:
        warm = [Connection(gw.port) for _ in range(16)]
        asyncio.run(run_workers(16, accounts // 16 + 1, lambda i: lambda: gateway_turn(warm[i], "warm up")))
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(args.keep or Path(tmp) / "stacks.txt")
            command = [py_spy, "record", "--pid", str(gw.stats.pid), "--duration", str(int(args.seconds)),
                       "--rate", "200", "--format", "raw", "--output", str(raw)]
            if args.native:
                command.append("--native")
            recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            turns = asyncio.run(drive(gw, concurrency, prompt, args.seconds))
            recorder.wait(60)
            print(f"load {args.load}: {turns} turns in {args.seconds:g} s\n")
            print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
