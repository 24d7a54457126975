"""The Gemini and Ollama surfaces' own cost: streamGenerateContent and /api/chat vs /v1/chat/completions
for the same turn, on the same gateway and simulator.

Two figures, each next to chat completions:
- time to first content byte at concurrency 1, requests rotating through the three routes so drift
  on the shared machine hits all alike;
- gateway CPU per streamed piece, 32 paced streams at 40 pieces/s (each piece is its own event),
  rounds rotating through the routes; the median round of each is reported.

    python bench/gemini_ollama.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable

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
_TAIL = 48
CHAT = "/v1/chat/completions"
GEMINI = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
OLLAMA = "/api/chat"


async def _stream(conn: Connection, path: str, body: bytes, headers: dict[str, str], piece: re.Pattern[bytes],
                  done_marker: bytes, error_marker: bytes) -> Sample:
    """One streaming turn: counts the text pieces, notes the first one, checks the stream's end."""
    sample = Sample()
    started = time.perf_counter()
    try:
        status = await conn.request("POST", path, body, headers)
        if status != 200:
            sample.error = f"HTTP {status}: {(await conn.read())[:200]!r}"
            return sample
        tail = b""  # for the markers
        piece_tail = b""  # shorter than a piece: a piece split across reads is counted once, never twice
        keep = len(piece.pattern) // 2
        done = failed = False
        async for data in conn.chunks():
            text = piece_tail + data
            found = len(piece.findall(text))
            if found and sample.ttfb is None:
                sample.ttfb = time.perf_counter() - started
            sample.chunks += found
            piece_tail = text[-keep:]
            text = tail + data
            done = done or done_marker in text
            failed = failed or error_marker in text
            tail = text[-_TAIL:]
        sample.ok = done and not failed
        if not sample.ok:
            sample.error = "stream ended with an error" if failed else "stream ended without its last chunk"
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total = time.perf_counter() - started
    return sample


_GEMINI_PIECE = re.compile(rb'"parts":\[\{"text":"[^"]')  # a non-empty text part (keep-alives are empty)
_OLLAMA_PIECE = re.compile(rb'"content":"[^"]')


async def gemini_turn(conn: Connection, prompt: str) -> Sample:
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}).encode()
    return await _stream(conn, GEMINI, body, {"x-goog-api-key": API_KEY}, _GEMINI_PIECE, b'"finishReason"',
                         b'{"error"')


async def ollama_turn(conn: Connection, prompt: str) -> Sample:
    body = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": prompt}]}).encode()
    return await _stream(conn, OLLAMA, body, {}, _OLLAMA_PIECE, b'"done":true', b'{"error"')


TURNS: dict[str, Callable[[Connection, str], Awaitable[Sample]]] = {
    CHAT: gateway_turn, GEMINI: gemini_turn, OLLAMA: ollama_turn}


async def first_byte(conn: Connection, requests: int) -> list[list[object]]:
    samples: dict[str, list[Sample]] = {path: [] for path in TURNS}
    order = list(TURNS)
    for i in range(requests):
        for path in order[i % 3:] + order[:i % 3]:
            samples[path].append(await TURNS[path](conn, f"time to first byte {i}"))
    base = percentile(ttfbs(samples[CHAT]), 50)
    rows = []
    for path, got in samples.items():
        values = ttfbs(got)
        p50 = percentile(values, 50)
        rows.append([path, f"{len(values)}/{len(got)}", ms(p50), ms(percentile(values, 90)),
                     ms(percentile(values, 99)), "–" if path == CHAT else f"{p50 / base:.2f}x"])
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
    base = sorted(per_piece[CHAT])[len(per_piece[CHAT]) // 2]
    rows = []
    for path, values in per_piece.items():
        values.sort()
        median = values[len(values) // 2]
        rows.append([path, f"{streams[path][0]}/{streams[path][1]}", f"**{median * 1e6:.1f} µs**",
                     ", ".join(f"{v * 1e6:.0f}" for v in values) + " µs", f"{median / base:.2f}x"])
    return rows


async def run(sim: Simulator, gw: Gateway, quick: bool) -> tuple[list[list[object]], list[list[object]]]:
    conns = [Connection(gw.port) for _ in range(STREAMS)]
    for turn in TURNS.values():
        await run_workers(STREAMS, 1, lambda i, turn=turn: lambda: turn(conns[i], "warm up"))  # type: ignore[misc]
    ttfb_rows = await first_byte(conns[0], 21 if quick else 99)
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
    with Simulator(STREAMS + 8) as sim, Gateway(sim, log_level="warning", ollama={"enabled": True}) as gw:
        ttfb_rows, cpu_rows = asyncio.run(run(sim, gw, args.quick))
    out = (f"### Gemini and Ollama vs chat completions\n\n{machine_line()}.\n\n"
           "Time to first content byte, concurrency 1, same turn (deepseek-chat / gemini-2.5-flash → deepseek-chat, "
           "no thinking), rotating:\n\n"
           + table(["route", "ok", "p50", "p90", "p99", "vs chat completions (p50)"], ttfb_rows)
           + f"\n\nGateway CPU per streamed piece, {STREAMS} streams paced at {PACED_RATE:g} pieces/s "
             "(median round; all rounds):\n\n"
           + table(["route", "streams ok", "CPU per piece", "rounds", "vs chat completions"], cpu_rows)
           + f"\n\n({time.perf_counter() - started:.0f} s)\n")
    print(out)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
