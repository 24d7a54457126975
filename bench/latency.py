"""Added latency: time to first content byte through the gateway minus straight from the simulator.

Both columns use the same load generator and the same simulator process. "Direct" does what the
gateway does for a turn (chat session and PoW challenge concurrently, solve in a thread, completion,
delete the session afterwards); "gateway" sends an OpenAI streaming request and waits for the first
`delta.content`. Measured at concurrency 1, 16 and 64, once with a tiny PoW difficulty (the
gateway's own overhead) and once at 144000 (what users feel: the solve dominates).

    python bench/latency.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from harness import (
    REAL_DIFFICULTY,
    TINY_DIFFICULTY,
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

CONCURRENCY = (1, 16, 64)
RATE = 40.0  # pieces per second per stream: DeepSeek's pace, so 64 concurrent users are 64 live streams
# concurrency → (reply characters, requests per worker): a reply of 1-4 character pieces lasts about
# chars / 2.5 / RATE seconds, so 64 streams start ~30 turns per second, 16 streams ~16, one ~4.
PLAN = {1: (25, 60), 16: (100, 8), 64: (200, 6)}


def prompt_for(chars: int) -> str:
    text = ("The gateway streams this reply piece by piece. " * (chars // 40 + 1))[:chars].strip()
    return f"How fast is the gateway? [sim:reply={text}]"


async def measure(sim: Simulator, gw: Gateway, quick: bool, unpaced: bool) -> list[list[object]]:
    accounts = sim.accounts
    directs = [DirectClient(sim.port, email, password) for email, password in accounts[:max(CONCURRENCY)]]
    await asyncio.gather(*(d.login() for d in directs))
    gateway_conns = [Connection(gw.port) for _ in range(max(CONCURRENCY))]

    # Warm-up: every pool account logged in, connections open, both paths exercised once.
    sim.configure(difficulty=TINY_DIFFICULTY, tokens_per_second=None)
    warm = prompt_for(10)
    await run_workers(16, max(2, len(accounts) // 16 + 1), lambda i: lambda: gateway_turn(gateway_conns[i], warm))
    await run_workers(max(CONCURRENCY), 1, lambda i: lambda: directs[i].turn(warm))
    sim.configure(tokens_per_second=None if unpaced else RATE)

    rows: list[list[object]] = []
    for difficulty in (TINY_DIFFICULTY, REAL_DIFFICULTY):
        sim.configure(difficulty=difficulty)
        for concurrency in CONCURRENCY:
            chars, each = PLAN[concurrency]
            each = max(2, each // 3) if quick else each
            prompt = prompt_for(chars)
            # a stream lasts ~chars/2.5/RATE s: workers start spread over one stream's time and pause up
            # to a fifth of it between turns, so turn starts arrive spread out as real users' do
            span = 0.0 if unpaced else chars / 2.5 / RATE
            spread = {"stagger": span if concurrency > 1 else 0.0, "think": span / 5 if concurrency > 1 else 0.0}
            cpu_direct = phase(None, sim).start()
            direct = await run_workers(concurrency, each, lambda i, p=prompt: lambda: directs[i].turn(p), **spread)
            cpu_direct.stop()
            cpu_gw = phase(gw, sim).start()
            via = await run_workers(concurrency, each, lambda i, p=prompt: lambda: gateway_turn(gateway_conns[i], p),
                                    **spread)
            cpu_gw.stop()
            bad = failures(direct) + failures(via)
            if bad:
                print(f"  ! {len(bad)} failed turn(s), e.g. {bad[0]}", file=sys.stderr)
            d, g = ttfbs(direct), ttfbs(via)
            d50, d99, g50, g99 = (percentile(d, 50), percentile(d, 99), percentile(g, 50), percentile(g, 99))
            assert cpu_gw.gateway is not None
            per_turn = cpu_gw.gateway.cpu / max(1, len(via))
            rows.append([f"{difficulty}", concurrency, len(g), ms(d50), ms(d99), ms(g50), ms(g99),
                         f"**{ms(g50 - d50)}**", f"**{ms(g99 - d99)}**", ms(per_turn),
                         f"{cpu_gw.gateway.percent:.0f}%",
                         f"{cpu_direct.loadgen.percent:.0f}% / {cpu_gw.loadgen.percent:.0f}%"])
            print(f"  difficulty {difficulty}, concurrency {concurrency}: direct p50 {ms(d50)} p99 {ms(d99)}; "
                  f"gateway p50 {ms(g50)} p99 {ms(g99)}", file=sys.stderr)
    for d in directs:
        d.close()
    for c in gateway_conns:
        c.close()
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a third of the requests")
    parser.add_argument("--accounts", type=int, default=96, help="pool accounts (more than the concurrency)")
    parser.add_argument("--unpaced", action="store_true",
                        help="simulator as fast as it can (a closed-loop stress test, not what users see)")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    with Simulator(args.accounts) as sim, Gateway(sim) as gw:
        rows = asyncio.run(measure(sim, gw, args.quick, args.unpaced))
    header = ["PoW difficulty", "concurrency", "requests", "direct p50", "direct p99", "gateway p50",
              "gateway p99", "added p50", "added p99", "gateway CPU per turn", "gateway CPU",
              "load generator CPU (direct / gateway)"]
    pace = "unpaced (closed-loop stress)" if args.unpaced else f"{RATE:g} pieces/s per stream"
    replies = ", ".join(f"{c}: {PLAN[c][0]} characters" for c in CONCURRENCY)
    out = (f"### Added latency (time to first content byte)\n\n{machine_line()}; {args.accounts} accounts; "
           f"simulator {pace}; replies in 1–4 character pieces (concurrency {replies}); clients start "
           f"spread over one stream's duration and pause up to a fifth of it between turns.\n\n"
           + table(header, rows) + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
