"""Large inputs are worked on off the event loop, or in pieces that let it run.

The loop lag itself is measured in bench/gateway_lag.py (no timing assertions here): these tests pin
that the work moved (a worker thread, yields between pieces) and that the faster code gives the same
bytes as the code it replaced."""

from __future__ import annotations

import asyncio
import re
import threading
from urllib.parse import unquote_to_bytes

from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek2api.chat import prompt as prompt_module
from deepseek2api.chat.attachments import OFF_LOOP_CHARS, percent_decode
from deepseek2api.chat.prompt import build_prompt_async
from deepseek2api.chat.turn import BUILTIN_MODELS, Message, Turn
from deepseek2api.pacing import LoopPacer

_OLD_IMAGE = re.compile(r"!\[([^\[\]\n]{0,1000})\]\(([^()\n]{0,4000})\)")
_OLD_MARKUP = re.compile(r"<(?=\||/?think>|/?dsml:)")


def _old_clean(text: str) -> str:
    text = _OLD_IMAGE.sub(r"[\1](\2)", text) if "![" in text else text
    text = text.replace("\uff5c", "|")
    return _OLD_MARKUP.sub("<\u200b", text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="![]()<|/thinkdsml:>\n a｜", max_size=60))
def test_the_clean_up_gives_what_the_single_regex_calls_gave(text: str) -> None:
    assert prompt_module._clean(text) == _old_clean(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="%0123456789abcdefABCDEFgz é", max_size=40))
def test_percent_decoding_matches_the_standard_library(text: str) -> None:
    assert percent_decode(text) == unquote_to_bytes(text)


def test_a_large_prompt_is_built_in_a_worker_thread_and_a_small_one_inline(monkeypatch) -> None:
    threads: list[int] = []
    real = prompt_module.build_prompt

    def spy(turn: Turn) -> str:
        threads.append(threading.get_ident())
        return real(turn)

    monkeypatch.setattr(prompt_module, "build_prompt", spy)

    def turn(text: str) -> Turn:
        return Turn(request_id="r", model=BUILTIN_MODELS[0], model_name="deepseek-chat",
                    messages=(Message("user", text),))

    async def run() -> tuple[str, str, int]:
        small = await build_prompt_async(turn("![a](b) hi"))
        large = await build_prompt_async(turn("![a](b)" * (prompt_module.OFF_LOOP_CHARS // 7 + 10)))
        return small, large, threading.get_ident()

    small, large, loop_thread = asyncio.run(run())
    assert small == "[a](b) hi" and large.startswith("[a](b)[a](b)") and "![" not in large
    assert threads[0] == loop_thread and threads[1] != loop_thread


def test_the_pacer_yields_once_its_budget_is_spent() -> None:
    async def run() -> int:
        ticks = 0

        async def other() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        pacer = LoopPacer(budget=0.0)  # every tick yields
        for _ in range(5):
            await pacer.tick()
        task.cancel()
        return ticks

    assert asyncio.run(run()) >= 4
    assert OFF_LOOP_CHARS > 0
