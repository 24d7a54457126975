"""The console against the REAL gateway and the simulator: every admin action, its auth, runtime
accounts that survive a restart, proxies, the live tail, and no password or token in any answer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from deepseek2api.background import BackgroundServer
from deepseek2api.server import create_app
from gateway_support import API_KEY, Stack, running_stack

ADMIN_KEY = "sk-admin-console-0123456789"
ADMIN: dict[str, Any] = {"admin_keys": [{"name": "ops", "key": ADMIN_KEY}]}
NEW_USERS = [("new1@sim.test", "pw-new-Secret-1"), ("new2@sim.test", "pw-new-Secret-2")]


class Admin:
    """The admin API over HTTP; keeps every answer so the test can search them all for secrets."""

    def __init__(self, base_url: str, key: str = ADMIN_KEY) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {key}"}, timeout=60)
        self.answers: list[str] = []

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/admin/api{path}", **kwargs)
        self.answers.append(response.text)
        assert response.status_code == status, (path, response.status_code, response.text)
        return response.json()

    def account(self, account_id: str) -> dict[str, Any]:
        accounts = self.call("GET", "/accounts")["accounts"]
        return next(a for a in accounts if a["id"] == account_id)


def add_sim_users(stack: Stack, extra: list[tuple[str, str]]) -> None:
    users = [{"email": u.email, "password": u.password} for u in stack.sim_config.users]
    stack.sim_set(users=users + [{"email": e, "password": p} for e, p in extra])


def test_the_admin_api_needs_an_admin_key_when_admin_keys_are_set() -> None:
    with running_stack(accounts=1, **ADMIN) as stack:
        base = f"{stack.base_url}/admin/api/accounts"
        assert httpx.get(base, timeout=10).status_code == 401
        assert httpx.get(base, headers={"authorization": "Bearer wrong-key"}, timeout=10).status_code == 401
        client_key = httpx.get(base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
        assert client_key.status_code == 403 and client_key.json()["error"]["code"] == "admin_key_required"
        admin = Admin(stack.base_url)
        assert admin.call("GET", "/whoami") == {"key_name": "ops", "dedicated_admin_keys": True}
        # the admin key is not an API key for the chat surface
        chat = httpx.post(f"{stack.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {ADMIN_KEY}"},
                          json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert chat.status_code == 401
        page = httpx.get(f"{stack.base_url}/admin", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_without_admin_keys_any_api_key_opens_the_console() -> None:
    with running_stack(accounts=1) as stack:
        admin = Admin(stack.base_url, key=API_KEY)
        assert admin.call("GET", "/whoami") == {"key_name": "test", "dedicated_admin_keys": False}


def test_every_account_action_works_on_the_real_pool(tmp_path: Path) -> None:
    state: dict[str, Any] = {"state": {"backend": "sqlite", "path": str(tmp_path / "state.db")}}
    with running_stack(accounts=3, sim={"retry_after": 300}, **ADMIN, **state) as stack:
        admin = Admin(stack.base_url)
        add_sim_users(stack, NEW_USERS)
        accounts = admin.call("GET", "/accounts")["accounts"]
        assert [a["id"] for a in accounts] == ["user1@sim.test", "user2@sim.test", "user3@sim.test"]
        assert all(a["state"] == "ready" and a["source"] == "config" and a["token_obtained_at"] is None
                   for a in accounts)

        # test now: a login and a tiny turn on that account
        probe = admin.call("POST", "/accounts/user1@sim.test/test")
        assert probe["ok"] is True, probe
        user1 = admin.account("user1@sim.test")
        assert user1["last_success"] is not None and user1["token_obtained_at"] is not None
        logins = stack.sim_stats()["logins"]
        relogged = admin.call("POST", "/accounts/user1@sim.test/relogin")
        assert relogged["ok"] is True and stack.sim_stats()["logins"] == logins + 1

        # DeepSeek rate-limits user2: its test fails, it cools down with a deadline; clearing brings it back
        stack.sim_fault("user2@sim.test", "rate_limit")
        failed = admin.call("POST", "/accounts/user2@sim.test/test")
        assert failed["ok"] is False and failed["kind"] == "rate_limited"
        user2 = admin.account("user2@sim.test")
        assert user2["state"] == "cooling" and user2["until"] is not None and "rate limited" in user2["reason"]
        assert user2["last_error"].startswith("rate_limited: ")
        cleared = admin.call("POST", "/accounts/user2@sim.test/clear-cooldown")["account"]
        assert cleared["state"] == "ready" and cleared["until"] is None

        # disable: no request lands on user3 until it is enabled again
        assert admin.call("POST", "/accounts/user3@sim.test/disable")["account"]["state"] == "disabled"
        client = stack.openai()
        for _ in range(4):
            client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "hi"}])
        served = [e["account_id"] for e in admin.call("GET", "/requests")["requests"] if e["surface"] == "openai"]
        assert len(served) == 4 and "user3@sim.test" not in served
        assert admin.call("POST", "/accounts/user3@sim.test/enable")["account"]["state"] == "ready"

        # bulk import: a dry run judges each line, the import adds the good ones
        paste = "\n".join(f"{e}:{p}" for e, p in NEW_USERS) + "\nuser1@sim.test:whatever\nnot-a-login\n"
        dry = admin.call("POST", "/accounts/import", json={"text": paste, "dry_run": True})
        assert [line["status"] for line in dry["lines"]] == ["ok", "ok", "exists", "invalid"]
        assert len(admin.call("GET", "/accounts")["accounts"]) == 3
        done = admin.call("POST", "/accounts/import", json={"text": paste})
        assert [line["status"] for line in done["lines"]] == ["added", "added", "exists", "invalid"]
        new1 = admin.account("new1@sim.test")
        assert new1["source"] == "runtime" and new1["state"] == "ready"
        assert admin.call("POST", "/accounts/new1@sim.test/test")["ok"] is True  # it logs in upstream

        # the tester, pinned to an account, shows up in the live tail
        reply = admin.call("POST", "/tester", json={"model": "deepseek-chat", "prompt": "say hello",
                                                     "account_id": "new2@sim.test"})
        assert reply["ok"] is True and reply["account_id"] == "new2@sim.test" and reply["text"]
        assert reply["tokens_in"] and reply["tokens_out"]
        backlog = len(admin.call("GET", "/requests")["requests"])  # the tail sends these, then ends
        with admin.http.stream("GET", "/admin/api/requests/stream",
                               params={"backlog": backlog, "max_events": backlog}) as tail:
            lines = [line for line in tail.iter_lines() if line.startswith("data: ")]
        entries = [json.loads(line[6:]) for line in lines]
        assert {"surface": "tester", "account_id": "new2@sim.test", "status": 200} \
            .items() <= entries[-1].items()

        # remove: runtime accounts only, never a config one, 404 for nobody
        assert admin.call("DELETE", "/accounts/new2@sim.test") == {"removed": "new2@sim.test"}
        assert admin.call("DELETE", "/accounts/user1@sim.test", status=409)["error"]["code"] == "conflict"
        assert admin.call("DELETE", "/accounts/ghost@sim.test", status=404)["error"]["code"] == "not_found"
        assert admin.call("POST", "/accounts/ghost@sim.test/test", status=404)["error"]["code"] == "not_found"
        admin.call("POST", "/accounts/user3@sim.test/disable")

        tokens = [r.token for r in stack.gateway.pool.records() if r.token]
        assert tokens
        secrets = tokens + [p for _, p in NEW_USERS] + [u.password for u in stack.sim_config.users] + [ADMIN_KEY]
        for answer in admin.answers:
            for secret in secrets:
                assert secret not in answer

        # a second gateway on the same state file: the import and the disable are still there
        with BackgroundServer(create_app(stack.settings)) as again:
            after = {a["id"]: a for a in Admin(again.base_url).call("GET", "/accounts")["accounts"]}
        assert list(after) == ["user1@sim.test", "user2@sim.test", "user3@sim.test", "new1@sim.test"]
        assert after["new1@sim.test"]["source"] == "runtime" and after["user3@sim.test"]["state"] == "disabled"


def test_proxies_show_their_state_and_a_test_tells_a_working_exit_from_a_dead_one() -> None:
    proxies: dict[str, Any] = {"proxy_pool_enabled": True, "proxy_pool": ["", "http://user:proxy-Secret-9@127.0.0.1:9"]}
    with running_stack(accounts=1, metrics={"require_key": True}, **ADMIN, **proxies) as stack:
        admin = Admin(stack.base_url)
        listed = admin.call("GET", "/proxies")["proxies"]
        assert [(p["index"], p["proxy"], p["state"]) for p in listed] == [
            (0, "direct", "ok"), (1, "http://***@127.0.0.1:9", "ok")]
        assert admin.call("POST", "/proxies/0/test")["ok"] is True
        for _ in range(3):  # proxy_quarantine.failures (3) failed tests quarantine it
            dead = admin.call("POST", "/proxies/1/test")
            assert dead["ok"] is False and dead["kind"] == "network"
        quarantined = admin.call("GET", "/proxies")["proxies"][1]
        assert quarantined["state"] == "quarantined" and quarantined["failures"] == 3
        assert quarantined["quarantine_until"] > admin.call("GET", "/summary")["now"]
        assert admin.call("POST", "/proxies/7/test", status=404)["error"]["code"] == "not_found"
        assert all("proxy-Secret-9" not in answer for answer in admin.answers)
        # metrics.require_key: a scrape needs a key (any API or admin key)
        assert httpx.get(f"{stack.base_url}/metrics", timeout=10).status_code == 401
        scraped = httpx.get(f"{stack.base_url}/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
        assert scraped.status_code == 200 and "deepseek2api_proxy_failures_total" in scraped.text
        assert "proxy-Secret-9" not in scraped.text


@pytest.mark.parametrize("model", ["deepseek-chat"])
def test_the_summary_counts_what_the_pool_holds(model: str) -> None:
    with running_stack(accounts=2, **ADMIN) as stack:
        admin = Admin(stack.base_url)
        stack.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        stack.wait_idle()  # the answer goes out before the turn hands its lease back (it deletes the web session)
        summary = admin.call("GET", "/summary")
        assert (summary["mode"], summary["in_flight"], summary["capacity"], summary["queue_limit"]) == \
            ("single", 0, 2, 64)
        assert summary["accounts_by_state"] == {"ready": 2} and summary["requests"] == 1
        assert admin.call("GET", "/models")["models"][:2] == ["deepseek-chat", "deepseek-reasoner"]


def test_the_demo_prints_the_console_url_and_a_key_that_opens_it() -> None:
    from deepseek2api.background import free_port
    from deepseek2api.demo import build_demo_app

    port = free_port()
    app, _, banner = build_demo_app(port=port, accounts=1)
    line = next(line for line in banner.splitlines() if line.startswith("Console: "))
    url, key = re.match(r"Console: (\S+) \(key: (\S+)\)", line).groups()  # type: ignore[union-attr]
    with BackgroundServer(app, port=port):
        assert httpx.get(url, timeout=10).status_code == 200
        whoami = httpx.get(f"{url}/api/whoami", headers={"authorization": f"Bearer {key}"}, timeout=10)
        assert whoami.status_code == 200 and whoami.json()["key_name"] == "demo"
