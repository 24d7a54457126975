"""The Anthropic surface's own cost: /v1/messages vs /v1/chat/completions for the same turn.

Two figures, both side by side with the OpenAI surface on the same gateway and simulator:
- added time to first content byte at concurrency 1 (no PoW cost to speak of), requests alternating
  between the two surfaces so drift on the shared machine hits both alike;
- gateway CPU per streamed piece, 32 paced streams at 40 pieces/s (each piece is its own event),
  rounds alternating between the surfaces; the median round of each is reported.

    python bench/surfaces.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time

from harness import (
    API_KEY,
    Connection,
    Gateway,
    HttpError,
    Sample,
    Simulator,
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

STREAMS = 32
PACED_RATE = 40.0
_TEXT_DELTA = re.compile(rb'"text_delta","text":"')
_TAIL = 24


def messages_body(prompt: str, model: str = "deepseek-chat") -> bytes:
    return json.dumps({"model": model, "max_tokens": 64000, "stream": True,
                       "messages": [{"role": "user", "content": prompt}]}).encode()


async def messages_turn(conn: Connection, prompt: str) -> Sample:
    """One streaming Anthropic message through the gateway (the same turn as `gateway_turn`)."""
    sample = Sample()
    started = time.perf_counter()
    try:
        status = await conn.request("POST", "/v1/messages", messages_body(prompt),
                                    {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})
        if status != 200:
            sample.error = f"HTTP {status}: {(await conn.read())[:200]!r}"
            return sample
        tail = b""
        done = failed = False
        async for data in conn.chunks():
            text = tail + data
            found = len(_TEXT_DELTA.findall(text))
            if found and sample.ttfb is None:
                sample.ttfb = time.perf_counter() - started
            sample.chunks += found
            done = done or b"event: message_stop" in text
            failed = failed or b"event: error" in text
            tail = text[-_TAIL:]
        sample.ok = done and not failed
        if not sample.ok:
            sample.error = "stream ended with an error event" if failed else "stream ended without message_stop"
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total = time.perf_counter() - started
    return sample


TURNS = {"/v1/chat/completions": gateway_turn, "/v1/messages": messages_turn}


async def first_byte(conn: Connection, requests: int) -> list[list[object]]:
    samples: dict[str, list[Sample]] = {path: [] for path in TURNS}
    for i in range(requests):
        for path in (TURNS if i % 2 == 0 else reversed(list(TURNS))):
            samples[path].append(await TURNS[path](conn, f"time to first byte {i}"))
    rows = []
    base = percentile(ttfbs(samples["/v1/chat/completions"]), 50)
    for path, got in samples.items():
        values = ttfbs(got)
        p50 = percentile(values, 50)
        rows.append([path, f"{len(values)}/{len(got)}", ms(p50), ms(percentile(values, 90)),
                     ms(percentile(values, 99)), "–" if path.endswith("completions") else ms(p50 - base)])
    return rows


async def cpu_per_piece(sim: Simulator, gw: Gateway, conns: list[Connection], quick: bool) -> list[list[object]]:
    sim.configure(tokens_per_second=PACED_RATE, events_per_write=1)
    prompt = prompt_with_chars(300 if quick else 600)
    per_piece: dict[str, list[float]] = {path: [] for path in TURNS}
    streams: dict[str, list[int]] = {path: [0, 0] for path in TURNS}
    for _ in range(1 if quick else 3):
        for path, turn in TURNS.items():
            meter = phase(gw, sim).start()
            samples = await run_workers(STREAMS, 1, lambda i, turn=turn: lambda: turn(conns[i], prompt))  # type: ignore[misc]
            meter.stop()
            chunks = sum(s.chunks for s in samples)
            assert meter.gateway is not None
            per_piece[path].append(meter.gateway.cpu / max(1, chunks))
            print(f"  {path}: {chunks} pieces, gateway CPU {meter.gateway.cpu:.3f} s", file=sys.stderr)
            streams[path][0] += sum(1 for s in samples if s.ok)
            streams[path][1] += len(samples)
    rows = []
    base = sorted(per_piece["/v1/chat/completions"])[len(per_piece["/v1/chat/completions"]) // 2]
    for path, values in per_piece.items():
        values.sort()
        median = values[len(values) // 2]
        spread = ", ".join(f"{v * 1e6:.0f}" for v in values)
        rows.append([path, f"{streams[path][0]}/{streams[path][1]}", f"**{median * 1e6:.1f} µs**",
                     f"{spread} µs", f"{median / base:.2f}x"])
    return rows


async def run(sim: Simulator, gw: Gateway, quick: bool) -> tuple[list[list[object]], list[list[object]]]:
    conns = [Connection(gw.port) for _ in range(STREAMS)]
    await run_workers(STREAMS, 1, lambda i: lambda: gateway_turn(conns[i], "warm up"))
    await run_workers(STREAMS, 1, lambda i: lambda: messages_turn(conns[i], "warm up"))
    ttfb_rows = await first_byte(conns[0], 20 if quick else 100)
    cpu_rows = await cpu_per_piece(sim, gw, conns, quick)
    for conn in conns:
        conn.close()
    return ttfb_rows, cpu_rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter streams")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    with Simulator(STREAMS + 8) as sim, Gateway(sim, log_level="warning") as gw:
        ttfb_rows, cpu_rows = asyncio.run(run(sim, gw, args.quick))
    out = (f"### Anthropic Messages vs chat completions\n\n{machine_line()}.\n\n"
           "Time to first content byte, concurrency 1, same turn (deepseek-chat, no thinking), alternating:\n\n"
           + table(["route", "ok", "p50", "p90", "p99", "added vs chat completions (p50)"], ttfb_rows)
           + f"\n\nGateway CPU per streamed piece, {STREAMS} streams paced at {PACED_RATE:g} pieces/s "
             "(median round; all rounds):\n\n"
           + table(["route", "streams ok", "CPU per piece", "rounds", "vs chat completions"], cpu_rows)
           + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
