"""`GET /metrics` of the REAL gateway after a scripted sequence against the simulator: requests, a
rate limit with a failover, a queue rejection. The scraped values (parsed with prometheus_client's
own parser) are exactly what happened."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from gateway_support import API_KEY, Stack, running_stack

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(stack: Stack) -> Samples:
    response = httpx.get(f"{stack.base_url}/metrics", timeout=10)  # open by default
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def chat(stack: Stack, stream: bool, content: str = "hi") -> tuple[int, int]:
    """One request; its (prompt, completion) tokens as the client saw them."""
    client = stack.openai()
    messages: Any = [{"role": "user", "content": content}]
    if not stream:
        reply = client.chat.completions.create(model="deepseek-chat", messages=messages)
        assert reply.usage is not None
        return reply.usage.prompt_tokens, reply.usage.completion_tokens
    usage = None
    for chunk in client.chat.completions.create(model="deepseek-chat", messages=messages, stream=True,
                                                stream_options={"include_usage": True}):
        usage = chunk.usage or usage
    assert usage is not None
    return usage.prompt_tokens, usage.completion_tokens


def test_scraped_metrics_are_exactly_what_the_gateway_did() -> None:
    sim = {"retry_after": 300}
    with running_stack(accounts=2, sim=sim, pool={"queue_size": 0, "queue_timeout": 10.0}) as stack:
        tokens = [chat(stack, stream=False), chat(stack, stream=False), chat(stack, stream=True)]
        plain, streams = 2, 1

        # DeepSeek rate-limits user1 on its next completion: that request fails over to user2
        stack.sim_fault("user1@sim.test", "rate_limit")
        rate_limited_requests = 0
        while stack.sim_stats()["pending_faults"]:
            assert rate_limited_requests < 2  # LRU rotation reaches user1 within two requests
            tokens.append(chat(stack, stream=False))
            rate_limited_requests += 1
        plain += rate_limited_requests

        # user1 cools down for 300 s; a stalled stream holds user2; the next request finds the queue full
        holder_tokens: list[tuple[int, int]] = []
        holder = threading.Thread(target=lambda: holder_tokens.append(chat(stack, True, "[sim:stall=2] wait")))
        holder.start()
        deadline = time.monotonic() + 10
        while stack.gateway.pool.leases_out == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "x"}])
            raise AssertionError("the request should have been turned away")
        except openai.RateLimitError as refused:
            assert refused.status_code == 429
        holder.join(30)
        tokens += holder_tokens
        streams += 1
        stack.wait_idle()

        m = scrape(stack)
        base = {"gen_ai_provider_name": "deepseek", "gen_ai_request_model": "deepseek-chat", "surface": "openai"}
        assert value(m, "deepseek2api_requests_total", **base, stream="false", outcome="ok") == plain
        assert value(m, "deepseek2api_requests_total", **base, stream="true", outcome="ok") == streams
        assert value(m, "deepseek2api_requests_total", **base, stream="false", outcome="rejected") == 1
        assert total(m, "deepseek2api_requests_total") == plain + streams + 1
        assert value(m, "gen_ai_server_request_duration_seconds_count", **base, stream="false",
                     outcome="ok") == plain
        assert total(m, "gen_ai_server_time_to_first_token_seconds_count") == plain + streams  # not the 429
        token_labels = {"gen_ai_provider_name": "deepseek", "gen_ai_request_model": "deepseek-chat"}
        assert value(m, "deepseek2api_tokens_total", **token_labels, gen_ai_token_type="input") == \
            sum(t[0] for t in tokens)
        assert value(m, "deepseek2api_tokens_total", **token_labels, gen_ai_token_type="output") == \
            sum(t[1] for t in tokens)
        assert value(m, "gen_ai_client_token_usage_count", **token_labels, gen_ai_token_type="input") == len(tokens)

        assert value(m, "deepseek2api_upstream_errors_total", gen_ai_provider_name="deepseek",
                     error_type="rate_limited") == 1
        assert value(m, "deepseek2api_failovers_total", error_type="rate_limited") == 1
        assert total(m, "deepseek2api_upstream_errors_total") == 1
        assert value(m, "deepseek2api_account_transitions_total", from_state="ready", to_state="cooling") == 1
        assert total(m, "deepseek2api_account_transitions_total") == 1
        assert value(m, "deepseek2api_queue_rejections_total", reason="queue_full") == 1
        assert total(m, "deepseek2api_queue_rejections_total") == 1
        grants = plain + streams + 1  # every request got one account, the failed-over one a second
        assert value(m, "deepseek2api_queue_wait_seconds_count") == grants
        assert value(m, "deepseek2api_pow_solve_seconds_count") == grants  # one completion PoW per attempt
        assert value(m, "deepseek2api_logins_total", result="ok") == 2 == stack.sim_stats()["logins"]
        assert value(m, "deepseek2api_accounts", state="ready") == 1
        assert value(m, "deepseek2api_accounts", state="cooling") == 1
        assert value(m, "deepseek2api_accounts", state="banned") == 0
        assert value(m, "deepseek2api_queue_depth") == 0
        assert value(m, "deepseek2api_capacity_streams") == 1
        assert value(m, "deepseek2api_streams_in_flight", surface="openai") == 0
        # no label carries an account or a key
        text = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        assert "sim.test" not in text and "sk-test" not in text


def test_the_anthropic_and_responses_surfaces_report_to_the_same_metrics_and_tail() -> None:
    import anthropic

    with running_stack(accounts=2) as stack:
        claude = anthropic.Anthropic(base_url=stack.base_url, api_key=API_KEY, max_retries=0)
        message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=1024,
                                         messages=[{"role": "user", "content": "hi"}])
        with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=1024,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            streamed = stream.get_final_message()
        response = stack.openai().responses.create(model="deepseek-chat", input="hello")
        assert response.usage is not None
        stack.wait_idle()

        m = scrape(stack)
        assert total(m, "deepseek2api_requests_total", surface="anthropic", stream="false", outcome="ok") == 1
        assert total(m, "deepseek2api_requests_total", surface="anthropic", stream="true", outcome="ok") == 1
        assert total(m, "deepseek2api_requests_total", surface="responses", stream="false", outcome="ok") == 1
        assert total(m, "gen_ai_server_time_to_first_token_seconds_count", surface="anthropic") == 2
        assert total(m, "deepseek2api_tokens_total", gen_ai_token_type="output") == \
            message.usage.output_tokens + streamed.usage.output_tokens + response.usage.output_tokens
        assert value(m, "deepseek2api_streams_in_flight", surface="anthropic") == 0
        entries = stack.gateway.requests.recent()
        assert [(e.surface, e.stream, e.status) for e in entries] == [
            ("anthropic", False, 200), ("anthropic", True, 200), ("responses", False, 200)]
        assert all(e.account_id in ("user1@sim.test", "user2@sim.test") and e.tokens_in for e in entries)
