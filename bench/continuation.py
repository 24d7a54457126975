"""Conversations that continue upstream (`upstream.continue_sessions`): a scripted 30-turn agent session,
with and without.

The session is Claude-Code-sized: a ~12k-character system prompt, 20 tools with JSON Schemas, and a tool
loop of 30 calls whose results grow (1 000 + 150·n characters), streamed through the OpenAI surface of a
`cli serve` gateway in front of the simulator at DeepSeek's PoW difficulty (144000). The simulator is
scripted by `[sim:afterN=…]` directives in the first message: one call per turn, then a prose answer.

Per turn: upstream prompt bytes (the completion's `prompt` plus any history file uploaded for it), the
time to the first streamed byte, and per session: history uploads, sessions created, accounts touched (from
the gateway's access log). Both runs use the same script; only `upstream.continue_sessions` differs.

    python bench/continuation.py [--turns 30] [--accounts 3]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

import httpx

from harness import API_KEY, REAL_DIFFICULTY, Gateway, Simulator, machine_line, table

TOOL_NAMES = ("Read", "Write", "Edit", "Bash", "Glob", "Grep", "WebFetch", "WebSearch", "TodoWrite", "Task",
              "NotebookEdit", "ListDir", "Move", "Delete", "Diff", "Test", "Format", "Lint", "Search", "Plan")


def tool(name: str) -> dict[str, Any]:
    props = {f"{name.lower()}_{i}": {"type": "string", "description": f"Parameter {i} of {name}: " + "x" * 80}
             for i in range(4)}
    return {"type": "function", "function": {
        "name": name, "description": f"The {name} tool. " + "It does something useful for the agent. " * 12,
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}, **props}, "required": ["path"]}}}


def script(turns: int) -> str:
    steps = " ".join(f'[sim:after{n}=Read args={{"path": "file{n + 1}.py"}}]' for n in range(1, turns))
    return f'Refactor the project. [sim:tool=Read args={{"path": "file1.py"}}] {steps}'


def result(n: int) -> str:
    return f"# file{n}.py\n" + ("def f():\n    return 42  # a line of code\n" * ((1000 + 150 * n) // 40))


def run(continue_sessions: bool, turns: int, accounts: int, inline_limit: int) -> dict[str, Any]:
    with Simulator(accounts, difficulty=REAL_DIFFICULTY, tokens_per_second=0.0) as sim, \
            Gateway(sim, upstream={"continue_sessions": continue_sessions,
                                   "inline_prompt_limit": inline_limit}) as gateway:
        tools = [tool(name) for name in TOOL_NAMES]
        messages: list[dict[str, Any]] = [{"role": "system", "content": "You are an agent. " + "Rule. " * 2000},
                                          {"role": "user", "content": script(turns)}]
        rows: list[tuple[int, int, float]] = []
        before = sim.sim_stats()
        with httpx.Client(base_url=gateway.base_url, timeout=120,
                          headers={"authorization": f"Bearer {API_KEY}"}) as http:
            for n in range(1, turns + 1):
                uploaded = sim.sim_stats()["files"]["uploaded_bytes"]
                started, first = time.perf_counter(), None
                calls: dict[int, dict[str, Any]] = {}
                text: list[str] = []
                body = {"model": "deepseek-chat", "messages": messages, "tools": tools, "stream": True}
                with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if first is None and line.startswith("data: "):
                            first = time.perf_counter() - started
                        if not line.startswith("data: {"):
                            continue
                        choices = json.loads(line[6:])["choices"]
                        delta = choices[0]["delta"] if choices else {}
                        text.append(delta.get("content") or "")
                        for call in delta.get("tool_calls") or ():
                            entry = calls.setdefault(call["index"], {"id": call.get("id"), "name": "", "args": ""})
                            entry["name"] += call.get("function", {}).get("name") or ""
                            entry["args"] += call.get("function", {}).get("arguments") or ""
                prompt = httpx.get(f"{sim.base_url}/_sim/prompts", timeout=10).json()[-1]
                sent = len(prompt.encode()) + sim.sim_stats()["files"]["uploaded_bytes"] - uploaded
                rows.append((n, sent, first or 0.0))
                if not calls:
                    break
                messages.append({"role": "assistant", "content": "".join(text) or None, "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
                    for c in calls.values()]})
                for c in calls.values():
                    messages.append({"role": "tool", "tool_call_id": c["id"], "content": result(n)})
        after = sim.sim_stats()
        log = gateway.log_path.read_text(errors="replace")
        touched = set(re.findall(r"path=/v1/chat/completions account=(\S+)", log))
        return {"rows": rows, "uploads": after["files"]["uploads"] - before["files"]["uploads"],
                "sessions": after["sessions_created"] - before["sessions_created"], "accounts": len(touched)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--inline-limit", type=int, default=1_000_000,
                        help="upstream.inline_prompt_limit (tokens); the default keeps every turn inline: the "
                             "simulator does not read history files, so a re-sent turn past the gateway's "
                             "default 24000 would lose the script (each such turn costs an upload, its PoW and "
                             "its parse wait on DeepSeek, which a continued turn never needs)")
    args = parser.parse_args()
    print(machine_line())
    off = run(False, args.turns, args.accounts, args.inline_limit)
    on = run(True, args.turns, args.accounts, args.inline_limit)
    rows = []
    for (n, bytes_off, ttfb_off), (_, bytes_on, ttfb_on) in zip(off["rows"], on["rows"], strict=False):
        rows.append((n, f"{bytes_off:,}", f"{bytes_on:,}", f"{ttfb_off * 1000:.0f}", f"{ttfb_on * 1000:.0f}"))
    print(table(("turn", "bytes (re-send)", "bytes (continue)", "TTFB ms (re-send)", "TTFB ms (continue)"), rows))
    total_off = sum(r[1] for r in off["rows"])
    total_on = sum(r[1] for r in on["rows"])
    mean_off = sum(r[2] for r in off["rows"]) / max(1, len(off["rows"]))
    mean_on = sum(r[2] for r in on["rows"]) / max(1, len(on["rows"]))
    print(table(("", "re-send", "continue"), [
        ("turns", len(off["rows"]), len(on["rows"])),
        ("upstream bytes, all turns", f"{total_off:,}", f"{total_on:,}"),
        ("history uploads", off["uploads"], on["uploads"]),
        ("sessions created", off["sessions"], on["sessions"]),
        ("accounts touched", off["accounts"], on["accounts"]),
        ("mean TTFB ms", f"{mean_off * 1000:.0f}", f"{mean_on * 1000:.0f}"),
    ]))
    print(f"continue/re-send: bytes {total_on / max(1, total_off):.3f}, mean TTFB {mean_on / max(1e-9, mean_off):.2f}")


if __name__ == "__main__":
    main()
