"""Worst event-loop lag of the gateway while it serves one large request.

The simulator runs in its own process (its work must not count); the gateway runs in this process on
a background thread, with a probe on its loop that sleeps 5 ms at a time and records how late it
wakes. Each row sends one request and reports the worst lateness seen while it was served, against
a baseline row (a small request). Target: no row over ~50 ms. The figures depend on the machine and
its load; compare rows of one run, not runs.

    python bench/gateway_lag.py [--rows md10,mixed10,dataurl9,answer1,toolargs2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from deepseek2api.background import BackgroundServer, free_port
from deepseek2api.server import create_app
from deepseek2api.settings import Settings

KEY = "sk-bench"
USER, PASSWORD = "bench@sim.test", "bench-password"
MIXED = "Slow start doubles the congestion window; def grow(w): return w * 2 <b>x</b> ![i](u) 漢字\n"
WRITE = {"type": "function", "function": {"name": "write_file", "description": "Write a file.", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"]}}}


def _chat(content: Any, **extra: Any) -> bytes:
    return json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": content}],
                       **extra}).encode()


def rows() -> dict[str, bytes]:
    mb = 1_000_000
    png = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * (3 * mb)
    data_url = "data:image/png," + "".join(f"%{b:02X}" for b in png)  # ~9 MB %-encoded
    big = "x" * (2 * mb)
    return {
        "small": _chat("hello"),
        "md10": _chat("![a](b)" * (10 * mb // 7)),
        "mixed10": _chat(MIXED * (10 * mb // len(MIXED))),
        "dataurl9": _chat([{"type": "text", "text": "what is this"},
                           {"type": "image_url", "image_url": {"url": data_url}}]),
        "answer1": _chat("[sim:words=150000] long answer"),
        "toolargs2": _chat('[sim:tool=write_file args={"path": "a.txt", "content": "' + big + '"}] write it',
                           tools=[WRITE]),
    }


async def _probe(state: dict[str, float]) -> None:
    last = time.perf_counter()
    while state["run"]:
        state["beat"] = last
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        state["worst"] = max(state["worst"], now - last - 0.005)
        last = now


def _sample(state: dict[str, float], places: collections.Counter[str]) -> None:
    """While the probe is over 50 ms late, note where the loop thread is (file:line of our code)."""
    while state["run"]:
        time.sleep(0.02)
        if time.perf_counter() - state.get("beat", time.perf_counter()) > 0.05 and "thread" in state:
            frame = sys._current_frames().get(int(state["thread"]))
            stack = traceback.extract_stack(frame)[::-1] if frame is not None else []
            ours = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack if "deepseek2api" in f.filename]
            places[" < ".join(ours[:3]) or (stack[0].name if stack else "?")] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="small,md10,mixed10,dataurl9,answer1,toolargs2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print the start of every error body")
    parser.add_argument("--where", action="store_true",
                        help="sample the loop thread's stack whenever the probe is 50 ms late; print the top places")
    args = parser.parse_args()
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "deepseek2api", "simulate", "--port", str(port),
                            "--users", f"{USER}:{PASSWORD}", "--difficulty", "2000", "--tokens-per-second", "0",
                            "--log-level", "warning"])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        settings = Settings.model_validate({
            "keys": [{"name": "bench", "key": KEY}], "accounts": [{"email": USER, "password": PASSWORD}],
            "upstream": {"base_url": f"http://127.0.0.1:{port}", "impersonate": None,
                         "inline_prompt_limit": 10_000_000},  # the large prompts go upstream whole
            "state": {"backend": "memory"}, "server": {"max_body_bytes": 64 * 1024 * 1024},
            "files": {"max_bytes": 8 * 1024 * 1024}})
        bodies = rows()
        places: collections.Counter[str] = collections.Counter()
        print("| row | request bytes | status | seconds | worst loop lag (ms) |")
        print("| --- | --- | --- | --- | --- |")
        with BackgroundServer(create_app(settings)) as gateway, httpx.Client(timeout=300) as client:
            for name in args.rows.split(","):
                body = bodies[name]
                for _ in range(args.repeat):
                    state = {"run": 1.0, "worst": 0.0}
                    probe = gateway.call(_start(state))
                    if args.where:
                        sampler = threading.Thread(target=_sample, args=(state, places), daemon=True)
                        sampler.start()
                    started = time.perf_counter()
                    response = client.post(f"{gateway.base_url}/v1/chat/completions", content=body,
                                           headers={"authorization": f"Bearer {KEY}",
                                                    "content-type": "application/json"})
                    elapsed = time.perf_counter() - started
                    state["run"] = 0.0
                    gateway.call(_stop(probe))
                    print(f"| {name} | {len(body):,} | {response.status_code} | {elapsed:.2f} "
                          f"| {state['worst'] * 1000:.0f} |", flush=True)
                    if response.status_code != 200 and args.verbose:
                        print("   ", response.text[:300])
                    for place, count in places.most_common(4):
                        print(f"    {count * 20} ms at {place}")
                    places.clear()
    finally:
        sim.terminate()
        sim.wait(10)


async def _start(state: dict[str, float]) -> asyncio.Task[None]:
    state["thread"] = threading.get_ident()
    task = asyncio.create_task(_probe(state))
    await asyncio.sleep(0.02)
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    await task


if __name__ == "__main__":
    main()
