"""Shared fixtures: where the reference material lives (tests/data, copied into the repo), a running gateway."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
DATA_DIR = TESTS_DIR / "data"

if TYPE_CHECKING:
    from gateway_support import Stack

sys.path.insert(0, str(TESTS_DIR))  # test support modules (tests/*_support.py)
sys.path.insert(0, str(TESTS_DIR / "api" / "responses"))  # test_responses_api's wire checks, used by tests/agents/ too


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """`tests/data`: captures, PoW vectors and OpenAI's OpenAPI description (see its README)."""
    assert DATA_DIR.is_dir(), f"expected the test data folder at {DATA_DIR}"
    return DATA_DIR


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Simulator + gateway for a module that needs nothing special; `STACK_ACCOUNTS = n` in it asks for n accounts.

    A module that configures the gateway (keys, limits, simulator options) defines its own `stack`.
    """
    from gateway_support import running_stack  # here: tests/ is on sys.path once this module ran

    with running_stack(accounts=getattr(request.module, "STACK_ACCOUNTS", 2)) as running:
        yield running
