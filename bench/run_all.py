"""The whole benchmark report: PoW, added latency, streaming cost, scale + memory, burst.

Runs each benchmark in turn (each starts its own simulator and gateway processes) and prints one
markdown report; `--out FILE` also writes it. `--gateway-src DIR` runs the gateway from another
source tree (the folder holding `deepseek2api/`), for before/after comparisons.

    python bench/run_all.py [--quick] [--out report.md] [--gateway-src /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter streams (~2 min)")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--gateway-src", help="run the gateway from this source tree")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["pow", "latency", "streaming", "scale", "burst"])
    args = parser.parse_args()
    if args.gateway_src:
        os.environ["BENCH_GATEWAY_SRC"] = os.path.abspath(args.gateway_src)
    sys.path.insert(0, str(HERE))
    import burst
    import latency
    import scale
    import streaming

    started = time.perf_counter()
    parts = [f"# DeepSeek2API benchmark report\n\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.node() or 'host'}, "
             f"load average at start {load_average()}"
             + (f"; gateway from `{args.gateway_src}`" if args.gateway_src else "") + "\n"]
    if "pow" not in args.skip:
        reps = ["--reps", "5", "--numpy-reps", "1"] if args.quick else []
        pow_out = subprocess.run([sys.executable, str(HERE / "pow.py"), *reps], capture_output=True, text=True,
                                 check=False)
        parts.append("### PoW (bench/pow.py)\n\n" + (pow_out.stdout.strip() or pow_out.stderr.strip()) + "\n")
    quick = ["--quick"] if args.quick else []
    if "latency" not in args.skip:
        parts.append(latency.main(quick))
    if "streaming" not in args.skip:
        parts.append(streaming.main(quick))
    if "scale" not in args.skip:
        parts.append(scale.main(["--seconds", "15"] if args.quick else []))
    if "burst" not in args.skip:
        parts.append(burst.main(["--bursts", "1"] if args.quick else []))
    parts.append(f"_Total: {time.perf_counter() - started:.0f} s; load average at the end {load_average()}._\n")
    report = "\n".join(parts)
    print("\n\n" + report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
