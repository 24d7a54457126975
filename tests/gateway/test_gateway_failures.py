"""Failure paths end to end: error statuses, pool exhaustion, re-login, failover, disconnects, restart."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from deepseek2api.deepseek.client import PATH_CONTINUE as CONTINUE_PATH
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure
from deepseek2api.deepseek.events import UpstreamError
from deepseek2api.simulator.replies import reply_for
from gateway_support import API_KEY, running_stack


def _error_body(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]  # type: ignore[no-any-return]


def test_client_errors_have_the_envelope_and_status() -> None:
    with running_stack(accounts=1, server={"max_body_bytes": 4096}) as stack:
        url = f"{stack.base_url}/v1/chat/completions"
        auth = {"authorization": f"Bearer {API_KEY}"}
        messages = [{"role": "user", "content": "x"}]
        cases = [
            (httpx.post(url, content=b"{not json", headers=auth), 400, None),
            (httpx.post(url, json={"model": "deepseek-chat"}, headers=auth), 400, "messages"),
            (httpx.post(url, json={"model": "deepseek-chat", "messages": [{"role": "wizard", "content": "x"}]},
                        headers=auth), 400, "messages[0].role"),
            (httpx.post(url, json={"model": "deepseek-chat", "messages": messages, "n": 2}, headers=auth), 400, "n"),
            (httpx.post(url, json={"model": "deepseek-chat", "messages": messages, "logprobs": True}, headers=auth),
             400, "logprobs"),
            (httpx.post(url, json={"model": "gpt-17", "messages": messages}, headers=auth), 404, "model"),
            (httpx.post(url, json={"model": "deepseek-chat", "messages": messages}), 401, None),
            (httpx.post(url, json={"model": "deepseek-chat", "messages": messages},
                        headers={"authorization": "Bearer wrong-key"}), 401, None),
            (httpx.post(url, content=b"{" + b" " * 5000 + b"}", headers=auth), 413, None),
            (httpx.get(f"{stack.base_url}/v1/nothing-here", headers=auth), 404, None),
        ]
        for response, status, param in cases:
            assert response.status_code == status, (status, response.text)
            error = _error_body(response)
            assert error["message"]
            assert response.headers["x-request-id"]
            if param is not None:
                assert error["param"] == param, (param, error)
        assert _error_body(cases[5][0])["code"] == "model_not_found"
        assert _error_body(cases[6][0])["code"] == "invalid_api_key"


def test_sdk_error_classes() -> None:
    with running_stack(accounts=1) as stack:
        messages = [{"role": "user", "content": "x"}]
        with pytest.raises(openai.AuthenticationError):
            stack.openai(api_key="nope").chat.completions.create(model="deepseek-chat", messages=messages)
        with pytest.raises(openai.NotFoundError):
            stack.openai().chat.completions.create(model="no-such-model", messages=messages)
        with pytest.raises(openai.BadRequestError) as bad:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=messages, n=3)
        assert bad.value.body["param"] == "n"  # type: ignore[index]


def test_pool_exhausted_429_then_success_after_release() -> None:
    with running_stack(accounts=1, pool={"queue_size": 0, "queue_timeout": 0.2},
                       sim={"stall_seconds": 3.0}) as stack:
        holder_started = threading.Event()
        result: dict[str, str] = {}

        def hold() -> None:
            with stack.openai().chat.completions.create(
                    model="deepseek-chat", stream=True,
                    messages=[{"role": "user", "content": "hold the account [sim:stall=1.5]"}]) as stream:
                holder_started.set()
                result["text"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        thread = threading.Thread(target=hold)
        thread.start()
        deadline = time.monotonic() + 10
        while stack.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(openai.RateLimitError) as limited:
            stack.openai().chat.completions.create(model="deepseek-chat",
                                                   messages=[{"role": "user", "content": "second"}])
        assert limited.value.response.headers.get("retry-after")
        assert limited.value.body["code"].startswith("pool_")  # type: ignore[index]
        thread.join(30)
        assert result["text"].startswith("This is a synthetic reply")
        stack.wait_idle()
        ok = stack.openai().chat.completions.create(model="deepseek-chat",
                                                    messages=[{"role": "user", "content": "second"}])
        assert ok.choices[0].message.content == reply_for("second", thinking=False, search=False).content


def test_token_expiry_is_a_transparent_relogin() -> None:
    with running_stack(accounts=1) as stack:
        client = stack.openai()
        client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "one"}])
        logins = stack.sim_stats()["logins"]
        stack.sim_fault("user1@sim.test", "token_expired")
        reply = client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "two"}])
        assert reply.choices[0].message.content == reply_for("two", thinking=False, search=False).content
        assert stack.sim_stats()["logins"] == logins + 1


def test_every_account_muted_is_503() -> None:
    with running_stack(accounts=2) as stack:
        stack.sim_fault("user1@sim.test", "mute")
        stack.sim_fault("user2@sim.test", "mute")
        for _ in range(2):  # a mute is not carried to the next account: each request costs one
            with pytest.raises(openai.InternalServerError) as failed:
                stack.openai().chat.completions.create(model="deepseek-chat",
                                                       messages=[{"role": "user", "content": "muted"}])
            assert failed.value.status_code == 503 and failed.value.code == "upstream_account_muted"
        states = {a["id"]: a["state"] for a in stack.gateway.pool.status()}
        assert set(states.values()) == {"muted"}


def test_one_muted_account_is_marked_and_not_used_again() -> None:
    with running_stack(accounts=2) as stack:
        stack.sim_fault("user1@sim.test", "mute")
        outcomes = []
        for i in range(3):
            try:
                reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                               messages=[{"role": "user", "content": f"q{i}"}])
            except openai.InternalServerError as exc:  # the request that drew the mute is not retried
                assert exc.code == "upstream_account_muted"
                outcomes.append("muted")
                continue
            assert reply.choices[0].message.content == reply_for(f"q{i}", thinking=False, search=False).content
            outcomes.append("ok")
        assert outcomes.count("muted") == 1 and outcomes[-1] == "ok", outcomes
        states = {a["id"]: a["state"] for a in stack.gateway.pool.status()}
        assert states["user1@sim.test"] == "muted" and states["user2@sim.test"] == "ready"


def test_rate_limit_on_every_account_is_503_with_retry_after() -> None:
    with running_stack(accounts=2) as stack:
        prompt = "limited [sim:fault=rate_limit]"
        with pytest.raises(openai.InternalServerError) as failed:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": prompt}])
        assert failed.value.status_code == 503
        assert failed.value.response.headers["retry-after"]
        assert failed.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]


def test_stream_failing_before_first_byte_is_an_http_error() -> None:
    with running_stack(accounts=1, pool={"max_failover": 1}) as stack:
        with pytest.raises(openai.APIStatusError) as failed:
            list(stack.openai().chat.completions.create(
                model="deepseek-chat", stream=True,
                messages=[{"role": "user", "content": "waf [sim:fault=waf]"}]))
        assert failed.value.status_code == 502


def test_cut_stream_after_output_ends_with_error_event() -> None:
    with running_stack(accounts=1) as stack:
        with stack.http() as http:
            with http.stream("POST", "/v1/chat/completions", json={
                    "model": "deepseek-chat", "stream": True,
                    "messages": [{"role": "user", "content": "cut [sim:fault=cut] [sim:words=50]"}]}) as response:
                assert response.status_code == 200
                body = response.read().decode()
        events = [e for e in body.split("\n\n") if e.startswith("data: ")]
        assert events[-1] != "data: [DONE]"
        last = json.loads(events[-1][len("data: "):])
        assert last["error"]["code"] == "upstream_stream_cut"
        with pytest.raises(openai.APIError):
            list(stack.openai().chat.completions.create(
                model="deepseek-chat", stream=True,
                messages=[{"role": "user", "content": "cut [sim:fault=cut] [sim:words=50]"}]))


def test_input_too_long_is_400() -> None:
    with running_stack(accounts=1) as stack:
        with pytest.raises(openai.BadRequestError) as failed:
            stack.openai().chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "long [sim:fault=input_too_long]"}])
        assert failed.value.body["code"] == "context_length_exceeded"  # type: ignore[index]


def test_content_filter_finish_reason() -> None:
    with running_stack(accounts=1) as stack:
        reply = stack.openai().chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "filter me [sim:fault=content_filter]"}])
        assert reply.choices[0].finish_reason == "content_filter"


def test_client_disconnect_returns_lease_and_stops_upstream() -> None:
    with running_stack(accounts=1, sim={"tokens_per_second": 50}) as stack:
        with stack.http() as http:
            with http.stream("POST", "/v1/chat/completions", json={
                    "model": "deepseek-chat", "stream": True,
                    "messages": [{"role": "user", "content": "long [sim:words=400]"}]}) as response:
                for line in response.iter_lines():
                    if '"content"' in line:
                        break  # close mid-stream
        stack.wait_idle()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = stack.sim_stats()
            if stats["stop_streams"] >= 1 and not any(stats["active_streams"].values()):
                break
            time.sleep(0.05)
        assert stats["stop_streams"] >= 1
        assert not any(stats["active_streams"].values())
        # The account is usable again right away.
        assert stack.openai().chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "after"}]).choices[0].message.content


def test_restart_keeps_learned_tokens(tmp_path) -> None:
    state = {"backend": "sqlite", "path": str(tmp_path / "state.db")}
    with running_stack(accounts=2, state=state) as stack:
        for i in range(4):
            stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": f"{i}"}])
        logins_before = stack.sim_stats()["logins"]
        assert logins_before == 2
        simulator = stack.simulator
        from deepseek2api.background import BackgroundServer
        from deepseek2api.server import create_app

        stack.gateway_server.stop()
        with BackgroundServer(create_app(stack.settings)) as again:
            reply = openai.OpenAI(base_url=f"{again.base_url}/v1", api_key=API_KEY, max_retries=0) \
                .chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "back"}])
            assert reply.choices[0].message.content
        assert httpx.get(f"{simulator.base_url}/_sim/stats").json()["logins"] == logins_before
        stack.gateway_server = again  # for the exit check


def test_non_stream_answer_cut_midway_is_retried_on_another_account() -> None:
    # Nothing reaches a non-stream client before the answer is complete, so even a cut in the middle
    # of an answer can go to another account.
    with running_stack(accounts=3, pool={"max_failover": 3}) as stack:
        stack.sim_fault("user1@sim.test", "cut")
        stack.sim_fault("user2@sim.test", "cut")
        stack.sim_fault("user3@sim.test", "cut")
        before = stack.sim_stats()["completions"]
        prompt = "cut once [sim:words=40]"
        with pytest.raises(openai.APIStatusError) as failed:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": prompt}])
        assert failed.value.status_code == 502
        assert stack.sim_stats()["completions"] - before == 3  # every account was tried
        stack.sim_fault("user1@sim.test", "cut")
        stack.sim_fault("user2@sim.test", "cut")
        reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                       messages=[{"role": "user", "content": prompt}])
        assert reply.choices[0].message.content == reply_for(prompt, thinking=False, search=False).content


def test_non_stream_continue_round_whose_pow_fails_is_retried_on_another_account() -> None:
    # The continue round's PoW is asked for after the prompt went out but, for a non-stream client,
    # before anything was sent: a failure there goes to another account like a cut stream does.
    with running_stack(accounts=2) as stack:
        client = stack.gateway.client
        real_pow_header = client.pow_header
        failed: list[str] = []

        async def pow_header_failing_once_for_continue(token: str, target_path: str, **kw: object) -> str:
            if target_path == CONTINUE_PATH and not failed:
                failed.append(target_path)
                raise UpstreamFailure(UpstreamError(ErrorKind.RATE_LIMITED, "simulated: too many PoW challenges"))
            return await real_pow_header(token, target_path, **kw)  # type: ignore[arg-type]

        client.pow_header = pow_header_failing_once_for_continue  # type: ignore[method-assign]
        prompt = "long one [sim:fault=incomplete] [sim:rounds=1]"
        reply = stack.openai().chat.completions.create(model="deepseek-chat",
                                                       messages=[{"role": "user", "content": prompt}])
        assert failed == [CONTINUE_PATH]
        assert reply.choices[0].message.content == reply_for(prompt, thinking=False, search=False).content
        assert stack.sim_stats()["completions"] == 2  # the second account answered the whole turn


@pytest.mark.parametrize("stream", [False, True])
def test_reply_is_delivered_before_upstream_cleanup_and_the_lease_waits_for_it(stream: bool) -> None:
    with running_stack(accounts=1) as stack:
        gate = threading.Event()
        deleted = threading.Event()
        client = stack.gateway.client
        real_delete = client.delete_session

        async def slow_delete(*args, **kwargs):  # runs on the gateway's loop
            import asyncio

            # `gate` is a threading.Event set by the test thread: poll it without blocking the loop.
            while not gate.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await real_delete(*args, **kwargs)
            deleted.set()

        client.delete_session = slow_delete  # type: ignore[method-assign]
        try:
            openai_client = stack.openai(timeout=20)
            messages = [{"role": "user", "content": "cleanup later"}]
            if stream:
                with stack.http() as http:  # read to EOF, like curl does
                    body = http.post("/v1/chat/completions", json={"model": "deepseek-chat", "stream": True,
                                                                   "messages": messages}).text
                assert body.rstrip().endswith("data: [DONE]")
            else:
                reply = openai_client.chat.completions.create(model="deepseek-chat", messages=messages)
                assert reply.choices[0].message.content
            # The reply is complete while the session delete still waits: the account is still held.
            assert not deleted.is_set()
            assert stack.gateway.pool.leases_out == 1
        finally:
            gate.set()
        assert deleted.wait(10)
        stack.wait_idle()
