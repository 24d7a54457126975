"""Today's DeepSeek, end to end against the simulator's late-2026 profile: today's DeepSeek as public reports describe
it (docs/deepseek-changes.md), with the real openai SDK and the admin API."""

from __future__ import annotations

import httpx
import openai
import pytest

from deepseek2api.simulator.config import preset_token
from late2026_support import Admin, late_stack, metric

PROMPT = [{"role": "user", "content": "Say hello"}]


def test_the_defaults_answer_stream_and_non_stream_with_token_only_accounts() -> None:
    with late_stack(accounts=2) as stack:
        client = stack.openai()
        reply = client.chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
        chunks = list(client.chat.completions.create(model="deepseek-v4-flash", messages=PROMPT, stream=True))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == reply.choices[0].message.content  # the same deterministic simulator reply
        stats = stack.sim_stats()
        assert stats["version_refusals"] == 0  # the default persona passes today's gate
        assert stats["requests"].get("login", 0) == 0  # pasted tokens: no password login at all


def test_a_stale_persona_names_the_setting_penalises_no_account_and_is_fixed_at_runtime() -> None:
    with late_stack(accounts=3, upstream={"client_version": "1.6.11"}) as stack:
        admin = Admin(stack.base_url)
        with pytest.raises(openai.APIStatusError) as caught:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=PROMPT)
        error = caught.value
        assert error.status_code == 502
        body = error.response.json()["error"]
        assert body["code"] == "upstream_client_outdated"
        assert "1.6.11" in body["message"] and "upstream.client_version" in body["message"]
        assert "android" in body["message"]
        assert error.response.headers["x-should-retry"] == "false"
        # one attempt: session create and PoW of ONE account were refused, no failover across the pool
        assert stack.sim_stats()["version_refusals"] <= 2
        accounts = admin.call("GET", "/accounts")["accounts"]
        assert [a["state"] for a in accounts] == ["ready"] * 3 and all(a["failures"] == 0 for a in accounts)
        gate = admin.call("GET", "/summary")["version_gate"]
        assert gate["refused"] is True and "1.6.11" in gate["identity"]
        scraped = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        assert metric(scraped, "deepseek2api_client_version_refusals_total") >= 1
        assert metric(scraped, "deepseek2api_client_version_refused") == 1
        # the operator fixes the persona in the console: the next request works, no restart
        view = admin.call("PUT", "/upstream/identity", json={"persona": "android", "version": "2.0.4"})
        assert view["sent"] == "persona android, x-client-version 2.0.4" and view["source"] == "console"
        reply = stack.openai().chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert reply.choices[0].message.content
        assert admin.call("GET", "/summary")["version_gate"]["refused"] is False
        scraped = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        assert metric(scraped, "deepseek2api_client_version_refused") == 0
        # a bad persona is refused with the choices named, nothing changes
        refused = admin.call("PUT", "/upstream/identity", status=400, json={"persona": "symbian"})
        assert "android" in refused["error"]["message"]


def test_risk_controlled_logins_need_a_token_and_a_pasted_token_brings_the_account_back() -> None:
    with late_stack(accounts=2, token_only=False) as stack:  # accounts with passwords only
        admin = Admin(stack.base_url)
        with pytest.raises(openai.APIStatusError) as caught:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=PROMPT)
        body = caught.value.response.json()["error"]
        assert caught.value.status_code == 503 and body["code"] == "upstream_needs_token"
        assert "risk control" in body["message"] and "userToken" in body["message"]
        first = "user1@sim.test"
        view = admin.account(first)
        assert view["state"] == "needs_token" and "userToken" in view["reason"]
        assert stack.sim_stats()["logins"] == 0
        # a token DeepSeek refuses is not stored (and not echoed)
        bogus = "not-a-real-token-0123456789abcdef"
        refused = admin.call("POST", f"/accounts/{first}/token", status=400, json={"token": bogus})
        assert bogus not in refused["error"]["message"] and admin.account(first)["state"] == "needs_token"
        token = preset_token(first)
        fixed = admin.call("POST", f"/accounts/{first}/token", json={"token": token})["account"]
        assert fixed["state"] == "ready" and fixed["has_token"] is True
        assert token not in admin.http.get("/accounts").text
        reply = stack.openai().chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert reply.choices[0].message.content


