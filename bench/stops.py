"""Stop-sequence matching cost: a long reply streamed in small chunks, old assembler vs this tree.

Rows: ordinary text with a short stop, adversarial stops of the maximum allowed length (256
characters), and the issue's oversized stop (API now rejects it; the matcher is timed anyway to show
its work does not grow with the stop's length). "before" loads chat/assemble.py from a git revision
(default: the commit before the linear matcher), so both run on the same machine in one process.

    python bench/stops.py [--chars 1000000] [--before 9ef0418]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from deepseek2api.chat import assemble as current
from deepseek2api.deepseek.events import ContentDelta, Finished

ROOT = Path(__file__).resolve().parent.parent


def _old_module(revision: str) -> Any:
    source = subprocess.run(["git", "show", f"{revision}:src/deepseek2api/chat/assemble.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("deepseek2api.chat._assemble_before")
    module.__package__ = "deepseek2api.chat"
    sys.modules[module.__name__] = module
    exec(compile(source, "assemble_before.py", "exec"), module.__dict__)  # our own file at a revision
    return module


def _seconds(module: Any, reply: str, stop: str) -> float:
    assembler = module.TurnAssembler(stop=[stop])
    chunks = [reply[i:i + 3] for i in range(0, len(reply), 3)]
    started = time.perf_counter()
    for chunk in chunks:
        assembler.push(ContentDelta(chunk))
    assembler.push(Finished("FINISHED"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--before", default="9ef0418")
    args = parser.parse_args()
    old = _old_module(args.before)
    prose = "The quick brown fox jumps over the lazy dog. " * (args.chars // 45 + 1)
    cases = {
        "prose, stop '\\n\\nUser:'": (prose[: args.chars], "\n\nUser:"),
        "'aaa…', stop 'a'*255+'b' (256, the cap)": ("a" * args.chars, "a" * 255 + "b"),
        "'aaa…', stop 'ab'*128 (256, the cap)": ("a" * args.chars, "ab" * 128),
        "the issue's case: 1 MB stop 'a…ab' (now a 400)": ("a" * args.chars, "a" * args.chars + "b"),
    }
    print(f"{args.chars:,}-character reply in 3-character chunks, one stop sequence\n")
    print("| case | before | after | ratio |")
    print("| --- | --- | --- | --- |")
    for name, (reply, stop) in cases.items():
        before, after = _seconds(old, reply, stop), _seconds(current, reply, stop)
        print(f"| {name} | {before:.2f} s | {after:.2f} s | {before / after:.1f}× |")


if __name__ == "__main__":
    main()
