"""Burst: 100 accounts, 100 streaming requests sent at the same moment, PoW difficulty 144000.

Time to first content byte, p50 and max, three rows side by side:
- direct: the same load generator does what the gateway does (session + PoW + completion) straight
  against the simulator: the floor set by the PoW solves and the simulator on this machine;
- the gateway without prewarm (default): every request creates its session and solves its PoW;
- the gateway with `pool.prewarm: true`: each idle account already holds a session and a solved PoW,
  so a request only makes the completion call.
Each row is several bursts (default 3) with the accounts logged in and connections open beforehand;
between bursts the prewarmed gateway is given time to prepare its accounts again.

    python bench/burst.py [--bursts 3] [--pow-backend native|numpy]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from harness import (
    REAL_DIFFICULTY,
    Connection,
    DirectClient,
    Gateway,
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

ACCOUNTS = 100
PROMPT = "Hello! [sim:reply=A short reply to a burst of requests.]"
RATE = 40.0


async def wait_prepared(sim: Simulator, count: int, timeout: float = 120.0) -> float:
    """Until the simulator holds `count` live sessions and no stream runs: the prewarmer is done."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        stats = sim.sim_stats()
        if stats["sessions"] >= count and stats["active_total"] == 0:
            await asyncio.sleep(0.5)  # its last PoW solves
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the prewarmer did not prepare {count} accounts in {timeout:.0f} s")


async def gateway_bursts(sim: Simulator, gw: Gateway, bursts: int, prewarm: bool) -> tuple[list, list, object]:
    conns = [Connection(gw.port) for _ in range(ACCOUNTS)]
    # warm-up: every account logged in, every connection open (a burst itself, not measured)
    await run_workers(ACCOUNTS, 1, lambda i: lambda: gateway_turn(conns[i], PROMPT))
    all_samples, per_burst = [], []
    meter = phase(gw, sim).start()
    for _ in range(bursts):
        if prewarm:
            await wait_prepared(sim, ACCOUNTS)
        else:
            await asyncio.sleep(1.0)
        samples = await run_workers(ACCOUNTS, 1, lambda i: lambda: gateway_turn(conns[i], PROMPT))
        all_samples += samples
        per_burst.append(samples)
    meter.stop()
    for c in conns:
        c.close()
    return all_samples, per_burst, meter


async def direct_bursts(sim: Simulator, bursts: int) -> tuple[list, list]:
    directs = [DirectClient(sim.port, email, password) for email, password in sim.accounts]
    await asyncio.gather(*(d.login() for d in directs))
    await run_workers(ACCOUNTS, 1, lambda i: lambda: directs[i].turn(PROMPT))
    all_samples, per_burst = [], []
    for _ in range(bursts):
        await asyncio.sleep(1.0)
        samples = await run_workers(ACCOUNTS, 1, lambda i: lambda: directs[i].turn(PROMPT))
        all_samples += samples
        per_burst.append(samples)
    for d in directs:
        d.close()
    return all_samples, per_burst


def row(label: str, samples: list, per_burst: list) -> list[object]:
    bad = failures(samples)
    if bad:
        print(f"  ! {label}: {len(bad)} failed, e.g. {bad[0]}", file=sys.stderr)
    first = ttfbs(samples)
    bursts = ", ".join(ms(percentile(ttfbs(b), 50)) for b in per_burst)
    print(f"  {label}: p50 {ms(percentile(first, 50))} max {ms(max(first))}", file=sys.stderr)
    return [label, f"{len(samples) - len(bad)}/{len(samples)}", f"**{ms(percentile(first, 50))}**",
            ms(percentile(first, 90)), f"**{ms(max(first))}**", bursts]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--rows", default="direct,off,on",
                        help="which rows: direct, off (no prewarm), on (prewarm); comma-separated")
    parser.add_argument("--pow-backend", choices=("native", "numpy"), default=None,
                        help="force the PoW solver of the gateway and of the direct client")
    args = parser.parse_args(argv)
    if args.pow_backend:
        os.environ["DS2API_POW_BACKEND"] = args.pow_backend  # inherited by the gateway; read by solve()
    use_uvloop()
    started = time.perf_counter()
    rows = []
    with Simulator(ACCOUNTS, difficulty=REAL_DIFFICULTY, tokens_per_second=RATE) as sim:
        wanted = {r.strip() for r in args.rows.split(",")}
        if "direct" in wanted:
            samples, per_burst = asyncio.run(direct_bursts(sim, args.bursts))
            rows.append(row("direct from the simulator (floor)", samples, per_burst))
        for prewarm in [p for p, name in ((False, "off"), (True, "on")) if name in wanted]:
            with Gateway(sim, prewarm=prewarm) as gw:
                samples, per_burst, _meter = asyncio.run(gateway_bursts(sim, gw, args.bursts, prewarm))
            rows.append(row(f"gateway, prewarm {'on' if prewarm else 'off'}", samples, per_burst))
    header = ["path", "requests ok", "first byte p50", "p90", "max", "p50 of each burst"]
    from harness import pow_module

    backend = args.pow_backend or pow_module.active_backend()
    out = (f"### Burst\n\n{machine_line()}; {ACCOUNTS} accounts, {ACCOUNTS} streaming requests at once, "
           f"PoW difficulty {REAL_DIFFICULTY} (solver: {backend}), {args.bursts} bursts per row; "
           f"time to first content byte (the simulator streams at {RATE:g} pieces/s, so ~25 ms of every "
           f"figure is its first piece).\n\n" + table(header, rows, "lrrrrl")
           + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