def test_an_expired_pasted_token_asks_for_a_new_one_without_a_login_loop() -> None:
    with late_stack(accounts=2) as stack:
        admin = Admin(stack.base_url)
        stack.sim_fault("user1@sim.test", "token_expired", count=1)
        stack.sim_fault("user2@sim.test", "token_expired", count=1)
        with pytest.raises(openai.APIStatusError) as caught:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert caught.value.response.json()["error"]["code"] == "upstream_needs_token"
        for account in ("user1@sim.test", "user2@sim.test"):
            view = admin.account(account)
            assert view["state"] == "needs_token" and "expired" in view["reason"]
        assert stack.sim_stats()["requests"].get("login", 0) == 0  # never tried to log in


def test_empty_answers_fail_over_once_then_give_a_clear_error() -> None:
    accounts = ("user1@sim.test", "user2@sim.test", "user3@sim.test")
    with late_stack(accounts=3) as stack:
        admin = Admin(stack.base_url)
        client = stack.openai()

        def all_empty() -> None:
            for account in accounts:
                stack.sim_fault(account, "empty")

        def refused(stream: bool) -> dict[str, str]:
            with pytest.raises(openai.APIStatusError) as caught:
                if stream:
                    list(client.chat.completions.create(model="deepseek-chat", messages=PROMPT, stream=True))
                else:
                    client.chat.completions.create(model="deepseek-chat", messages=PROMPT)
            assert caught.value.status_code == 502
            return caught.value.response.json()["error"]  # type: ignore[no-any-return]

        all_empty()
        body = refused(stream=False)
        assert body["code"] == "upstream_empty_answer"
        assert "restricted accounts" in body["message"] and "client identity" in body["message"]
        assert stack.sim_stats()["empty_replies"] == 2  # the first account, then one more: not all three
        # the least recently used account still has its empty reply queued: retried once, the client never sees it
        reply = client.chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert reply.choices[0].message.content
        stats = stack.sim_stats()
        assert stats["empty_replies"] == 3 and stats["pending_faults"] == {}
        all_empty()
        assert refused(stream=True)["code"] == "upstream_empty_answer"  # before the first byte: a real status
        assert sum(a["empty_answers"] for a in admin.call("GET", "/accounts")["accounts"]) == 5


def test_an_expert_request_with_expert_disabled_falls_back_with_a_header() -> None:
    with late_stack(accounts=2) as stack:
        raw = stack.openai().chat.completions.with_raw_response.create(model="deepseek-v4-pro", messages=PROMPT)
        assert raw.headers["x-ds2api-model-fallback"] == "expert->default"
        assert raw.parse().choices[0].message.content
        assert stack.sim_stats()["empty_replies"] == 0  # the expert mode was never sent upstream
        with stack.openai().chat.completions.with_streaming_response.create(
                model="deepseek-expert-reasoner", messages=PROMPT, stream=True) as streamed:
            assert streamed.headers["x-ds2api-model-fallback"] == "expert->default"
            assert "data: [DONE]" in streamed.read().decode()
        listed = stack.http().get("/v1/models", params={"available": "true"}).json()["data"]
        ids = {m["id"] for m in listed}
        assert "deepseek-chat" in ids and "deepseek-v4-flash" in ids
        assert not {"deepseek-expert-chat", "deepseek-v4-pro", "deepseek-vision"} & ids
        assert "deepseek-v4-pro" in {m["id"] for m in stack.http().get("/v1/models").json()["data"]}


def test_an_expert_request_with_expert_disabled_is_refused_when_the_operator_says_so() -> None:
    with late_stack(accounts=2, upstream={"disabled_mode": "refuse"}) as stack:
        with pytest.raises(openai.BadRequestError) as caught:
            stack.openai().chat.completions.create(model="deepseek-v4-pro", messages=PROMPT)
        body = caught.value.response.json()["error"]
        assert body["code"] == "model_mode_disabled" and "expert" in body["message"]
        assert "upstream.disabled_mode" in body["message"]


