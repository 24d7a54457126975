"""The admin API against a fake pool: every action, its auth, its audit line, and no secret in any answer."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from console_support import (
    ADMIN_KEY,
    CLIENT_KEY,
    SECRET_PASSWORDS,
    SECRET_TOKENS,
    FakeBackend,
    console_app,
)
from deepseek2api.api.admin import RequestEntry, RequestLog

SECRETS = (*SECRET_PASSWORDS, *SECRET_TOKENS, ADMIN_KEY, CLIENT_KEY, "proxy-Secret9", "tok-fresh-Secret",
           "new-pw-Secret-A", "new-pw-Secret-B", "json-pw-Secret")
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
NOW = 1_800_000_000.0

# (method, path, json body) of every admin API route
ROUTES = [
    ("GET", "/admin/api/whoami", None),
    ("GET", "/admin/api/summary", None),
    ("GET", "/admin/api/accounts", None),
    ("POST", "/admin/api/accounts/import", {"text": "x@example.com:pw", "dry_run": True}),
    ("GET", "/admin/api/proxies", None),
    ("POST", "/admin/api/proxies/0/test", None),
    ("GET", "/admin/api/models", None),
    ("GET", "/admin/api/requests", None),
    ("GET", "/admin/api/requests/stream?max_events=1", None),
    ("POST", "/admin/api/tester", {"model": "deepseek-chat", "prompt": "hi"}),
    ("POST", "/admin/api/accounts/alpha@example.com/test", None),
    ("POST", "/admin/api/accounts/alpha@example.com/relogin", None),
    ("POST", "/admin/api/accounts/alpha@example.com/clear-cooldown", None),
    ("POST", "/admin/api/accounts/alpha@example.com/disable", None),
    ("POST", "/admin/api/accounts/alpha@example.com/enable", None),
    ("DELETE", "/admin/api/accounts/alpha@example.com", None),
    ("POST", "/admin/api/accounts/alpha@example.com/token", {"token": "pasted-token-0123456789abcdef"}),
    ("POST", "/admin/api/accounts/alpha@example.com/probe", None),
    ("GET", "/admin/api/upstream", None),
    ("PUT", "/admin/api/upstream/identity", {"persona": "android"}),
    ("DELETE", "/admin/api/upstream/identity", None),
]


class Recorder:
    """Every response body the tests saw, to check for leaked secrets at the end."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.bodies.append(response.text + json.dumps(dict(response.headers)))


@pytest.fixture
def requests_log() -> RequestLog:
    return RequestLog(clock=lambda: NOW)


@pytest.fixture
def backend(requests_log: RequestLog) -> FakeBackend:
    return FakeBackend.with_accounts(requests_log, clock=lambda: NOW)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(backend: FakeBackend, requests_log: RequestLog, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    app = console_app(backend, requests_log)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console",
                                 event_hooks={"response": [recorder.hook]}) as http:
        yield http
    leaked = [s for s in SECRETS if any(s in body for body in recorder.bodies)]
    assert not leaked, f"secrets in admin API responses: {leaked}"


# ---- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_admin_route_refuses_a_request_without_a_key(client: httpx.AsyncClient, method: str, path: str,
                                                                 body: object) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_admin_route_refuses_a_wrong_key(client: httpx.AsyncClient, backend: FakeBackend, method: str,
                                                     path: str, body: object) -> None:
    response = await client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert backend.calls == []


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_client_key_gets_403_when_admin_keys_are_configured(client: httpx.AsyncClient, backend: FakeBackend,
                                                                    method: str, path: str, body: object) -> None:
    response = await client.request(method, path, json=body, headers={"x-api-key": CLIENT_KEY})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_key_required"
    assert backend.calls == []


