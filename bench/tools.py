"""Tool calls through the whole gateway: CPU per streamed piece with tools declared vs. without, and the
time from the upstream's last markup character to the client holding the complete call.

1. CPU: 32 paced streams (40 pieces/s, DeepSeek's pace) of the same prose answer, once as a plain
   request and once with three tools declared (the answer has no call, so every piece goes through
   the sieve and out again). Gateway CPU from its own /proc counters over the window, per content
   chunk the clients received. Three rounds each, interleaved; the median round is reported.
2. Latency: 16 concurrent streams, each a call written one character per piece at 100 pieces/s. A
   byte-level proxy between gateway and simulator (in this process) timestamps the moment it hands
   the gateway the piece that closes the invoke (`</|DSML|invoke>`'s `>`); the client (same
   process, same clock) timestamps the moment the `tool_calls` chunk arrives. Each request carries
   its own id in the call's arguments, so the two ends are matched exactly.

    python bench/tools.py [--quick]
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
    HOST,
    Connection,
    Gateway,
    Simulator,
    free_port,
    machine_line,
    phase,
    run_workers,
    table,
    use_uvloop,
)

STREAMS = 32
PACED_RATE = 40.0
CALL_RATE = 100.0
LATENCY_STREAMS = 4
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string", "description": "City name"},
                                          "days": {"type": "integer"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "search", "description": "Search the docs.",
                                      "parameters": {"type": "object", "properties": {
                                          "query": {"type": "string"}, "limit": {"type": "integer"}},
                                          "required": ["query"]}}},
    {"type": "function", "function": {"name": "write_file", "description": "Write a file.",
                                      "parameters": {"type": "object", "properties": {
                                          "path": {"type": "string"}, "content": {"type": "string"}},
                                          "required": ["path", "content"]}}},
]
# Longer than the simulator's 120-character excerpt, so the echoed answer is the same with and without
# the tool reminder at the end of the user turn.
PROSE = ("Please give a long and thoughtful answer about streaming gateways, sieves, markers and "
         "the cost of every single piece of text that passes through them on its way. [sim:words={words}]")


# ------------------------------------------------------------------------------------ the proxy

_V_STRING = re.compile(rb'"v":("(?:[^"\\]|\\.)*")')
_CLOSER = "</|DSML|invoke>"
_LEAD_END = "(simulated)."  # the last visible character before the call block
_REQUEST_ID = re.compile(r'name="city" string="true">(req-\d+)<')


class MarkupProxy:
    """TCP proxy gateway → simulator that notes when each invoke closer passes towards the gateway."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.closed_at: dict[str, float] = {}  # request id → when the closing ">" went to the gateway
        self.text_at: dict[str, float] = {}  # request id → when the "." ending the text before the call did
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)

        async def pump_up() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
            up_writer.close()

        async def pump_down() -> None:
            carry, text, lead_at = b"", "", 0.0
            while data := await up_reader.read(65536):
                buf = carry + data
                cut = buf.rfind(b"\n")
                complete, carry = (buf[:cut + 1], buf[cut + 1:]) if cut >= 0 else (b"", buf)
                for match in _V_STRING.finditer(complete):
                    text += json.loads(match.group(1))
                at = text.find(_CLOSER)
                lead = text.find(_LEAD_END)
                stamp = time.perf_counter()
                writer.write(data)
                if lead >= 0:
                    lead_at = stamp
                    text = text.replace(_LEAD_END, ")", 1)
                if at >= 0:
                    found = _REQUEST_ID.findall(text[:at])
                    if found:
                        self.closed_at.setdefault(found[-1], stamp)
                        self.text_at.setdefault(found[-1], lead_at)
                    text = text[at + len(_CLOSER):]
                elif len(text) > 4096:
                    text = text[-512:]
            writer.close()

        try:
            await asyncio.gather(pump_up(), pump_down())
        except (ConnectionError, OSError):
            writer.close()
            up_writer.close()


# ------------------------------------------------------------------------------------ the client

async def stream_turn(conn: Connection, body: dict[str, object],
                      marks: dict[str, float] | None = None) -> tuple[int, float | None, bool]:
    """(content chunks, when the first tool_calls chunk arrived, completed with [DONE]); `marks["text"]`:
    when the chunk with the "." that ends the text before the call arrived."""
    status = await conn.request("POST", "/v1/chat/completions", json.dumps(body).encode(),
                                {"authorization": f"Bearer {API_KEY}"})
    if status != 200:
        await conn.read()
        return 0, None, False
    chunks, call_at, done, tail = 0, None, False, b""
    async for data in conn.chunks():
        text = tail + data
        chunks += text.count(b'"delta":{"content":"')
        if marks is not None and "text" not in marks and b'"delta":{"content":"."}' in text:
            marks["text"] = time.perf_counter()
        if call_at is None and b'"tool_calls":[' in text:
            call_at = time.perf_counter()
        done = done or b"data: [DONE]" in text
        tail = text[-24:]
    return chunks, call_at, done