def test_reasoning_effort_with_a_v4_name_turns_thinking_on() -> None:
    with late_stack(accounts=1) as stack:
        reply = stack.openai().chat.completions.create(model="deepseek-v4-flash", messages=PROMPT,
                                                       reasoning_effort="high")
        assert getattr(reply.choices[0].message, "reasoning_content", None)


def test_unknown_stream_fields_leave_the_answer_exact_and_raise_the_counter() -> None:
    with late_stack(accounts=1) as stack:
        client = stack.openai()
        before = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        with_drift = client.chat.completions.create(model="deepseek-chat", messages=PROMPT)
        after = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        stack.sim_set(drift_fields=False)
        without = client.chat.completions.create(model="deepseek-chat", messages=PROMPT)
        assert with_drift.choices[0].message.content == without.choices[0].message.content
        for kind in ("event", "path", "fragment"):
            name, labels = "deepseek2api_upstream_unknown_shapes_total", f'kind="{kind}"'
            assert metric(after, name, labels) > metric(before, name, labels), kind
        shapes = Admin(stack.base_url).call("GET", "/upstream")["drift"]["shapes"]
        assert {"kind": "path", "shape": "response/agent_state", "sample": "object{phase}"} in shapes


def test_the_console_probe_runs_on_one_account() -> None:
    with late_stack(accounts=2) as stack:
        report = Admin(stack.base_url).call("POST", "/accounts/user2@sim.test/probe")
        assert report["ok"] is True and report["account_id"] == "user2@sim.test"
        steps = {s["name"]: s for s in report["steps"]}
        assert list(steps) == ["token", "model settings", "session create", "pow", "completion", "session delete"]
        assert steps["model settings"]["detail"] == "default on, expert off, vision off"
        assert steps["pow"]["detail"] == "DeepSeekHashV1, difficulty 2000"
        assert report["unknown_shapes"]  # the late-2026 stream carries new fields


def test_the_bulk_import_takes_token_lines() -> None:
    with late_stack(accounts=2) as stack:
        admin = Admin(stack.base_url)
        text = f"user9@sim.test:token={preset_token('user9@sim.test')}\nuser8@sim.test:token=\n"
        verdicts = admin.call("POST", "/accounts/import", json={"text": text, "dry_run": True})["lines"]
        assert [v["status"] for v in verdicts] == ["ok", "invalid"]
        assert "user9@sim.test" not in {a["id"] for a in admin.call("GET", "/accounts")["accounts"]}  # a dry run


def test_the_fallback_header_is_on_every_surface() -> None:
    with late_stack(accounts=2, anthropic={"model_map": {"opus": "deepseek-v4-pro"}},
                    ollama={"enabled": True}) as stack:
        http = stack.http()
        messages = {"model": "claude-opus-4", "max_tokens": 64, "messages": PROMPT}
        for stream in (False, True):
            answer = http.post("/v1/messages", json={**messages, "stream": stream})
            assert answer.status_code == 200 and answer.headers["x-ds2api-model-fallback"] == "expert->default"
            responses = http.post("/v1/responses", json={"model": "deepseek-v4-pro", "input": "Say hello",
                                                         "stream": stream})
            assert responses.status_code == 200
            assert responses.headers["x-ds2api-model-fallback"] == "expert->default"
            method = "streamGenerateContent" if stream else "generateContent"
            gemini = http.post(f"/v1beta/models/deepseek-v4-pro:{method}", params={"alt": "sse"} if stream else {},
                               json={"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]})
            assert gemini.status_code == 200 and gemini.headers["x-ds2api-model-fallback"] == "expert->default"
            ollama = http.post("/api/chat", json={"model": "deepseek-v4-pro", "messages": PROMPT, "stream": stream})
            assert ollama.status_code == 200 and ollama.headers["x-ds2api-model-fallback"] == "expert->default"
