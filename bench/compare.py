"""Before/after: two gateways (two source trees) in front of ONE simulator, measured in alternation.

Both gateways run at the same time (an idle gateway costs nothing) and take turns carrying the same
load, several rounds, so a busy neighbour on the machine affects both alike. Prints gateway CPU per
content chunk (user + system, from /proc) and time to first content byte for each round.

    cp -r src /tmp/before/src  (then apply or revert the change in one of the trees)
    python bench/compare.py --before /tmp/before/src [--after src] [--load paced|unpaced|turns]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from harness import (
    CLK_TCK,
    Connection,
    Gateway,
    Simulator,
    failures,
    gateway_turn,
    ms,
    percentile,
    run_workers,
    table,
    ttfbs,
    use_uvloop,
)
from latency import prompt_for
from streaming import prompt_with_chars

LOADS = {
    # name: (streams, reply characters, simulator pieces/s, turns per stream)
    "paced": (64, 800, 40.0, 1),
    "unpaced": (64, 8000, None, 2),
    "turns": (64, 25, None, 20),
    "ttfb1": (1, 25, 40.0, 60),  # one client, short paced replies (~0.25 s): time to first byte
}


def cpu_split(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


async def one_round(gw: Gateway, conns: list[Connection], load: str) -> dict[str, float]:
    streams, chars, _, each = LOADS[load]
    prompt = prompt_for(chars) if chars < 100 else prompt_with_chars(chars)  # short: an exact reply text
    user0, sys0 = cpu_split(gw.stats.pid)
    started = time.perf_counter()
    samples = await run_workers(streams, each, lambda i: lambda: gateway_turn(conns[i], prompt))
    wall = time.perf_counter() - started
    user1, sys1 = cpu_split(gw.stats.pid)
    bad = failures(samples)
    if bad:
        print(f"  ! {len(bad)} failed, e.g. {bad[0]}", file=sys.stderr)
    chunks = sum(s.chunks for s in samples) or 1
    first = ttfbs(samples)
    return {"user_us": (user1 - user0) / chunks * 1e6, "sys_us": (sys1 - sys0) / chunks * 1e6,
            "turn_ms": (user1 - user0 + sys1 - sys0) / len(samples) * 1e3,
            "ttfb50": percentile(first, 50), "ttfb99": percentile(first, 99), "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="source tree (the folder holding deepseek2api/)")
    parser.add_argument("--after", default="", help="source tree (default: this checkout's src)")
    parser.add_argument("--load", choices=sorted(LOADS), default="paced")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    use_uvloop()
    streams, _, rate, _ = LOADS[args.load]
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with Simulator(streams + 32, tokens_per_second=rate or 0.0) as sim:
        gateways = {}
        for label, src in (("before", args.before), ("after", args.after)):
            os.environ["BENCH_GATEWAY_SRC"] = os.path.abspath(src) if src else ""
            gateways[label] = Gateway(sim)
            gateways[label].start()
        os.environ.pop("BENCH_GATEWAY_SRC", None)
        try:
            async def run() -> None:
                conns = {label: [Connection(gw.port) for _ in range(max(16, streams))]
                         for label, gw in gateways.items()}
                for label in gateways:
                    await run_workers(16, len(sim.accounts) // 16 + 1,
                                      lambda i, own=conns[label]: lambda: gateway_turn(own[i], "warm up"))
                for _ in range(args.rounds):
                    for label, gw in gateways.items():
                        results[label].append(await one_round(gw, conns[label], args.load))
                        r = results[label][-1]
                        print(f"  {label}: user {r['user_us']:.1f} µs + sys {r['sys_us']:.1f} µs per chunk, "
                              f"{r['turn_ms']:.2f} ms CPU per turn, ttfb p50 {ms(r['ttfb50'])}", file=sys.stderr)

            asyncio.run(run())
        finally:
            for gw in gateways.values():
                gw.stop()
    rows = []
    for label, rounds in results.items():
        med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        rows.append([label, f"{med['user_us'] + med['sys_us']:.1f} µs", f"{med['user_us']:.1f} µs",
                     f"{med['sys_us']:.1f} µs", f"{med['turn_ms']:.2f} ms", ms(med["ttfb50"]), ms(med["ttfb99"])])
    print(f"load {args.load}, median of {args.rounds} alternating rounds\n")
    print(table(["tree", "gateway CPU per chunk", "user", "system", "CPU per turn", "ttfb p50", "ttfb p99"],
                rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
