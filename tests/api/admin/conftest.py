"""The console's browser fixture: one headless chromium per test (the browser test modules skip without it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console_support import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
