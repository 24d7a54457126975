"""Counting a huge prompt leaves the event loop running, under uvloop like the server."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from deepseek2api.chat import usage

PROSE = "Slow start doubles the congestion window each round trip; def grow(w): return w * 2\n"


async def _ticks_while_counting(text: str) -> tuple[int, int]:
    """Count `text` in a worker thread; return (tokens, probe ticks seen while the count ran)."""
    ticks = 0
    counting = True

    async def probe() -> None:
        nonlocal ticks
        while counting:
            await asyncio.sleep(0.001)
            if counting:
                ticks += 1

    ticker = asyncio.create_task(probe())
    await asyncio.sleep(0)  # the probe is scheduled before the count starts
    tokens = await asyncio.to_thread(usage.count_tokens, text)
    counting = False
    await ticker
    return tokens, ticks


def test_the_event_loop_keeps_running_while_a_huge_prompt_is_counted() -> None:
    assert usage.warm_up()
    text = (PROSE * (3_000_000 // len(PROSE) + 1))[:3_000_000]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        tokens, ticks = runner.run(_ticks_while_counting(text))
    assert tokens > 500_000
    # A count that held the GIL throughout let the probe run at most a handful of times.
    assert ticks >= 50


def test_slices_cover_the_text_in_order_and_cut_before_spaces() -> None:
    text = ("word " * 40_000) + ("x" * 150_000)
    pieces = usage.slices(text, size=1000)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= 1000 for p in pieces)
    spaced = [p for p in pieces if "word" in p][1:]
    assert spaced and all(p.startswith(" ") for p in spaced)


def test_a_short_text_is_one_piece_and_counted_exactly() -> None:
    text = PROSE * 10
    assert usage.slices(text) == [text]
    tokenizer = usage._load()
    assert usage.count_tokens(text) == len(tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize("repeat", [2_000, 20_000])
def test_a_sliced_count_stays_within_a_token_per_boundary_of_the_whole_count(repeat: int) -> None:
    text = PROSE * repeat
    tokenizer = usage._load()
    whole = len(tokenizer.encode(text, add_special_tokens=False).ids)
    boundaries = len(usage.slices(text)) - 1
    assert abs(usage.count_tokens(text) - whole) <= boundaries
