"""Worst event-loop lag while one large prompt is counted, before and after.

Each row runs in its own process under uvloop (the server's loop): a probe sleeps 5 ms at a time
and records how late it wakes while `asyncio.to_thread` counts one prompt of `--mb` megabytes of
mixed prose and code, the way the gateway counts usage. "before" is the old single
`Tokenizer.encode` call, which keeps the GIL for the whole text; "after" is `usage.count_tokens`
(batch encode in slices, GIL released while encoding). RSS is read from /proc before, at peak and
after the count. Target: worst lag <= 50 ms for a 10 MB prompt.

    python bench/loop_lag.py [--mb 10] [--rows before,after]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PROSE = "Slow start doubles the congestion window each round trip; def grow(w): return w * 2\n"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _child(row: str, megabytes: float) -> None:
    import uvloop

    from deepseek2api.chat import usage

    usage.warm_up()
    tokenizer = usage._load()
    text = (PROSE * (int(megabytes * 1e6) // len(PROSE) + 1))[: int(megabytes * 1e6)]

    def before() -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    count = before if row == "before" else (lambda: usage.count_tokens(text))
    idle = _rss_mb()

    async def run() -> dict[str, float]:
        worst, ticks, counting = 0.0, 0, True

        async def probe() -> None:
            nonlocal worst, ticks
            last = time.perf_counter()
            while counting:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                worst, ticks, last = max(worst, now - last - 0.005), ticks + 1, now

        ticker = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        tokens = await asyncio.to_thread(count)
        elapsed = time.perf_counter() - started
        counting = False
        await ticker
        return {"tokens": tokens, "seconds": elapsed, "worst_ms": worst * 1000, "ticks": ticks}

    result = uvloop.run(run())
    result.update(idle_mb=idle, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  after_mb=_rss_mb())
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--rows", default="before,after")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(SRC))
        _child(args.child, args.mb)
        return
    print(f"one {args.mb:g} MB prompt counted in a worker thread, uvloop, probe every 5 ms\n")
    print("| row | count time | worst loop lag | probe ticks | tokens | RSS idle / peak / after (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in args.rows.split(","):
        out = subprocess.run([sys.executable, __file__, "--mb", str(args.mb), "--child", row],
                             capture_output=True, text=True, check=True, timeout=900)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {row} | {r['seconds']:.1f} s | {r['worst_ms']:.0f} ms | {r['ticks']} | {r['tokens']:,} "
              f"| {r['idle_mb']:.0f} / {r['peak_mb']:.0f} / {r['after_mb']:.0f} |")


if __name__ == "__main__":
    main()
