"""The console in a real headless browser (Debian's chromium driven by Playwright) against the REAL
gateway and the simulator: log in, see the accounts, the simulator rate-limits one account and its
chip turns to "cooling" with a countdown, "Clear cool-down" brings it back, two accounts are
bulk-imported, and a client's request appears in the live tail. Screenshots go to
tests/artifacts/console-gateway/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console_support import CHROMIUM, save_shot
from gateway_support import Stack, running_stack
from test_console_browser import WAIT_MS

pytestmark = pytest.mark.slow

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

expect = playwright_sync.expect
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console-gateway"
ADMIN_KEY = "sk-admin-browser-0123456789"
IMPORTED = [("imported1@sim.test", "pw-imported-Secret-1"), ("imported2@sim.test", "pw-imported-Secret-2")]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack(accounts=3, sim={"retry_after": 95}, admin_keys=[{"name": "ops", "key": ADMIN_KEY}]) as s:
        users = [{"email": u.email, "password": u.password} for u in s.sim_config.users]
        s.sim_set(users=users + [{"email": e, "password": p} for e, p in IMPORTED])
        yield s


def shot(page: Any, name: str) -> None:
    save_shot(ARTIFACTS, page, name)


def test_an_operator_runs_the_real_gateway_from_the_console(stack: Stack, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{stack.base_url}/admin")
    page.fill("#key", ADMIN_KEY)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#console")).to_be_visible(timeout=WAIT_MS)
    rows = page.locator("#accounts-table tbody tr")
    expect(rows).to_have_count(3, timeout=WAIT_MS)
    for user in ("user1", "user2", "user3"):
        expect(page.locator(f'tr[data-account="{user}@sim.test"] .chip')).to_have_text("ready")
    expect(page.locator("#s-mode")).to_have_text("single")
    shot(page, "1-accounts")

    # the simulator rate-limits user2; "Test" runs a turn pinned to it: the chip turns to cooling with a countdown
    stack.sim_fault("user2@sim.test", "rate_limit")
    page.locator('tr[data-account="user2@sim.test"] button[data-action="test"]').click()
    chip = page.locator('tr[data-account="user2@sim.test"] .chip')
    expect(chip).to_have_text(re.compile(r"^cooling 1:3\d$"), timeout=WAIT_MS)
    first = chip.text_content()
    expect(chip).not_to_have_text(first or "", timeout=WAIT_MS)  # the countdown ticks
    expect(page.locator('tr[data-account="user2@sim.test"]')).to_contain_text("rate limited")
    assert stack.gateway.pool.record("user2@sim.test").status == "cooling"
    shot(page, "2-cooling")

    page.locator('tr[data-account="user2@sim.test"] button[data-action="clear-cooldown"]').click()
    expect(chip).to_have_text("ready", timeout=WAIT_MS)
    assert stack.gateway.pool.record("user2@sim.test").status == "ready"

    # bulk import: a dry run, then the import; the new accounts log in upstream when tested
    page.fill("#import-text", "\n".join(f"{e}:{p}" for e, p in IMPORTED) + "\n")
    page.click("#import-dry")
    expect(page.locator("#import-result tbody .chip")).to_have_text(["ok", "ok"], timeout=WAIT_MS)
    page.click("#import-go")
    expect(page.locator("#import-result tbody .chip")).to_have_text(["added", "added"], timeout=WAIT_MS)
    expect(rows).to_have_count(5, timeout=WAIT_MS)
    expect(page.locator('tr[data-account="imported1@sim.test"]')).to_contain_text("(added)")
    assert [r.id for r in stack.gateway.pool.records()][-2:] == [e for e, _ in IMPORTED]
    shot(page, "3-imported")

    # a client's request through the gateway appears in the live tail
    expect(page.locator("#tail-state")).to_have_text("live", timeout=WAIT_MS)
    reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "hello console"}])
    account = stack.gateway.requests.recent(1)[0].account_id
    row = page.locator('#tail-table tbody tr', has_text="openai")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row).to_contain_text(account or "")
    assert reply.usage is not None
    expect(row).to_contain_text(f"{reply.usage.prompt_tokens} / {reply.usage.completion_tokens}")
    shot(page, "4-traffic")

    html = page.content()
    tokens = [r.token for r in stack.gateway.pool.records() if r.token]
    for secret in tokens + [p for _, p in IMPORTED] + [u.password for u in stack.sim_config.users]:
        assert secret not in html
    assert page.evaluate("document.cookie") == ""
    assert problems == []
    context.close()
