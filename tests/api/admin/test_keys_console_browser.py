"""The keys and usage page in a real headless browser (Debian's chromium driven by Playwright) against the
REAL gateway and the simulator: the key table shows today's use against each limit as bars, a new key is
shown once, the charts draw requests, tokens, TTFT, account states and queue depth for each range, and
the page fits a phone in dark mode. Screenshots go to tests/artifacts/keys-console/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from console_support import CHROMIUM, save_shot
from gateway_support import API_KEY, Stack, running_stack
from test_console_browser import WAIT_MS

pytestmark = pytest.mark.slow

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

expect = playwright_sync.expect
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "keys-console"
ADMIN_KEY = "sk-admin-browser-keys-0123"
KEYS: list[dict[str, Any]] = [
    {"name": "test", "key": API_KEY},
    {"name": "alice", "key": "sk-alice-browser-00000", "tokens_per_day": 100000, "rpm": 60, "max_streams": 2,
     "models": ["deepseek-*"], "note": "Alice's agent"},
]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(accounts=2, keys=KEYS, admin_keys=[{"name": "ops", "key": ADMIN_KEY}],
                       pool={"queue_timeout": 10.0, "max_requests_per_hour": 100}) as s:
        s.gateway.timeline.sample({"ready": 2}, 0)  # the sampler's first tick may be seconds away
        alice = s.openai(api_key="sk-alice-browser-00000")
        for model in ("deepseek-chat", "deepseek-reasoner", "deepseek-chat"):
            alice.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello charts"}])
        s.openai().responses.create(model="deepseek-chat", input="another key")
        anthropic.Anthropic(base_url=s.base_url, api_key=API_KEY, max_retries=0).messages.create(
            model="deepseek-chat", max_tokens=128, messages=[{"role": "user", "content": "and claude"}])
        s.wait_idle()
        yield s


def shot(page: Any, name: str) -> None:
    save_shot(ARTIFACTS, page, name)


def _open(browser: Any, stack: Stack, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{stack.base_url}/admin")
    page.fill("#key", ADMIN_KEY)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#console")).to_be_visible(timeout=WAIT_MS)
    page.click("#keys-link")  # the console's link; the key stays in this tab's sessionStorage
    expect(page.locator("#page")).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
    return ctx, page, problems


def test_the_key_table_and_the_charts(stack: Stack, browser: Any) -> None:
    ctx, page, problems = _open(browser, stack, viewport={"width": 1280, "height": 900}, color_scheme="light")
    alice = page.locator('tr[data-key="alice"]')
    expect(alice).to_contain_text("Alice's agent")
    expect(alice).to_contain_text("deepseek-*")
    used = stack.gateway.usage.tokens_today("alice")
    assert used > 0
    expect(alice.locator("td.tokens")).to_contain_text(f"{used} / 100000")
    expect(alice.locator("td.rpm")).to_contain_text("3 / 60")
    width = alice.locator("td.tokens .bar > i").evaluate("node => node.style.width")
    assert width == f"{min(100.0, used / 100000 * 100):.1f}%"
    expect(page.locator('tr[data-key="test"] td.tokens')).to_contain_text("no limit")
    # each account's fair use: turns in the last hour against its limit, and when it is usable
    fair = page.locator("#fair-use-table tbody tr")
    expect(fair).to_have_count(2)
    turns = sum(int(row["requests_last_hour"]) for row in stack.gateway.pool.fair_use())  # type: ignore[union-attr]
    assert turns >= 5
    expect(fair.first.locator("td.per-hour")).to_contain_text("/ 100")
    expect(fair.first.locator("td.usable")).to_have_text("now")

    # every chart drew something: bars for requests and tokens, lines for TTFT and the queue
    for chart in ("c-req-key", "c-tok-key", "c-req-model", "c-tok-model", "c-states"):
        assert page.locator(f"#{chart} svg rect").count() > 0, chart
    expect(page.locator("#c-req-key .legend")).to_contain_text("alice")
    expect(page.locator("#c-req-model .legend")).to_contain_text("deepseek-reasoner")
    assert page.locator("#c-ttft svg circle").count() >= 3
    assert page.locator("#c-queue svg circle").count() >= 1
    shot(page, "1-keys-light")

    for span in ("day", "month"):
        page.click(f'[data-range="{span}"]')
        expect(page.locator(f'[data-range="{span}"]')).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#c-req-key svg rect").first).to_be_visible(timeout=WAIT_MS)
    shot(page, "2-month")

    # a new key: shown once, in the table at once, and it works
    page.click("#new-key summary")
    page.fill("#f-name", "bob")
    page.fill("#f-models", "deepseek-chat")
    page.fill("#f-rpm", "5")
    page.click("#key-form button[type=submit]")
    made = page.locator("#made-key")
    expect(made).to_have_text(re.compile(r"^sk-ds2-"), timeout=WAIT_MS)
    key = made.text_content() or ""
    expect(page.locator('tr[data-key="bob"]')).to_contain_text("0 / 5")
    assert stack.openai(api_key=key).chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": "from bob"}]).choices
    shot(page, "3-new-key")
    page.reload()
    expect(page.locator("#page")).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
    assert key not in page.content()  # never shown again
    page.locator('tr[data-key="bob"] button[data-action="disable"]').click()
    expect(page.locator('tr[data-key="bob"] .chip')).to_have_text("disabled", timeout=WAIT_MS)
    assert problems == []
    ctx.close()


def test_the_phone_layout_in_dark_mode(stack: Stack, browser: Any) -> None:
    ctx, page, problems = _open(browser, stack, viewport={"width": 390, "height": 844}, color_scheme="dark",
                                is_mobile=True, has_touch=True, device_scale_factor=2)
    expect(page.locator('tr[data-key="alice"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself never scrolls sideways
    box = page.locator("#c-req-key svg").bounding_box()
    assert box is not None and box["width"] <= 390 and box["width"] > 300  # one chart per row, full width
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 21, 27)"  # the dark palette
    shot(page, "4-phone-dark")
    assert problems == []
    ctx.close()
