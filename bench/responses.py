"""Responses API vs chat completions for the same turn: added time to first byte, gateway CPU per piece.

Same simulator, same gateway process, same prompt; the two surfaces alternate so drift hits both.

- Time to first text byte: turns one at a time (an idle gateway), from the first request byte to the
  first `output_text.delta` (Responses) or the first content chunk (chat). Responses sends
  `response.created` + `response.in_progress` + the item and part openers before its first delta, in
  the same write as the first delta.
- CPU per streamed piece: `STREAMS` concurrent streams at DeepSeek's pace (40 pieces/s), every piece
  its own event; gateway CPU from its /proc counters over the window, divided by the text deltas the
  clients received.

    python bench/responses.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time

from harness import (
    API_KEY,
    Connection,
    Gateway,
    HttpError,
    Sample,
    Simulator,
    failures,
    gateway_turn,
    machine_line,
    phase,
    run_workers,
    table,
    use_uvloop,
)
from streaming import prompt_with_chars

STREAMS = 32
PACED_RATE = 40.0
_DELTA = re.compile(rb"event: response\.output_text\.delta\n")


def responses_body(prompt: str, model: str = "deepseek-chat") -> bytes:
    return json.dumps({"model": model, "stream": True, "input": prompt, "store": False}).encode()


async def responses_turn(conn: Connection, prompt: str) -> Sample:
    """One streaming Responses turn through the gateway (counts `output_text.delta` events)."""
    sample = Sample()
    started = time.perf_counter()
    try:
        status = await conn.request("POST", "/v1/responses", responses_body(prompt),
                                    {"authorization": f"Bearer {API_KEY}"})
        if status != 200:
            sample.error = f"HTTP {status}: {(await conn.read())[:200]!r}"
            return sample
        tail = b""
        done = False
        async for data in conn.chunks():
            text = tail + data
            found = len(_DELTA.findall(text))
            if found and sample.ttfb is None:
                sample.ttfb = time.perf_counter() - started
            sample.chunks += found
            done = done or b"event: response.completed\n" in text
            tail = text[-48:]
        sample.ok = done
        if not done:
            sample.error = "stream ended without response.completed"
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total = time.perf_counter() - started
    return sample


TURNS = {"chat completions": gateway_turn, "responses": responses_turn}


async def ttfb(gw: Gateway, rounds: int) -> dict[str, list[float]]:
    conn = Connection(gw.port)
    out: dict[str, list[float]] = {name: [] for name in TURNS}
    for turn in TURNS.values():  # warm both paths (tokenizer, first PoW, imports)
        await turn(conn, "warm up")
    for i in range(rounds):
        for name, turn in (TURNS.items() if i % 2 == 0 else reversed(TURNS.items())):
            sample = await turn(conn, f"first byte {i}")
            if sample.ok and sample.ttfb is not None:
                out[name].append(sample.ttfb)
    conn.close()
    return out


async def cpu_per_piece(sim: Simulator, gw: Gateway, quick: bool) -> list[list[object]]:
    conns = [Connection(gw.port) for _ in range(STREAMS)]
    sim.configure(tokens_per_second=PACED_RATE, events_per_write=1)
    prompt = prompt_with_chars(300 if quick else 800)
    per_piece: dict[str, list[float]] = {name: [] for name in TURNS}
    streams_ok: dict[str, list[int]] = {name: [] for name in TURNS}
    pieces: dict[str, int] = {name: 0 for name in TURNS}
    for round_ in range(1 if quick else 3):  # alternating rounds: a shared machine's drift hits both
        for name, turn in (TURNS.items() if round_ % 2 == 0 else reversed(TURNS.items())):
            meter = phase(gw, sim).start()
            samples = await run_workers(STREAMS, 1, lambda i, t=turn: lambda: t(conns[i], prompt),  # type: ignore[misc]
                                        stagger=0.5)
            meter.stop()
            count = sum(s.chunks for s in samples)
            assert meter.gateway is not None
            per_piece[name].append(meter.gateway.cpu / max(1, count))
            streams_ok[name].append(len(samples) - len(failures(samples)))
            pieces[name] += count
    rows: list[list[object]] = []
    for name in TURNS:
        rounds = ", ".join(f"{v * 1e6:.0f}" for v in per_piece[name])
        rows.append([name, f"{sum(streams_ok[name])}/{STREAMS * len(streams_ok[name])}", f"{pieces[name]:,}",
                     f"**{statistics.median(per_piece[name]) * 1e6:.1f} µs** ({rounds})"])
    sim.configure(tokens_per_second=0.0)
    for c in conns:
        c.close()
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter streams")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    sim = Simulator(STREAMS + 8)
    with sim:
        gw = Gateway(sim, log_level="warning")
        with gw:
            firsts = asyncio.run(ttfb(gw, 10 if args.quick else 40))
            cpu_rows = asyncio.run(cpu_per_piece(sim, gw, args.quick))
    chat, responses = (statistics.median(firsts[name]) * 1000 for name in TURNS)
    ttfb_rows = [[name, len(values), f"{statistics.median(values) * 1000:.2f} ms",
                  f"{statistics.quantiles(values, n=10)[-1] * 1000:.2f} ms" if len(values) >= 10 else "–"]
                 for name, values in firsts.items()]
    out = (f"### Responses API vs chat completions\n\n{machine_line()}.\n\n"
           + table(["surface (idle gateway)", "turns", "median time to first text byte", "p90"], ttfb_rows)
           + f"\n\nAdded by /v1/responses: **{responses - chat:+.2f} ms** median.\n\n"
           + table([f"surface ({STREAMS} streams, 40 pieces/s)", "streams ok", "text deltas",
                    "gateway CPU per piece, median (rounds)"], cpu_rows)
           + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
