"""The console in a real headless browser (Debian's chromium driven by Playwright) against a fake pool.

The page is served by uvicorn on a loopback port. The test logs in, watches an account turn to
"cooling" with a live countdown, clears the cool-down, bulk-imports two accounts, sees requests arrive
in the live tail, and checks the page fits a phone screen in dark mode. Screenshots go to
tests/artifacts/console/ (git-ignored); the path is printed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from console_support import ADMIN_KEY, CHROMIUM, FakeBackend, console_app, save_shot
from deepseek2api.api.admin import RequestEntry, RequestLog

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
WAIT_MS = 15_000

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

expect = playwright_sync.expect
T = TypeVar("T")


class LiveConsole:
    """uvicorn serving the console app on its own event loop in a thread; `call()` runs code on that loop."""

    def __init__(self) -> None:
        self.requests = RequestLog()
        self.backend = FakeBackend.with_accounts(self.requests)
        self.loop = asyncio.new_event_loop()
        config = uvicorn.Config(console_app(self.backend, self.requests), host="127.0.0.1", port=0,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    def start(self) -> str:
        self.thread.start()
        for _ in range(1000):  # bounded wait for the socket
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (the pool and the request log live there) and return its result."""
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
                result.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return result.result(timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live() -> Iterator[tuple[LiveConsole, str]]:
    console = LiveConsole()
    url = console.start()
    try:
        yield console, url
    finally:
        console.stop()


def shot(page: Any, name: str) -> None:
    save_shot(ARTIFACTS, page, name)


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/admin")
    page.fill("#key", ADMIN_KEY)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#console")).to_be_visible(timeout=WAIT_MS)


def test_an_operator_watches_and_fixes_the_pool_in_a_real_browser(live: tuple[LiveConsole, str], browser: Any) -> None:
    console, url = live
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    # a wrong key is refused, and the console stays closed
    page.goto(f"{url}/admin")
    page.fill("#key", "not-the-key")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Invalid API key", timeout=WAIT_MS)
    expect(page.locator("#console")).to_be_hidden()
    problems.clear()  # the refused fetch logs a 401 in the console; that one is expected

    # log in: the accounts table and the header strip fill in
    log_in(page, url)
    rows = page.locator("#accounts-table tbody tr")
    expect(rows).to_have_count(3, timeout=WAIT_MS)
    expect(page.locator('tr[data-account="alpha@example.com"] .chip')).to_have_text("ready")
    expect(page.locator('tr[data-account="gamma"] .chip')).to_have_text("banned")
    expect(page.locator("#s-mode")).to_have_text("single")
    expect(page.locator("#s-key")).to_have_text("ops")
    shot(page, "1-accounts")

    # DeepSeek rate-limits beta: its chip turns to "cooling" with a countdown that ticks
    console.call(lambda: console.backend.cool("beta@example.com", 95))
    chip = page.locator('tr[data-account="beta@example.com"] .chip')
    expect(chip).to_have_text(re.compile(r"^cooling 1:3\d$"), timeout=WAIT_MS)
    first = chip.text_content()
    expect(chip).not_to_have_text(first or "", timeout=WAIT_MS)  # the countdown moves on its own
    expect(page.locator('tr[data-account="beta@example.com"]')).to_contain_text("rate limited")
    shot(page, "2-cooling")

    # "Clear cool-down" brings it back
    page.locator('tr[data-account="beta@example.com"] button[data-action="clear-cooldown"]').click()
    expect(chip).to_have_text("ready", timeout=WAIT_MS)
    assert console.call(lambda: console.backend.accounts_by_id["beta@example.com"].state) == "ready"
    expect(page.locator('tr[data-account="beta@example.com"] button[data-action="clear-cooldown"]')).to_have_count(0)

    # bulk import: a dry run judges the lines, the import adds both accounts
    page.fill("#import-text", "delta@example.com:pw-delta-1\n+8613900000002:pw-mobile-2\n")
    page.click("#import-dry")
    expect(page.locator("#import-result tbody .chip")).to_have_text(["ok", "ok"], timeout=WAIT_MS)
    assert "delta@example.com" not in console.call(lambda: list(console.backend.accounts_by_id))
    page.click("#import-go")
    expect(page.locator("#import-result tbody .chip")).to_have_text(["added", "added"], timeout=WAIT_MS)
    expect(rows).to_have_count(5, timeout=WAIT_MS)
    expect(page.locator('tr[data-account="+8613900000002"]')).to_contain_text("(added)")
    expect(page.locator("#import-text")).to_have_value("")  # the pasted passwords do not linger
    shot(page, "3-imported")

    # the live tail: a request finishing in the gateway appears, and so does the tester's
    tail = page.locator("#tail-table tbody tr")
    expect(page.locator("#tail-state")).to_have_text("live", timeout=WAIT_MS)
    console.call(lambda: console.requests.record(RequestEntry(
        time=console.backend.clock(), surface="openai", model="deepseek-chat", status=200, stream=True,
        duration=2.5, ttft=0.31, tokens_in=42, tokens_out=128, account_id="alpha@example.com",
        request_id="req_from_client")))
    row = page.locator('#tail-table tr[data-request="req_from_client"]')
    expect(row).to_contain_text("openai (stream)", timeout=WAIT_MS)
    expect(row).to_contain_text("0.31s")
    expect(row).to_contain_text("42 / 128")
    expect(row).to_contain_text("alpha@example.com")

    page.select_option("#tester-account", "delta@example.com")
    page.fill("#tester-prompt", "say hello")
    page.click("#tester-send")
    expect(page.locator("#tester-reply")).to_contain_text("Hello", timeout=WAIT_MS)
    expect(page.locator('#tail-table tr[data-request="req_tester_1"]')).to_contain_text("delta@example.com",
                                                                                        timeout=WAIT_MS)
    expect(tail).to_have_count(2)
    expect(page.locator("#s-rps")).not_to_have_text("0.00", timeout=WAIT_MS)
    shot(page, "4-traffic")

    # nothing the page received holds a password or token
    html = page.content()
    for secret in ("pw-alpha-Secret1", "tok-alpha-8f1e2d", "pw-delta-1", "proxy-Secret9"):
        assert secret not in html
    assert page.evaluate("document.cookie") == ""
    assert problems == []
    context.close()


def test_the_console_fits_a_phone_screen_in_dark_mode(live: tuple[LiveConsole, str], browser: Any) -> None:
    console, url = live
    console.call(lambda: console.backend.cool("beta@example.com", 300))
    context = browser.new_context(viewport={"width": 375, "height": 812}, color_scheme="dark",
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, url)
    expect(page.locator("#accounts-table tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(page.locator('tr[data-account="beta@example.com"] .chip')).to_have_text(re.compile(r"^cooling \d:\d\d$"))
    # the page itself never scrolls sideways (wide tables scroll inside their card)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 21, 27)"  # the dark palette
    shot(page, "5-phone-dark")
    context.close()
