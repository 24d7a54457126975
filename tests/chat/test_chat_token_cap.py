"""`max_tokens` counting (chat/token_cap.py): whatever way an answer arrives in deltas, what goes out
is counted by `count_tokens` (the usage count) as at most the cap, and exactly the cap when the answer
is longer."""

from __future__ import annotations

import asyncio
import random

import pytest

from deepseek2api.chat.token_cap import TokenCap
from deepseek2api.chat.usage import (
    count_tokens,
    is_safe_cut,
    last_safe_cut,
    slices,
    truncate_tokens,
    warm_up,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again. " * 12,
    "你好世界，这是一个测试。我们在这里写一些中文句子，看看分词是否正确。" * 6,
    "def handler(request):\n    return {'status': 200, 'items': [1, 2, 3]}\n\n" * 8,
    "Mixed: price 12345.67 USD — café naïve résumé; 東京 and ひらがな カタカナ!\n  indented   spaces " * 5,
]


@pytest.fixture(scope="module", autouse=True)
def tokenizer() -> None:
    assert warm_up(), "the DeepSeek tokenizer must be installed for exact counts"


def _deltas(text: str, rng: random.Random) -> list[str]:
    out, at = [], 0
    while at < len(text):
        step = rng.choice((1, 1, 2, 3, 5, 8, 20))
        out.append(text[at:at + step])
        at += step
    return out


async def _let_out(cap: TokenCap, deltas: list[tuple[str, bool]]) -> tuple[str, str]:
    content, reasoning = [], []
    for text, is_reasoning in deltas:
        keep = await cap.admit(text, reasoning=is_reasoning)
        (reasoning if is_reasoning else content).append(text if keep is None else keep)
        if keep is not None:
            break
    return "".join(content), "".join(reasoning)


@pytest.mark.parametrize("text", TEXTS)
def test_text_let_out_never_exceeds_the_cap_and_meets_it_when_longer(text: str) -> None:
    rng = random.Random(len(text))
    total = count_tokens(text)
    for limit in (1, 2, 5, 17, total // 2, total - 1, total, total + 3):
        content, _ = asyncio.run(_let_out(TokenCap(limit), [(d, False) for d in _deltas(text, rng)]))
        assert text.startswith(content)
        assert count_tokens(content) == min(limit, total), (limit, total)


def test_reasoning_and_answer_share_one_cap() -> None:
    rng = random.Random(3)
    reasoning, answer = TEXTS[0], TEXTS[2]
    deltas = [(d, True) for d in _deltas(reasoning, rng)] + [(d, False) for d in _deltas(answer, rng)]
    r_tokens = count_tokens(reasoning)
    limit = r_tokens + 7
    content, thought = asyncio.run(_let_out(TokenCap(limit), deltas))
    assert thought == reasoning
    assert count_tokens(thought) + count_tokens(content) == limit


def test_safe_cuts_split_a_text_into_counts_that_add_up() -> None:
    text = "".join(TEXTS)
    rng = random.Random(9)
    total = count_tokens(text)
    for _ in range(200):
        at = last_safe_cut(text, 1, rng.randrange(2, len(text)))
        if at > 0:
            assert is_safe_cut(text, at)
            assert count_tokens(text[:at]) + count_tokens(text[at:]) == total, repr(text[at - 5:at + 5])


def test_long_texts_are_sliced_where_the_counts_still_add_up() -> None:
    text = (TEXTS[0] + TEXTS[3]) * 150
    pieces = slices(text, size=4096)
    assert "".join(pieces) == text and len(pieces) > 10
    assert sum(count_tokens(p) for p in pieces) == count_tokens(text)


def test_truncating_keeps_exactly_the_asked_number_of_tokens() -> None:
    for text in TEXTS:
        total = count_tokens(text)
        for limit in (0, 1, 4, total // 3, total, total + 1):
            prefix = truncate_tokens(text, limit)
            assert text.startswith(prefix)
            assert count_tokens(prefix) == min(limit, total)
