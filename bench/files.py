"""History as a file: what the file route adds to a long turn's time to first byte, and its CPU.

One 150k-character agent conversation, sent two ways straight to the simulator (PoW difficulty
144000, the same DeepSeekClient the gateway uses):
- inline: one completion with the whole flattened prompt (the simulator has no input limit here);
- file route: `plan_prompt` (the real tokenizer) → upload the history file (its own PoW) → poll
  `fetch_files` until parsed (default backoff; the simulator parses after 2 polls) → completion
  with `ref_file_ids` and the short prompt.
Time to first content byte per turn (login and connections made beforehand), and CPU of this process
(client + planner + PoW solves) and of the simulator per turn. Real DeepSeek parses files more slowly
than the simulator, so the file row is a floor for the polling part.

    python bench/files.py [--turns 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from deepseek2api.chat.attachments import prepare_attachments
from deepseek2api.chat.history_file import PromptParts, plan_prompt
from deepseek2api.chat.prompt import USER, build_prompt
from deepseek2api.chat.turn import Message
from deepseek2api.chat.usage import warm_up
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.events import ContentDelta
from deepseek2api.deepseek.profile import ClientProfile
from harness import (
    REAL_DIFFICULTY,
    CpuMeter,
    ProcessStats,
    Simulator,
    machine_line,
    ms,
    percentile,
    table,
)


def conversation() -> PromptParts:
    messages = [Message("system", "You are a coding agent. Use the tools. " * 100)]
    for i in range(120):
        messages.append(Message("user", f"step {i}: " + "read src/module.py and explain it. " * 30))
        messages.append(Message("assistant", f"done {i} " + "the module defines a parser and a writer. " * 15))
    system = build_prompt(messages[:1])
    return PromptParts(system=system, history=build_prompt(messages)[len(system):],
                       live=f"{USER}Summarise what we found so far.")


async def first_byte(client: DeepSeekClient, token: str, prompt: str, ref_file_ids: list[str]) -> None:
    session_id, header = await client.prepare_completion(token)
    async for event in client.completion(token, session_id=session_id, prompt=prompt, pow_header=header,
                                         thinking=False, search=False, ref_file_ids=ref_file_ids):
        if isinstance(event, ContentDelta) and event.text:
            break
    await client.delete_session(token, session_id=session_id)


async def inline_turn(client: DeepSeekClient, token: str, parts: PromptParts) -> float:
    started = time.perf_counter()
    await first_byte(client, token, parts.inline, [])
    return time.perf_counter() - started


async def file_turn(client: DeepSeekClient, token: str, parts: PromptParts) -> float:
    started = time.perf_counter()
    plan = await asyncio.to_thread(plan_prompt, parts)
    ids = await prepare_attachments(client, token, None, [f.attachment(max_bytes=8 << 20) for f in plan.files])
    await first_byte(client, token, plan.prompt, ids)
    return time.perf_counter() - started


async def main(turns: int) -> None:
    warm_up()
    parts = conversation()
    with Simulator(1, difficulty=REAL_DIFFICULTY) as sim:
        email, password = sim.accounts[0]
        client = DeepSeekClient(ClientProfile(base_url=sim.base_url))
        try:
            token = await client.login(email=email, password=password, device_id="bench")
            rows = []
            for name, turn in (("inline", inline_turn), ("file route", file_turn)):
                await turn(client, token, parts)  # warm-up
                me, simulator = CpuMeter(ProcessStats(os.getpid())).start(), CpuMeter(sim.stats).start()
                samples = [await turn(client, token, parts) for _ in range(turns)]
                me.stop(), simulator.stop()
                rows.append([name, ms(percentile(samples, 50)), ms(max(samples)), ms(me.cpu / turns),
                             ms(simulator.cpu / turns)])
        finally:
            await client.aclose()
    print(f"{len(parts.inline)} characters, {turns} turns each; {machine_line()}\n")
    print(table(["route", "first byte p50", "max", "client CPU/turn", "simulator CPU/turn"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=10)
    asyncio.run(main(parser.parse_args().turns))
