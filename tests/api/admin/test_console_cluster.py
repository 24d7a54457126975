"""The console in cluster mode: two real gateway processes sharing one pool through a test
`redis-server`, and the simulator. Each replica's admin API lists the shared accounts and every
replica with its heartbeat age; what one replica's console does (a test that rate-limits an account,
clearing the cool-down, disabling an account) the other replica sees and obeys; the shared pool
reports queue rejections, transitions and logins to /metrics like the in-process pool.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster_gateway_support import client, cluster_stack, stream
from cluster_support import REDIS_SERVER, RedisServer
from console_support import CHROMIUM, CHROMIUM_ARGS
from deepseek2api.pool.errors import PoolEditRefused, PoolExhausted, PoolUnavailable
from deepseek2api.pool.shared import SharedPool
from deepseek2api.settings import AccountSettings, Settings
from gateway_support import API_KEY, sim_users

pytestmark = [pytest.mark.slow, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")]

ADMIN_KEY = "sk-admin-cluster-0123456789"
FIRST, SECOND = "user1@sim.test", "user2@sim.test"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console-cluster"
WAIT_MS = 15_000


class Admin:
    """One replica's admin API; keeps every answer so the test can search them for secrets."""

    def __init__(self, base_url: str, key: str = ADMIN_KEY) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {key}"}, timeout=60)
        self.answers: list[str] = []

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/admin/api{path}", **kwargs)
        self.answers.append(response.text)
        assert response.status_code == status, (path, response.status_code, response.text)
        return response.json()

    def account(self, account_id: str) -> dict[str, Any]:
        return next(a for a in self.call("GET", "/accounts")["accounts"] if a["id"] == account_id)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def test_two_replicas_share_one_console_view_and_obey_each_others_actions(tmp_path: Path) -> None:
    with cluster_stack(tmp_path, replicas=2, accounts=2, admin_keys=[{"name": "ops", "key": ADMIN_KEY}],
                       pool={"cooldown_rate_limited": 90.0, "max_failover": 1},
                       sim={"retry_after": 90.0}) as stack:
        one, two = (Admin(r.base_url) for r in stack.replicas)

        # auth as in the single-process console: no key 401, an API key 403, the admin key opens it
        url = f"{one.base_url}/admin/api/accounts"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10).status_code == 403

        # both replicas list the shared accounts and both replicas, each with its heartbeat age
        for admin in (one, two):
            summary = admin.call("GET", "/summary")
            assert summary["mode"] == "cluster" and summary["capacity"] == 2
            cluster = summary["cluster"]
            assert cluster["name"] == "test" and cluster["available"] is True
            replicas = cluster["replicas"]
            assert len(replicas) == 2 and all(r["alive"] for r in replicas)
            assert all(isinstance(r["heartbeat_age"], float) and r["heartbeat_age"] >= 0 for r in replicas)
            assert [r["this"] for r in replicas].count(True) == 1
            assert [a["id"] for a in admin.call("GET", "/accounts")["accounts"]] == [FIRST, SECOND]
            assert admin.call("GET", "/cluster")["mode"] == "cluster"
        ids = {r["id"] for r in one.call("GET", "/cluster")["replicas"]}
        assert ids == {r["id"] for r in two.call("GET", "/cluster")["replicas"]}
        here = {next(r["id"] for r in a.call("GET", "/cluster")["replicas"] if r["this"]) for a in (one, two)}
        assert here == ids  # each replica knows which one it is

        # "test now" on replica one meets a rate limit: replica two's console shows the cool-down
        stack.sim_fault(FIRST, "rate_limit")
        probe = one.call("POST", f"/accounts/{FIRST}/test")
        assert probe["ok"] is False
        cooling = two.account(FIRST)
        assert cooling["state"] == "cooling" and cooling["until"] is not None and cooling["reason"]
        assert one.metric("deepseek2api_account_transitions_total", from_state="ready", to_state="cooling") == 1

        # clearing it on replica two frees it for replica one at once
        assert two.call("POST", f"/accounts/{FIRST}/clear-cooldown")["account"]["state"] == "ready"
        assert one.account(FIRST)["state"] == "ready"
        reply = one.call("POST", "/tester", json={"model": "deepseek-chat", "prompt": "hi", "account_id": FIRST})
        assert reply["ok"] is True and reply["account_id"] == FIRST

        # disabled through replica one's console: replica two keeps off that account
        assert one.call("POST", f"/accounts/{FIRST}/disable")["account"]["state"] == "disabled"
        for _ in range(3):
            served = two.call("POST", "/tester", json={"model": "deepseek-chat", "prompt": "hi"})
            assert served["ok"] is True and served["account_id"] == SECOND
        pinned = two.call("POST", "/tester", json={"model": "deepseek-chat", "prompt": "hi", "account_id": FIRST})
        assert pinned["ok"] is False and pinned["error"].startswith("pool_none_usable")

        # with both disabled, a client's request on replica two is turned away and /metrics counts it
        two.call("POST", f"/accounts/{SECOND}/disable")
        assert two.metric("deepseek2api_queue_rejections_total", reason="none_usable") == 0

        async def one_request() -> int:
            async with client() as http:
                return (await stream(http, two.base_url, "refused")).status

        assert asyncio.run(one_request()) == 429
        assert two.metric("deepseek2api_queue_rejections_total", reason="none_usable") == 1
        assert two.metric("deepseek2api_accounts", state="disabled") == 2
        assert one.metric("deepseek2api_logins_total", result="ok") + \
            two.metric("deepseek2api_logins_total", result="ok") >= 1
        for admin in (one, two):
            admin.call("POST", f"/accounts/{FIRST}/enable")
            admin.call("POST", f"/accounts/{SECOND}/enable")
        assert [a["state"] for a in one.call("GET", "/accounts")["accounts"]] == ["ready", "ready"]

        # a re-login replaces the shared token for every replica (one login)
        logins = stack.sim_stats()["logins"]
        relogin = two.call("POST", f"/accounts/{SECOND}/relogin")
        assert relogin["ok"] is True and stack.sim_stats()["logins"] == logins + 1
        assert one.account(SECOND)["has_token"] is True

        # runtime account edits need one shared list of credentials: refused with a clear answer
        refused = one.call("POST", "/accounts/import", 409, json={"text": "new@sim.test:pw-new-Secret-9"})
        assert "cluster mode" in refused["error"]["message"]
        assert one.call("DELETE", f"/accounts/{FIRST}", 409)["error"]["code"] == "conflict"

        for answer in one.answers + two.answers:  # no password or token ever leaves the gateway
            for user in sim_users(2):
                assert user.password not in answer
            assert "pw-new-Secret-9" not in answer

        if shutil.which(CHROMIUM) or Path(CHROMIUM).is_file():
            screenshot_cluster_panel(one.base_url)