async def cpu_rounds(gw: Gateway, sim: Simulator, conns: list[Connection], words: int,
                     rounds: int) -> dict[str, list[tuple[float, int, int]]]:
    sim.configure(tokens_per_second=PACED_RATE, events_per_write=1)
    prompt = PROSE.format(words=words)
    bodies = {
        "no tools": {"model": "deepseek-chat", "stream": True, "messages": [{"role": "user", "content": prompt}]},
        "3 tools declared": {"model": "deepseek-chat", "stream": True, "tools": TOOLS,
                             "messages": [{"role": "user", "content": prompt}]},
    }
    out: dict[str, list[tuple[float, int, int]]] = {label: [] for label in bodies}
    for _ in range(rounds):
        pieces = 0  # the plain run's chunks: one per upstream piece (the tool run merges held whitespace)
        for label, body in bodies.items():
            meter = phase(gw, sim).start()
            results = await run_workers(STREAMS, 1, lambda i, b=body: lambda: stream_turn(conns[i], b))
            meter.stop()
            chunks = sum(r[0] for r in results)
            pieces = pieces or chunks
            ok = sum(1 for r in results if r[2])
            out[label].append((meter.gateway.cpu / max(1, pieces), chunks, ok))
    return out


async def latency(sim: Simulator, proxy: MarkupProxy, conns: list[Connection], rounds: int,
                  concurrency: int) -> tuple[list[float], list[float]]:
    """(call lags, text lags) in ms: upstream piece → client, for the call and for the text before it."""
    sim.configure(tokens_per_second=CALL_RATE, events_per_write=1)
    client_at: dict[str, float] = {}
    text_client_at: dict[str, float] = {}
    counter = iter(range(1_000_000))

    def job(i: int):
        async def one() -> None:
            rid = f"req-{next(counter)}"
            args = json.dumps({"city": rid})
            body = {"model": "deepseek-chat", "stream": True, "tools": TOOLS,
                    "messages": [{"role": "user", "content": f"[sim:tool=get_weather args={args}] [sim:split=1]"}]}
            marks: dict[str, float] = {}
            _, call_at, _ = await stream_turn(conns[i], body, marks)
            if call_at is not None:
                client_at[rid] = call_at
            if "text" in marks:
                text_client_at[rid] = marks["text"]
        return one

    await run_workers(concurrency, rounds, job)
    calls = [(client_at[rid] - proxy.closed_at[rid]) * 1000 for rid in client_at if rid in proxy.closed_at]
    texts = [(text_client_at[rid] - proxy.text_at[rid]) * 1000 for rid in text_client_at if rid in proxy.text_at]
    return calls, texts


async def run(quick: bool) -> str:
    with Simulator(STREAMS + 16) as sim:
        proxy = MarkupProxy(sim.port)
        await proxy.start()
        with Gateway(sim, upstream={"base_url": f"http://{HOST}:{proxy.port}"}) as gw:
            conns = [Connection(gw.port) for _ in range(STREAMS)]
            await run_workers(STREAMS, 1, lambda i: lambda: stream_turn(conns[i], {
                "model": "deepseek-chat", "stream": True, "messages": [{"role": "user", "content": "warm up"}]}))
            cpu = await cpu_rounds(gw, sim, conns, 40 if quick else 120, 1 if quick else 3)
            lat, text_lag = await latency(sim, proxy, conns, 2 if quick else 25, LATENCY_STREAMS)
            for c in conns:
                c.close()
        await proxy.stop()
    rows = []
    medians = {}
    for label, samples in cpu.items():
        ordered = sorted(samples)
        per_chunk, chunks, ok = ordered[len(ordered) // 2]
        medians[label] = per_chunk
        spread = ", ".join(f"{s[0] * 1e6:.1f}" for s in samples)
        rows.append([label, f"{ok}/{STREAMS}", f"{chunks:,}", f"**{per_chunk * 1e6:.1f} µs**", spread])
    ratio = medians["3 tools declared"] / medians["no tools"] - 1
    return (f"### Tool calls\n\n{machine_line()}.\n\nGateway CPU per streamed piece (paced, {STREAMS} streams, "
            f"median of the rounds):\n\n"
            + table(["request", "streams ok", "content chunks sent", "gateway CPU per upstream piece", "rounds (µs)"],
                    rows)
            + f"\n\nWith tools declared: **{ratio * 100:+.1f} %** CPU per piece.\n\n"
            f"Upstream piece → client ({LATENCY_STREAMS} concurrent streams at {CALL_RATE:.0f} pieces/s, one "
            f"character per piece):\n\n"
            + table(["what reached the client", "samples", "median", "p90", "p99", "max"],
                    [_lag_row("the complete call (after the invoke's last `>`)", lat),
                     _lag_row("a text piece (the `.` before the block), for comparison", text_lag)])
            + "\n")


def _lag_row(label: str, lags: list[float]) -> list[object]:
    lags = sorted(lags)
    if not lags:
        return [label, 0, "–", "–", "–", "–"]

    def p(q: float) -> str:
        return f"{lags[min(len(lags) - 1, int(q * len(lags)))]:.2f} ms"

    return [label, len(lags), p(0.5), p(0.9), f"**{p(0.99)}**", f"{lags[-1]:.2f} ms"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    args = parser.parse_args(argv)
    use_uvloop()
    started = time.perf_counter()
    out = asyncio.run(run(args.quick)) + f"\n({time.perf_counter() - started:.0f} s)\n"
    print(out)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
