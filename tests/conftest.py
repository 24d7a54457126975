"""Shared fixtures: where the reference material lives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
SHARED_DIR = REPO_DIR.parent / "shared"

sys.path.insert(0, str(TESTS_DIR))  # test support modules (tests/*_support.py)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the repository (as in CI)."""
    assert SHARED_DIR.is_dir(), f"expected the shared reference folder at {SHARED_DIR}"
    return SHARED_DIR
