"""Streaming cost: gateway CPU per 1,000 forwarded chunks, and the most chunks per second it forwards.

CPU comes from the gateway process's own counters (/proc/<pid>/stat: user + system time of all its
threads) over the measured window, divided by the content chunks the clients received. Two loads:

- paced: 64 streams at 40 pieces/s each (DeepSeek's pace). Every piece arrives alone, so each one
  costs a full wake-up: socket read, decode, assemble, encode, socket write. This is the cost that
  matters in production.
- unpaced: 64 streams as fast as the simulator can write, 16 events per write (so the simulator is
  not the limit). This is the ceiling: the most chunks per second the gateway forwards. The same
  load straight from the simulator (same load generator) is shown beside it.

- floor: the same paced load through bench/floor_relay.py (curl_cffi in, uvicorn out, no logic: the
  transport floor), then through the gateway as chat completions, Anthropic Messages, Responses and chat
  completions with three tools declared, in alternating rounds; gateway CPU per piece as a ratio to the
  floor's (target ≤ 1.2×; three tools ≤ +10 % over none).

    python bench/streaming.py [--quick] [--only floor]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from deepseek2api.simulator.replies import reply_for
from harness import (
    Connection,
    DirectClient,
    FloorRelay,
    Gateway,
    RssSampler,
    Simulator,
    failures,
    gateway_turn,
    machine_line,
    phase,
    relay_turn,
    run_workers,
    table,
    use_uvloop,
)

STREAMS = 64
PACED_RATE = 40.0


def prompt_with_chars(chars: int) -> str:
    """A prompt whose simulated reply has about `chars` characters (filler words)."""
    base = "Stream a long answer"
    words = 0
    while len(reply_for(f"{base} [sim:words={words}]", thinking=False, search=False).content) < chars:
        words += max(1, (chars - len(reply_for(f"{base} [sim:words={words}]", thinking=False,
                                               search=False).content)) // 7)
    return f"{base} [sim:words={words}]"


NON_TEXT_EVENTS = 9  # per simulated reply: ready, update_session, the RESPONSE opening, tip, finish … close


GATEWAY_ACCOUNTS = STREAMS + 32
# Longer than the simulator's 120-character echo excerpt (the reply is the same with the tools' reminder
# appended), and sharing no word with a tool's name (the simulator would call that tool instead).
FLOOR_PROSE = ("Please give a long and thoughtful answer about streaming gateways, sieves, markers and the cost "
               "of every single piece of text that passes through them on its way. [sim:words={words}]")


async def warm_up(gw: Gateway, conns: list[Connection]) -> None:
    await run_workers(16, GATEWAY_ACCOUNTS // 16 + 1, lambda i: lambda: gateway_turn(conns[i], "warm up"))


async def floor(sim: Simulator, gw: Gateway, relay: FloorRelay, quick: bool) -> list[list[object]]:
    """Gateway CPU per paced piece on each surface, as a ratio to the transport floor, alternating rounds."""
    from responses import responses_turn
    from surfaces import messages_turn
    from tools import TOOLS

    conns = [Connection(gw.port) for _ in range(STREAMS)]
    relay_conns = [Connection(relay.port) for _ in range(STREAMS)]
    await warm_up(gw, conns)
    await run_workers(STREAMS, 1, lambda i: lambda: relay_turn(relay_conns[i], "warm up"))
    sim.configure(tokens_per_second=PACED_RATE, events_per_write=1)
    prompt = FLOOR_PROSE.format(words=60 if quick else 160)  # ~230 / ~530 pieces: ~6 / ~13 s streams
    turns = {
        "floor: curl_cffi → uvicorn, no logic": (relay, lambda i: relay_turn(relay_conns[i], prompt)),
        "gateway, chat completions": (gw, lambda i: gateway_turn(conns[i], prompt)),
        "gateway, Anthropic messages": (gw, lambda i: messages_turn(conns[i], prompt)),
        "gateway, Responses": (gw, lambda i: responses_turn(conns[i], prompt)),
        "gateway, chat completions, 3 tools declared": (gw, lambda i: gateway_turn(conns[i], prompt, TOOLS)),
    }
    per_piece: dict[str, list[float]] = {label: [] for label in turns}
    ratios: dict[str, list[float]] = {label: [] for label in turns}
    oks: dict[str, list[int]] = {label: [] for label in turns}
    peaks: dict[str, float] = {label: 0.0 for label in turns}
    pieces_seen: dict[str, int] = {}
    for _ in range(3):
        floor_us = 0.0
        floor_pieces = 0  # every row streams the same reply: its upstream pieces, counted at the floor
        for label, (server, turn) in turns.items():
            meter = phase(server, None).start()
            rss = RssSampler(server.stats).start()
            samples = await run_workers(STREAMS, 1, lambda i, turn=turn: lambda: turn(i))
            peaks[label] = max(peaks[label], await rss.stop())
            meter.stop()
            bad = failures(samples)
            if bad:
                print(f"  ! {label}: {len(bad)} failed stream(s), e.g. {bad[0]}", file=sys.stderr)
            floor_pieces = floor_pieces or sum(s.chunks for s in samples)
            chunks = sum(s.chunks for s in samples)
            pieces_seen[label] = floor_pieces
            assert meter.gateway is not None
            us = meter.gateway.cpu / max(1, floor_pieces) * 1e6
            floor_us = floor_us or us
            per_piece[label].append(us)
            ratios[label].append(us / floor_us if floor_us else float("nan"))
            oks[label].append(len(samples) - len(bad))
            print(f"  {label}: {floor_pieces} pieces, {chunks} chunks, {us:.1f} µs per piece, "
                  f"{us / floor_us:.2f}× the floor", file=sys.stderr)
    rows: list[list[object]] = []
    chat_median = statistics.median(per_piece["gateway, chat completions"])
    for label in turns:
        values = per_piece[label]
        tools_note = ""
        if "tools" in label:
            tools_note = f" ({statistics.median(values) / chat_median - 1:+.1%} vs none)"
        rows.append([label, f"{sum(oks[label])}/{3 * STREAMS}", f"{pieces_seen[label]:,}",
                     f"**{statistics.median(values):.1f} µs** ({', '.join(f'{v:.0f}' for v in values)})",
                     f"**{statistics.median(ratios[label]):.2f}×** "
                     f"({', '.join(f'{v:.2f}' for v in ratios[label])}){tools_note}",
                     f"{peaks[label]:.0f} MB"])
    for c in conns + relay_conns:
        c.close()
    return rows


async def run(sim: Simulator, gw: Gateway, quick: bool) -> list[list[object]]:
    conns = [Connection(gw.port) for _ in range(STREAMS)]
    directs = [DirectClient(sim.port, email, password) for email, password in sim.accounts[:STREAMS]]
    await asyncio.gather(*(d.login() for d in directs))
    await warm_up(gw, conns)
    rows: list[list[object]] = []

    # paced: ~10 s streams (1000 characters ≈ 400 pieces at 40/s); every piece is its own chunk.
    # Three rounds, the median one is reported (this figure moves ±15% between runs on a shared VM).
    sim.configure(tokens_per_second=PACED_RATE, events_per_write=1)
    paced_prompt = prompt_with_chars(400 if quick else 1000)
    rounds = []
    for _ in range(1 if quick else 3):
        meter = phase(gw, sim).start()
        samples = await run_workers(STREAMS, 1, lambda i: lambda: gateway_turn(conns[i], paced_prompt))
        meter.stop()
        rounds.append((meter.gateway.cpu / max(1, sum(s.chunks for s in samples)), samples, meter))
    rounds.sort(key=lambda r: r[0])
    _, samples, meter = rounds[len(rounds) // 2]
    spread = f" (rounds: {', '.join(f'{r[0] * 1e6:.0f}' for r in rounds)} µs)" if len(rounds) > 1 else ""
    rows.append(_row(f"gateway, paced 40 pieces/s{spread}", samples, meter, None))

    # unpaced, the ceiling: straight from the simulator, then through the gateway
    sim.configure(tokens_per_second=None, events_per_write=16)
    fast_prompt = prompt_with_chars(4000 if quick else 12000)
    meter = phase(None, sim).start()
    direct = await run_workers(STREAMS, 2, lambda i: lambda: directs[i].turn(fast_prompt))
    meter.stop()
    pieces = sum(s.chunks for s in direct) - NON_TEXT_EVENTS * len(direct)
    rows.append(_row("direct from the simulator, unpaced", direct, meter, pieces))
    meter = phase(gw, sim).start()
    samples = await run_workers(STREAMS, 2, lambda i: lambda: gateway_turn(conns[i], fast_prompt))
    meter.stop()
    rows.append(_row("gateway, unpaced", samples, meter, pieces))
    for c in conns:
        c.close()
    for d in directs:
        d.close()
    return rows


def _row(label: str, samples: list, meter, pieces: int | None) -> list[object]:
    """`pieces`: upstream text pieces (None: one per delivered chunk, as when paced)."""
    bad = failures(samples)
    if bad:
        print(f"  ! {label}: {len(bad)} failed stream(s), e.g. {bad[0]}", file=sys.stderr)
    chunks = sum(s.chunks for s in samples)
    direct = meter.gateway is None
    pieces = chunks if pieces is None else pieces
    rate = pieces / meter.loadgen.wall
    cpu = meter.gateway.cpu if meter.gateway else None
    per_piece = f"**{cpu / pieces * 1e6:.1f} µs**" if cpu is not None and pieces else "–"
    per_chunk = f"{cpu / chunks * 1e6:.1f} µs" if cpu is not None and chunks else "–"
    print(f"  {label}: {pieces} pieces, {rate:,.0f}/s", file=sys.stderr)
    return [label, f"{len(samples) - len(bad)}/{len(samples)}", f"{pieces:,}",
            "–" if direct else f"{chunks:,}", f"{meter.loadgen.wall:.1f} s", f"{rate:,.0f}", per_piece, per_chunk,
            f"{meter.gateway.percent:.0f}%" if meter.gateway else "–",
            f"{meter.simulator.percent:.0f}%" if meter.simulator else "–", f"{meter.loadgen.percent:.0f}%"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter streams")
    parser.add_argument("--only", choices=("floor", "stream"), help="only the floor table, or only the other one")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    rows: list[list[object]] = []
    floor_rows: list[list[object]] = []
    with Simulator(GATEWAY_ACCOUNTS + STREAMS) as sim:
        gateway_accounts = [{"email": e, "password": p} for e, p in sim.accounts[:GATEWAY_ACCOUNTS]]
        with Gateway(sim, accounts=gateway_accounts) as gw:
            if args.only != "floor":
                rows = asyncio.run(run(sim, gw, args.quick))
            if args.only != "stream":
                with FloorRelay(sim, sim.accounts[GATEWAY_ACCOUNTS:]) as relay:
                    floor_rows = asyncio.run(floor(sim, gw, relay, args.quick))
    out = f"### Streaming cost\n\n{machine_line()}. "
    if rows:
        out += _stream_table(rows)
    if floor_rows:
        out += ("\n\n#### Against the transport floor\n\n"
                f"{STREAMS} streams at {PACED_RATE:g} pieces/s, the same prose reply on every row, three rounds "
                "that alternate the rows; CPU of the serving process (the floor relay or the gateway) per upstream "
                "text piece (counted at the floor: the same reply on every row), median (rounds), and its ratio to the "
                "floor's in the same round.\n\n"
                + table(["load", "streams ok", "pieces (last round)", "CPU per piece", "× floor", "peak RSS"],
                        floor_rows))
    out += f"\n\n({time.perf_counter() - started:.0f} s)\n"
    print(out)
    return out


def _stream_table(rows: list[list[object]]) -> str:
    header = ["load (64 streams)", "streams ok", "upstream pieces", "chunks sent to clients", "time", "pieces/s",
              "gateway CPU per piece", "gateway CPU per chunk sent", "gateway CPU", "simulator CPU",
              "load generator CPU"]
    return ("CPU as % of one core over the window (gateway: its own /proc counters). A piece is one upstream "
            "text event (1–4 characters, a token's worth). Paced, each piece goes out as its own chunk; unpaced, "
            "pieces that arrive together are merged into one chunk. Unpaced upstream pieces are counted on the "
            "direct run (same prompt, same streams).\n\n" + table(header, rows))


if __name__ == "__main__":
    main()