async def test_any_client_key_opens_the_console_when_no_admin_keys_are_set(backend: FakeBackend,
                                                                           requests_log: RequestLog) -> None:
    app = console_app(backend, requests_log, admin_keys=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
        me = await http.get("/admin/api/whoami", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        wrong = await http.get("/admin/api/whoami", headers={"Authorization": "Bearer nope"})
    assert me.status_code == 200 and me.json() == {"key_name": "client", "dedicated_admin_keys": False}
    assert wrong.status_code == 401


async def test_the_admin_key_is_accepted_and_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/api/whoami", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"key_name": "ops", "dedicated_admin_keys": True}
    assert response.headers["cache-control"] == "no-store"


# ---- views ---------------------------------------------------------------------------------


async def test_accounts_show_state_reason_until_and_token_age_but_no_secret(client: httpx.AsyncClient,
                                                                            backend: FakeBackend) -> None:
    backend.cool("beta@example.com", 90)
    response = await client.get("/admin/api/accounts", headers=ADMIN)
    data = response.json()
    assert data["now"] == NOW
    rows = {row["id"]: row for row in data["accounts"]}
    assert list(rows) == ["alpha@example.com", "beta@example.com", "gamma"]
    assert rows["alpha@example.com"]["state"] == "ready"
    assert rows["alpha@example.com"]["token_obtained_at"] == NOW - 3600
    assert rows["beta@example.com"]["state"] == "cooling"
    assert rows["beta@example.com"]["until"] == NOW + 90
    assert rows["beta@example.com"]["reason"].startswith("rate limited")
    assert rows["gamma"] == {**rows["gamma"], "state": "banned", "token_obtained_at": None, "login": "mobile"}
    assert rows["gamma"]["proxy"] == "socks5://***@10.0.0.1:1080"
    assert not any(key in row for row in rows.values() for key in ("password", "token"))


async def test_proxies_are_listed_with_credentials_masked_and_a_quarantine_deadline(client: httpx.AsyncClient,
                                                                                    backend: FakeBackend) -> None:
    backend.quarantined[1] = NOW + 42
    data = (await client.get("/admin/api/proxies", headers=ADMIN)).json()
    assert [p["proxy"] for p in data["proxies"]] == ["socks5://***@10.0.0.1:1080", "http://10.0.0.2:3128"]
    assert [p["state"] for p in data["proxies"]] == ["ok", "quarantined"]
    assert data["proxies"][1]["quarantine_until"] == NOW + 42


async def test_the_summary_combines_pool_figures_with_the_last_minute_of_traffic(client: httpx.AsyncClient,
                                                                                 requests_log: RequestLog) -> None:
    for i, (status, ttft) in enumerate([(200, 0.1), (200, 0.2), (200, 0.3), (429, None), (502, None),
                                        (200, 0.4), (400, None), (499, None), (200, 1.5), (200, 0.5)]):
        requests_log.record(RequestEntry(time=NOW - i, surface="openai", model="deepseek-chat", status=status,
                                         ttft=ttft))
    requests_log.record(RequestEntry(time=NOW - 61, surface="openai", model="deepseek-chat", status=500, ttft=9.0))
    data = (await client.get("/admin/api/summary", headers=ADMIN)).json()
    assert data["mode"] == "single"
    assert (data["in_flight"], data["capacity"], data["queue_depth"], data["queue_limit"]) == (0, 2, 0, 64)
    assert data["requests"] == 10
    assert data["requests_per_second"] == pytest.approx(10 / 60)
    assert data["error_rate"] == pytest.approx(0.2)  # the 429 and the 502; not the 400 or the 499
    assert (data["ttft_p50"], data["ttft_p95"]) == (0.3, 1.5)
    assert data["accounts_by_state"] == {"ready": 2, "banned": 1}


# ---- account actions -----------------------------------------------------------------------


async def test_clear_cooldown_returns_a_cooling_account_to_ready(client: httpx.AsyncClient, backend: FakeBackend,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    backend.cool("beta@example.com", 90)
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    response = await client.post("/admin/api/accounts/beta@example.com/clear-cooldown", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["account"]["state"] == "ready"
    assert backend.accounts_by_id["beta@example.com"].state == "ready"
    assert "admin key=ops action=clear_cooldown target=beta@example.com result=ok" in caplog.messages


async def test_test_now_and_relogin_report_what_they_found(client: httpx.AsyncClient, backend: FakeBackend,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    ok = (await client.post("/admin/api/accounts/alpha@example.com/test", headers=ADMIN)).json()
    banned = (await client.post("/admin/api/accounts/gamma/test", headers=ADMIN)).json()
    relogin = (await client.post("/admin/api/accounts/alpha@example.com/relogin", headers=ADMIN)).json()
    assert ok == {"ok": True, "message": "logged in and answered a one-word turn", "kind": None, "duration": 0.4}
    assert (banned["ok"], banned["kind"]) == (False, "account_banned")
    assert relogin["ok"] is True
    assert backend.calls == [("test", "alpha@example.com"), ("test", "gamma"), ("relogin", "alpha@example.com")]
    assert "admin key=ops action=test_account target=gamma result=failed:account_banned" in caplog.messages
    assert "admin key=ops action=relogin target=alpha@example.com result=ok" in caplog.messages


async def test_disable_and_enable_change_the_state_and_are_audited(client: httpx.AsyncClient, backend: FakeBackend,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    off = (await client.post("/admin/api/accounts/alpha@example.com/disable", headers=ADMIN)).json()
    assert off["account"]["state"] == "disabled"
    on = (await client.post("/admin/api/accounts/alpha@example.com/enable", headers=ADMIN)).json()
    assert on["account"]["state"] == "ready"
    assert [m for m in caplog.messages if "action=" in m] == [
        "admin key=ops action=disable target=alpha@example.com result=ok",
        "admin key=ops action=enable target=alpha@example.com result=ok",
    ]


async def test_an_unknown_account_is_404_and_a_refusal_is_409(client: httpx.AsyncClient,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    missing = await client.post("/admin/api/accounts/nobody@example.com/test", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    config_account = await client.delete("/admin/api/accounts/alpha@example.com", headers=ADMIN)
    assert config_account.status_code == 409 and config_account.json()["error"]["code"] == "conflict"
    assert "admin key=ops action=remove_account target=alpha@example.com result=refused:conflict" in caplog.messages


async def test_an_account_added_at_runtime_can_be_removed(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    added = await client.post("/admin/api/accounts/import", headers=ADMIN,
                              json={"text": "delta@example.com:new-pw-Secret-A"})
    assert added.json()["counts"] == {"added": 1}
    removed = await client.delete("/admin/api/accounts/delta@example.com", headers=ADMIN)
    assert removed.status_code == 200 and removed.json() == {"removed": "delta@example.com"}
    assert "delta@example.com" not in backend.accounts_by_id


# ---- bulk import ---------------------------------------------------------------------------

PASTE = """# new accounts
delta@example.com:new-pw-Secret-A
+8613900000001:new-pw-Secret-B
alpha@example.com:new-pw-Secret-A
delta@example.com:new-pw-Secret-B
not a login:new-pw-Secret-A
epsilon@example.com
zeta@example.com:pass:with:colons
"""


async def test_a_dry_run_judges_every_line_and_adds_nothing(client: httpx.AsyncClient, backend: FakeBackend,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    response = await client.post("/admin/api/accounts/import", headers=ADMIN, json={"text": PASTE, "dry_run": True})
    data = response.json()
    assert data["dry_run"] is True
    assert [(line["line"], line["status"], line["id"]) for line in data["lines"]] == [
        (2, "ok", "delta@example.com"),
        (3, "ok", "+8613900000001"),
        (4, "exists", "alpha@example.com"),
        (5, "duplicate", "delta@example.com"),
        (6, "invalid", None),
        (7, "invalid", None),
        (8, "ok", "zeta@example.com"),
    ]
    assert data["counts"] == {"ok": 3, "exists": 1, "duplicate": 1, "invalid": 2}
    assert len(backend.accounts_by_id) == 3 and backend.calls == []
    assert ("admin key=ops action=import_accounts_dry_run target=7 lines "
            "result=duplicate=1,exists=1,invalid=2,ok=3") in caplog.messages


async def test_an_import_adds_the_good_lines_with_their_passwords(client: httpx.AsyncClient,
                                                                 backend: FakeBackend) -> None:
    data = (await client.post("/admin/api/accounts/import", headers=ADMIN, json={"text": PASTE})).json()
    assert data["counts"] == {"added": 3, "exists": 1, "duplicate": 1, "invalid": 2}
    assert [c for c in backend.calls if c[0] == "add"] == [
        ("add", "delta@example.com"), ("add", "+8613900000001"), ("add", "zeta@example.com")]
    assert backend.accounts_by_id["zeta@example.com"].settings.password == "pass:with:colons"
    assert backend.accounts_by_id["+8613900000001"].settings.mobile == "+8613900000001"
    assert backend.accounts_by_id["delta@example.com"].source == "runtime"


async def test_json_accounts_import_like_config_entries(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    text = json.dumps({"accounts": [{"email": "eta@example.com", "password": "json-pw-Secret", "name": "eta"},
                                    {"email": "theta@example.com"}, "nonsense"]})
    data = (await client.post("/admin/api/accounts/import", headers=ADMIN,
                              json={"text": text, "dry_run": True})).json()
    assert [(line["status"], line["id"]) for line in data["lines"]] == [
        ("ok", "eta"), ("invalid", None), ("invalid", None)]
    assert "password" in data["lines"][1]["message"]


@pytest.mark.parametrize("body", [{}, {"text": "  "}, {"text": "a@b.co:x", "dry_run": "yes"}, {"text": 5}])
async def test_a_malformed_import_request_is_a_400(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await client.post("/admin/api/accounts/import", headers=ADMIN, json=body)
    assert response.status_code == 400


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/api/accounts/import", headers={**ADMIN, "content-type": "application/json"},
                                 content=b"{nope")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


# ---- proxies, tester, live tail ------------------------------------------------------------


async def test_a_proxy_test_reports_and_an_unknown_proxy_is_404(client: httpx.AsyncClient,
                                                                backend: FakeBackend) -> None:
    ok = await client.post("/admin/api/proxies/1/test", headers=ADMIN)
    assert ok.json()["ok"] is True and backend.calls == [("test_proxy", "1")]
    assert (await client.post("/admin/api/proxies/7/test", headers=ADMIN)).status_code == 404
    assert (await client.post("/admin/api/proxies/x/test", headers=ADMIN)).status_code == 404


async def test_the_tester_sends_a_prompt_pinned_to_an_account(client: httpx.AsyncClient, backend: FakeBackend,
                                                              requests_log: RequestLog,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    reply = (await client.post("/admin/api/tester", headers=ADMIN, json={
        "model": "deepseek-chat", "prompt": "say hello please", "account_id": "beta@example.com"})).json()
    assert (reply["ok"], reply["text"], reply["account_id"], reply["tokens_in"]) == (
        True, "Hello", "beta@example.com", 3)
    assert [e.account_id for e in requests_log.recent()] == ["beta@example.com"]
    assert "admin key=ops action=tester target=beta@example.com result=ok" in caplog.messages
    assert not any("say hello" in m for m in caplog.messages)


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gpt-4", "prompt": "hi"}, "model"),
    ({"model": "deepseek-chat", "prompt": ""}, "prompt"),
    ({"model": "deepseek-chat", "prompt": "x" * 20_001}, "prompt"),
    ({"model": "deepseek-chat", "prompt": "hi", "account_id": 3}, "account_id"),
])
async def test_the_tester_refuses_bad_input_with_a_400(client: httpx.AsyncClient, body: dict[str, object],
                                                       param: str) -> None:
    response = await client.post("/admin/api/tester", headers=ADMIN, json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


async def test_recent_requests_are_listed_oldest_first(client: httpx.AsyncClient, requests_log: RequestLog) -> None:
    for i in range(5):
        requests_log.record(RequestEntry(time=NOW + i, surface="openai", model="deepseek-chat", status=200,
                                         account_id="alpha@example.com", request_id=f"req_{i}"))
    data = (await client.get("/admin/api/requests?limit=3", headers=ADMIN)).json()
    assert [r["request_id"] for r in data["requests"]] == ["req_2", "req_3", "req_4"]
    assert (await client.get("/admin/api/requests?limit=abc", headers=ADMIN)).status_code == 400


async def test_the_live_tail_streams_the_backlog_then_new_requests_as_events(
        backend: FakeBackend, requests_log: RequestLog) -> None:
    """Over a real socket: the tail stays open and a request recorded later arrives as the next event."""
    import asyncio

    import uvicorn

    requests_log.record(RequestEntry(time=NOW, surface="openai", model="deepseek-chat", status=200, stream=True,
                                     ttft=0.25, tokens_in=12, tokens_out=30, account_id="alpha@example.com",
                                     request_id="req_old"))
    app = console_app(backend, requests_log)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):  # bounded: a server that cannot start fails the test below
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        events: list[dict[str, object]] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http, \
                http.stream("GET", "/admin/api/requests/stream?max_events=2", headers=ADMIN) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if len(events) == 1:  # the backlog is out: now a new request finishes
                        requests_log.record(RequestEntry(time=NOW + 1, surface="anthropic", model="deepseek-chat",
                                                         status=503, account_id="beta@example.com",
                                                         request_id="req_new"))
        assert [(e["request_id"], e["status"], e["account_id"]) for e in events] == [
            ("req_old", 200, "alpha@example.com"), ("req_new", 503, "beta@example.com")]
        assert events[0]["ttft"] == 0.25 and events[0]["tokens_out"] == 30
        assert requests_log.tails == 0  # the tail unsubscribed when the stream ended
    finally:
        server.should_exit = True
        await serving


# ---- the page ------------------------------------------------------------------------------


async def test_the_page_and_its_assets_are_served_with_a_strict_content_security_policy(
        client: httpx.AsyncClient) -> None:
    page = await client.get("/admin")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/admin/static/console.js" defer>' in page.text
    script = await client.get("/admin/static/console.js")
    style = await client.get("/admin/static/console.css")
    assert script.status_code == 200 and "sessionStorage" in script.text
    assert style.status_code == 200 and "prefers-color-scheme: dark" in style.text
    assert (await client.get("/admin/static/../settings.py")).status_code == 404
    assert (await client.get("/admin/static/other.js")).status_code == 404
    redirect = await client.get("/admin/")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/admin"


async def test_the_console_mounts_on_a_fastapi_app_behind_the_gateway_middleware(
        backend: FakeBackend, requests_log: RequestLog) -> None:
    """What the composition root will do: add the routes to the FastAPI app, under GatewayMiddleware."""
    from fastapi import FastAPI

    from deepseek2api.api.admin import AdminAuth, console_routes
    from deepseek2api.api.metrics import GatewayMetrics, metrics_route
    from deepseek2api.api.middleware import GatewayMiddleware

    app = FastAPI()
    app.router.routes.extend(console_routes(backend, AdminAuth([("ops", ADMIN_KEY)], [("client", CLIENT_KEY)]),
                                            requests_log))
    app.router.routes.append(metrics_route(GatewayMetrics()))
    app.add_middleware(GatewayMiddleware, max_body_bytes=1000, cors_origins=["*"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        accounts = await http.get("/admin/api/accounts", headers=ADMIN)
        refused = await http.get("/admin/api/accounts", headers={"x-api-key": CLIENT_KEY})
        too_big = await http.post("/admin/api/accounts/import", headers=ADMIN,
                                  json={"text": "a@example.com:" + "x" * 2000})
        page = await http.get("/admin")
        scrape = await http.get("/metrics")
    assert accounts.status_code == 200 and len(accounts.json()["accounts"]) == 3
    assert accounts.headers["x-request-id"].startswith("req_")
    assert refused.status_code == 403
    assert too_big.status_code == 413
    assert page.status_code == 200 and scrape.status_code == 200


async def test_set_token_and_probe_are_audited_and_never_echo_the_token(client: httpx.AsyncClient,
                                                                        backend: FakeBackend,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deepseek2api.api.admin.router.audit")
    headers = {"x-api-key": ADMIN_KEY}
    token = "pasted-token-Secret-0123456789"
    ok = await client.post("/admin/api/accounts/alpha@example.com/token", json={"token": token}, headers=headers)
    assert ok.status_code == 200 and ok.json()["account"]["id"] == "alpha@example.com"
    bad = await client.post("/admin/api/accounts/alpha@example.com/token", json={"token": "bad-" + token},
                            headers=headers)
    assert bad.status_code == 400 and token not in bad.text
    missing = await client.post("/admin/api/accounts/alpha@example.com/token", json={}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "token"
    probe = await client.post("/admin/api/accounts/alpha@example.com/probe", headers=headers)
    assert probe.json()["ok"] is True
    assert backend.calls == [("set_token", "alpha@example.com"), ("probe", "alpha@example.com")]
    assert "action=set_token target=alpha@example.com result=ok" in caplog.text
    assert "result=refused:invalid" in caplog.text and token not in caplog.text
    # without an upstream panel (a bare console), the identity routes say so
    upstream = await client.get("/admin/api/upstream", headers=headers)  # a console without an upstream panel
    assert upstream.status_code == 200 and upstream.json() == {"available": False}