def test_the_cluster_console_shows_the_last_success_and_agrees_with_admin_status_on_the_proxy(
        tmp_path: Path) -> None:
    with cluster_stack(tmp_path, replicas=1, accounts=1, admin_keys=[{"name": "ops", "key": ADMIN_KEY}]) as stack:
        admin = Admin(stack.replicas[0].base_url)
        answer = httpx.post(f"{admin.base_url}/v1/chat/completions", timeout=60,
                            headers={"authorization": f"Bearer {API_KEY}"},
                            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 200
        account: dict[str, Any] = {}
        for _ in range(100):  # the console reads the shared state from a snapshot refreshed every second
            account = admin.account(FIRST)
            if account.get("last_success"):
                break
            time.sleep(0.1)
        assert account.get("last_success"), account
        status = admin.http.get("/admin/status").json()
        row = next(a for a in status["accounts"] if a["id"] == FIRST)
        assert row["proxy"] == account["proxy"] == "direct"
        assert row["last_success"] == pytest.approx(account["last_success"])


def screenshot_cluster_panel(base_url: str) -> None:
    """The "Cluster" panel in a real browser: both replicas listed, this one marked (artifact only)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base_url}/admin")
            page.fill("#key", ADMIN_KEY)
            page.click("#login-form button")
            expect = playwright_sync.expect
            expect(page.locator("#s-mode")).to_have_text("cluster", timeout=WAIT_MS)
            expect(page.locator("#cluster-table tbody tr")).to_have_count(2, timeout=WAIT_MS)
            expect(page.locator("#cluster-table tbody tr.this")).to_have_count(1, timeout=WAIT_MS)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "cluster-panel.png"), full_page=True)
        finally:
            browser.close()


class Counts:
    """A `PoolObserver` that keeps what the shared pool told it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.rejections: list[str] = []
        self.transitions: list[tuple[str, str]] = []
        self.logins: list[str] = []

    def queue_waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    def queue_rejected(self, reason: str) -> None:
        self.rejections.append(reason)

    def account_transition(self, from_state: str, to_state: str) -> None:
        self.transitions.append((from_state, to_state))

    def login(self, result: str) -> None:
        self.logins.append(result)


def test_the_shared_pool_takes_the_same_lease_keywords_as_the_in_process_pool() -> None:
    server = RedisServer()
    server.start()
    try:
        asyncio.run(lease_keywords(server.url))
    finally:
        server.cleanup()


async def lease_keywords(url: str) -> None:
    settings = Settings.model_validate({
        "keys": ["k"], "state": {"backend": "memory"}, "pool": {"queue_timeout": 0.5},
        "accounts": [{"name": f"acc{i}", "email": f"acc{i}@x.test", "token": f"tok-{i}"} for i in (1, 2, 3)],
        "cluster": {"redis_url": url, "name": "keywords", "lease_ttl": 1.5, "grace": 0.0}})

    async def no_login(account: AccountSettings, proxy: str | None) -> str:
        raise AssertionError("token accounts never log in")

    counts = Counts()
    pool = SharedPool(settings, no_login, observer=counts)
    await pool.start()
    try:
        for _ in range(100):  # a new namespace opens a recovery window (lease_ttl + grace) first
            try:
                async with pool.lease():
                    break
            except PoolUnavailable:
                await asyncio.sleep(0.1)
        for _ in range(3):  # the least recently used account would change every time; the preferred one stays
            async with pool.lease(prefer="acc2") as again:
                assert again.account_id == "acc2"
        counts.waits.clear()
        async with pool.lease(prefer="acc2") as first:
            assert first.account_id == "acc2"
            async with pool.lease(prefer="acc2") as second:  # busy: another account at once, no wait
                assert second.account_id != "acc2"
                with pytest.raises(PoolExhausted):  # pinned: waits for that account only, then gives up
                    async with pool.lease(only="acc2"):
                        pass
                rest = ({"acc1", "acc3"} - {second.account_id}).pop()
                async with pool.lease(only=rest) as third:
                    assert third.account_id == rest
                    with pytest.raises(PoolExhausted) as refused:
                        async with pool.lease():
                            pass
                    assert refused.value.reason.value == "all_busy"
        with pytest.raises(PoolEditRefused):
            pool.lease(only="nobody")
        # the observer saw what the in-process pool reports: a wait per lease, the one rejection of a
        # normal request (a pinned probe that gives up is not a rejection)
        assert len(counts.waits) == 3 and counts.rejections == ["all_busy"]
    finally:
        await pool.close()
