"""Gateway memory: what each import costs, and the process's RSS idle, after a first turn and with 64 streams.

1. Imports: each module in a fresh interpreter (after the standard library pieces every server loads),
   RSS before and after, and which optional parts the app built from a minimal config has loaded.
2. The gateway process (`cli serve`, minimal config: one key, the bench accounts, SQLite state) in front
   of the simulator: RSS once started and idle, after one turn (the tokenizer is loaded by then), and
   the peak while 64 streams run at 40 pieces/s.

    python bench/memory.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time

from harness import (
    PYTHON,
    ROOT,
    Connection,
    Gateway,
    RssSampler,
    Simulator,
    failures,
    gateway_turn,
    machine_line,
    run_workers,
    table,
    use_uvloop,
)

STREAMS = 64
MODULES = ["fastapi", "pydantic", "curl_cffi.requests", "uvicorn", "tokenizers", "prometheus_client", "jsonschema",
           "redis.asyncio", "deepseek2api.settings", "deepseek2api.server"]
OPTIONAL = ["redis", "jsonschema", "prometheus_client", "tokenizers", "numpy", "playwright"]

_PROBE = """
import asyncio, json, logging, re, ssl, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
before = rss()
import {module}
print(rss() - before)
"""

_APP = """
import json, sys, tempfile, os
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
path = os.path.join(tempfile.mkdtemp(), "config.json")
with open(path, "w") as f:
    json.dump({{"keys": [{{"name": "k", "key": "sk-memory-0123456789abcdef"}}],
               "accounts": [{{"email": "a@sim.test", "password": "pw"}}],
               "state": {{"backend": "sqlite", "path": path + ".db"}}}}, f)
from deepseek2api.settings import load_settings
from deepseek2api.server import create_app
create_app(load_settings(path))
print(rss(), json.dumps([m for m in {optional!r} if m in sys.modules]))
"""


def _python(code: str) -> str:
    env = {"PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.strip()


def import_rows() -> tuple[list[list[object]], str]:
    rows: list[list[object]] = [[module, f"{float(_python(_PROBE.format(module=module))):.1f} MB"]
                                for module in MODULES]
    rss, loaded = _python(_APP.format(optional=OPTIONAL)).split(" ", 1)
    return rows, f"the app built from a minimal config: {float(rss):.1f} MB RSS; optional parts loaded: {loaded}"


async def process_rows(sim: Simulator, gw: Gateway, quick: bool) -> list[list[object]]:
    stats = gw.stats
    await asyncio.sleep(1.0)
    rows: list[list[object]] = [["started, idle", f"{stats.rss_mb():.1f} MB"]]
    conns = [Connection(gw.port) for _ in range(STREAMS)]
    sample = await gateway_turn(conns[0], "Hello")
    await asyncio.sleep(0.5)
    rows.append([f"after one turn ({'ok' if sample.ok else sample.error})", f"{stats.rss_mb():.1f} MB"])
    sim.configure(tokens_per_second=40.0, events_per_write=1)
    sampler = RssSampler(stats).start()
    prompt = f"Stream a long answer [sim:words={60 if quick else 150}]"
    samples = await run_workers(STREAMS, 1, lambda i: lambda: gateway_turn(conns[i], prompt))
    peak = await sampler.stop()
    bad = failures(samples)
    rows.append([f"peak with {STREAMS} streams at 40 pieces/s ({STREAMS - len(bad)}/{STREAMS} ok)", f"{peak:.1f} MB"])
    await asyncio.sleep(0.5)
    rows.append(["after the streams", f"{stats.rss_mb():.1f} MB"])
    for c in conns:
        c.close()
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter streams")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    imports, app_line = import_rows()
    with Simulator(STREAMS) as sim, Gateway(sim) as gw:
        rows = asyncio.run(process_rows(sim, gw, args.quick))
    out = (f"### Memory\n\n{machine_line()}.\n\nRSS added by importing each module (fresh interpreter):\n\n"
           + table(["module", "RSS added"], imports) + f"\n\n{app_line}.\n\nThe gateway process (`cli serve`):\n\n"
           + table(["state", "RSS"], rows) + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
