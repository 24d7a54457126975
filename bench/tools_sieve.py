"""Tool sieve cost: CPU per streamed piece through `ToolStream` vs. a plain passthrough, in process.

The gateway spends ~45–50 µs of CPU per streamed piece at DeepSeek's pace (bench/streaming.py), so the
issue's budget (≤ 10 % more gateway CPU per piece with tools declared) leaves the sieve ~4–5 µs per
piece. Both columns do the same bookkeeping a renderer needs (one event object per visible piece);
the sieve column adds marker detection, fence tracking, capture, parsing and schema validation.
Also printed: the time from feeding the piece that closes an invoke to having the validated call
(the sieve's share of "last markup character → complete call at the client").

    python bench/tools_sieve.py [--pieces-per-answer N] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from deepseek2api.chat.tools.events import OutToolCall, SievedText
from deepseek2api.chat.tools.parser import ToolSet
from deepseek2api.chat.tools.sieve import ToolStream
from deepseek2api.chat.tools.spec import ToolSpec

TOOLS = ToolSet([
    ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}),
    ToolSpec("write_file", "Write a file.", {"type": "object", "properties": {
        "path": {"type": "string"}, "content": {"type": "string"}}, "required": ["path", "content"]}),
])

PROSE = ("The sieve lets ordinary answer text through at once. TCP slow start doubles the congestion window "
         "every round trip until it reaches the threshold, then grows linearly. ") * 8
CODE = ("Here is the fix:\n\n```python\nif a < b and c > d:\n    print(f\"{a} <= {b}\")\n```\n\n"
        "Use `x < y` comparisons, and <b>HTML</b> stays text.\n") * 6
BODY = "def main() -> None:\n    if x < 3 and y & 1:\n        print(\"<ok>\", '\\\\')\n" * 20
CALL = ("I will write the file.\n\n<|DSML|tool_calls>\n<|DSML|invoke name=\"write_file\">\n"
        "<|DSML|parameter name=\"path\" string=\"true\">src/main.py</|DSML|parameter>\n"
        f"<|DSML|parameter name=\"content\" string=\"true\">{BODY}</|DSML|parameter>\n"
        "</|DSML|invoke>\n</|DSML|tool_calls>")

ANSWERS = {"prose": PROSE, "code and angle brackets": CODE, "tool call with a file body": CALL}


def pieces_of(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        j = i + rng.randint(1, 4)  # the simulator's default piece size (DeepSeek sends 1–4 characters)
        out.append(text[i:j])
        i = j
    return out


def passthrough(pieces: list[str]) -> int:
    events = []
    for piece in pieces:
        events.append(SievedText(piece))
    return len(events)


def sieve(pieces: list[str]) -> int:
    stream = ToolStream(TOOLS)
    count = 0
    for piece in pieces:
        count += len(stream.content(piece))
    return count + len(stream.finish())


def cpu_per_piece(fn: object, pieces: list[str], repeat: int) -> float:
    run = fn  # type: ignore[assignment]
    start = time.process_time()
    for _ in range(repeat):
        run(pieces)  # type: ignore[operator]
    return (time.process_time() - start) / (repeat * len(pieces)) * 1e6


def call_latency(pieces: list[str], samples: int) -> list[float]:
    """CPU µs (this thread, so other processes on a shared machine do not count) spent in the content()
    call that turns the closing piece into the validated call."""
    out = []
    for _ in range(samples):
        stream = ToolStream(TOOLS)
        for piece in pieces:
            t0 = time.thread_time_ns()
            events = stream.content(piece)
            elapsed = time.thread_time_ns() - t0
            if any(isinstance(e, OutToolCall) for e in events):
                out.append(elapsed / 1000)
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"Python {sys.version.split()[0]}; median of {args.rounds} rounds; pieces of 1-4 characters\n")
    print("| answer | pieces | passthrough µs/piece | sieve µs/piece | sieve extra µs/piece | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, text in ANSWERS.items():
        pieces = pieces_of(text, rng)
        base = statistics.median(cpu_per_piece(passthrough, pieces, args.repeat) for _ in range(args.rounds))
        cost = statistics.median(cpu_per_piece(sieve, pieces, args.repeat) for _ in range(args.rounds))
        print(f"| {name} | {len(pieces)} | {base:.2f} | {cost:.2f} | {cost - base:.2f} | {cost / base:.1f}x |")
    latencies = sorted(call_latency(pieces_of(CALL, rng), 400))
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nclosing piece → validated call ({len(BODY)}-character file body, parse + jsonschema): "
          f"p50 {p50:.0f} µs, p99 {p99:.0f} µs")


if __name__ == "__main__":
    main()
