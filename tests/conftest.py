"""Shared fixtures: where the reference material lives (tests/data, copied into the repo)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
DATA_DIR = TESTS_DIR / "data"

sys.path.insert(0, str(TESTS_DIR))  # test support modules (tests/*_support.py)
sys.path.insert(0, str(TESTS_DIR / "api" / "responses"))  # test_responses_api's wire checks, used by tests/agents/ too


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """`tests/data`: captures, PoW vectors and OpenAI's OpenAPI description (see its README)."""
    assert DATA_DIR.is_dir(), f"expected the test data folder at {DATA_DIR}"
    return DATA_DIR
