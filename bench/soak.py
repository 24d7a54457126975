"""Fault soak at scale: the scenario of tests/gateway/reliability/test_reliability_soak.py with many more requests.

Simulator and gateway run on loopback (as in the tests); the openai SDK fires requests through the
gateway while the simulator injects token expiry, PoW rejection, 429s, busy, mutes, WAF pages,
stalls (ending in idle timeouts) and cut streams, and some clients hang up mid-stream. Prints a
markdown table: outcomes by class, failovers, concurrency violations, leases still out, duration,
p50/p99 latency. Exit code 1 when any answer was wrong or malformed, or an invariant broke.

    python bench/soak.py [--requests 10000] [--concurrency 32] [--accounts 5] [--seed 6]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the soak engine lives with the tests that use it
try:
    import deepseek2api  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))

from reliability_support import SoakOptions, run_soak, soak_stack  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    options = SoakOptions(requests=args.requests, concurrency=args.concurrency, accounts=args.accounts,
                          seed=args.seed)
    with soak_stack(options, check=False) as stack:
        report = asyncio.run(run_soak(stack, options))
    print(report.table())
    for outcome in report.bad[:20]:
        print(f"BAD: {outcome.detail}", file=sys.stderr)
    broken = report.bad or report.violations or report.leases_out or report.inflight
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
