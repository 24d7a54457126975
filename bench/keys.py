"""What keys for people cost a request: the key checks (model list, rpm, max_streams, tokens_per_day) before
the lease and the usage accounting after the turn.

Two measurements:
1. in process: one admission + release + usage record (api/keys/gate.py) for a key with every rule set,
   timed per call (p50 / p99 µs) — the work the feature adds to each request;
2. end to end: two gateways in front of one simulator, measured in alternating rounds (bench/compare.py's
   machinery): `--before` a tree without the feature (e.g. /work/main/src), `after` this tree with the
   bench key carrying every rule; gateway CPU per turn (64 streams × 20 short turns) and time to first
   byte at concurrency 1.

    python bench/keys.py --before /path/to/old/src [--rounds 3] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from compare import one_round
from harness import (
    API_KEY,
    Connection,
    Gateway,
    Simulator,
    gateway_turn,
    ms,
    percentile,
    run_workers,
    table,
    use_uvloop,
)

RULES: dict[str, Any] = {"models": ["deepseek-*"], "rpm": 1_000_000, "max_streams": 10_000,
                         "tokens_per_day": 10**12, "note": "bench"}


def in_process(n: int = 20000) -> list[object]:
    """µs per admission + exit (check, count, record) of one turn."""
    from deepseek2api.api.keys.gate import KeyGate
    from deepseek2api.chat.runner import TurnTrace
    from deepseek2api.chat.turn import ModelRegistry, Turn
    from deepseek2api.chat.usage import TurnUsage
    from deepseek2api.keys.directory import KeyDirectory
    from deepseek2api.keys.rules import KeyRules
    from deepseek2api.keys.usage import UsageLedger
    from deepseek2api.store.usage import MemoryUsageStore

    async def run() -> list[float]:
        ledger = UsageLedger(MemoryUsageStore())
        gate = KeyGate(KeyDirectory([KeyRules.from_fields("bench", RULES, "config")]), ledger)
        spec = ModelRegistry().resolve("deepseek-chat")
        assert spec is not None
        turn = Turn(request_id="req", model=spec, model_name="deepseek-chat", messages=())
        source: Any = object()
        leases = gate.leases(type("C", (), {"key_name": "bench"})(), source)  # type: ignore[arg-type]
        times = []
        for i in range(n):
            trace = TurnTrace()
            started = time.perf_counter()
            async with leases.admit(turn, trace):
                trace.usage = TurnUsage(100 + i % 7, 50, 10)
            times.append(time.perf_counter() - started)
        return times

    times = asyncio.run(run())
    p50, p99 = percentile(times, 50) * 1e6, percentile(times, 99) * 1e6
    return ["admission + usage record", f"{p50:.1f} µs", f"{p99:.1f} µs"]


async def _rounds(sim: Simulator, gateways: dict[str, Gateway], results: dict[str, list[dict[str, float]]],
                  load: str, rounds: int) -> None:
    conns = {label: [Connection(gw.port) for _ in range(64)] for label, gw in gateways.items()}
    for label in gateways:
        await run_workers(16, len(sim.accounts) // 16 + 1,
                          lambda i, own=conns[label]: lambda: gateway_turn(own[i], "warm up"))
    for _ in range(rounds):
        for label, gw in gateways.items():
            results[label].append(await one_round(gw, conns[label], load))


def end_to_end(before: str, rounds: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for load in ("turns", "ttfb1"):
        results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        with Simulator(96, tokens_per_second=40.0 if load == "ttfb1" else 0.0) as sim:
            gateways = {}
            for label, src in (("before", before), ("after", "")):
                os.environ["BENCH_GATEWAY_SRC"] = os.path.abspath(src) if src else ""
                keys = [{"name": "bench", "key": API_KEY, **RULES}] if label == "after" else \
                    [{"name": "bench", "key": API_KEY}]
                gateways[label] = Gateway(sim, keys=keys)
                gateways[label].start()
            os.environ.pop("BENCH_GATEWAY_SRC", None)
            try:
                asyncio.run(_rounds(sim, gateways, results, load, rounds))
            finally:
                for gw in gateways.values():
                    gw.stop()
        med = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in results.items()}
        if load == "turns":
            b, a = med["before"]["turn_ms"], med["after"]["turn_ms"]
            rows.append(["gateway CPU per turn (64 streams)", f"{b:.2f} ms", f"{a:.2f} ms", f"{a / b:.3f}"])
        else:
            b, a = med["before"]["ttfb50"], med["after"]["ttfb50"]
            rows.append(["time to first byte p50 (1 client)", ms(b), ms(a), f"{a / b:.3f}"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="", help="a source tree without keys for people (folder of deepseek2api/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    print(table(["in process", "p50", "p99"], [in_process()]))
    if args.skip_e2e or not args.before:
        return 0
    use_uvloop()
    print()
    print(f"median of {args.rounds} alternating rounds; ratio = after / before")
    print(table(["end to end", "before", "after (key with every rule)", "ratio"], end_to_end(args.before, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
