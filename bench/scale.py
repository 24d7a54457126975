"""Scale and memory: 200 accounts, 200 concurrent streaming clients, 40 pieces/s per stream for ~30 s.

Every client sends one request at the same moment; each reply streams for about 30 s at DeepSeek's
pace. Reports whether every request completed, the gateway's average CPU over the run (from its own
/proc counters), CPU per chunk, time to first content byte of the 200 simultaneous starts, and the
gateway's memory: RSS idle (started, nothing logged in), idle after logging in every account, peak
RSS while the 200 streams run (sampled every 0.25 s) and RSS after they ended.

    python bench/scale.py [--clients 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from harness import (
    TINY_DIFFICULTY,
    Connection,
    Gateway,
    RssSampler,
    Simulator,
    failures,
    gateway_turn,
    machine_line,
    ms,
    percentile,
    phase,
    run_workers,
    table,
    ttfbs,
    use_uvloop,
)
from streaming import prompt_with_chars

RATE = 40.0


async def run(sim: Simulator, gw: Gateway, clients: int,
              seconds: float) -> tuple[list[list[object]], list[list[object]]]:
    stats = gw.stats
    await asyncio.sleep(1.0)
    rss_idle = stats.rss_mb()
    # log every account in (short turns, 16 at a time), so the run measures streaming, not logins
    sim.configure(tokens_per_second=None)
    warm = [Connection(gw.port) for _ in range(16)]
    await run_workers(16, clients // 16 + 1, lambda i: lambda: gateway_turn(warm[i], "warm up"))
    for c in warm:
        c.close()
    await asyncio.sleep(1.0)
    rss_ready = stats.rss_mb()

    sim.configure(tokens_per_second=RATE)
    prompt = prompt_with_chars(int(seconds * RATE * 2.5))  # 1-4 characters per piece: 2.5 on average
    conns = [Connection(gw.port) for _ in range(clients)]
    sampler = RssSampler(stats).start()
    meter = phase(gw, sim).start()
    samples = await run_workers(clients, 1, lambda i: lambda: gateway_turn(conns[i], prompt))
    meter.stop()
    rss_peak = await sampler.stop()
    for c in conns:
        c.close()
    await asyncio.sleep(2.0)
    rss_after = stats.rss_mb()

    bad = failures(samples)
    if bad:
        print(f"  ! {len(bad)} failed stream(s), e.g. {bad[0]}", file=sys.stderr)
    chunks = sum(s.chunks for s in samples)
    first = ttfbs(samples)
    assert meter.gateway is not None and meter.simulator is not None
    scale_rows = [[
        f"{clients} streams × {RATE:g} pieces/s", f"**{len(samples) - len(bad)}/{len(samples)}**",
        f"{meter.loadgen.wall:.1f} s", f"{chunks:,}", f"{chunks / meter.loadgen.wall:,.0f}",
        f"**{meter.gateway.percent:.0f}%**", f"{meter.gateway.cpu / max(chunks, 1) * 1e6:.1f} µs",
        ms(percentile(first, 50)), ms(max(first) if first else float("nan")),
        f"{meter.simulator.percent:.0f}%", f"{meter.loadgen.percent:.0f}%",
    ]]
    memory_rows = [
        ["started, idle (no account logged in)", f"{rss_idle:.0f} MB"],
        [f"idle, {clients} accounts logged in", f"{rss_ready:.0f} MB"],
        [f"peak during {clients} concurrent streams", f"**{rss_peak:.0f} MB**"],
        ["after the streams ended", f"{rss_after:.0f} MB"],
    ]
    return scale_rows, memory_rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each stream")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    with Simulator(args.clients, difficulty=TINY_DIFFICULTY) as sim, Gateway(sim) as gw:
        scale_rows, memory_rows = asyncio.run(run(sim, gw, args.clients, args.seconds))
    header = ["load", "requests completed", "time", "content chunks", "chunks/s", "gateway CPU (avg, % of one core)",
              "gateway CPU per chunk", "first byte p50", "first byte max", "simulator CPU", "load generator CPU"]
    out = (f"### Scale\n\n{machine_line()}; {args.clients} accounts, {args.clients} clients starting at once, "
           f"streams of ~{args.seconds:g} s (PoW difficulty {TINY_DIFFICULTY}: this run measures streaming).\n\n"
           + table(header, scale_rows)
           + "\n\n### Memory (gateway RSS)\n\n" + table(["state", "RSS"], memory_rows)
           + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
