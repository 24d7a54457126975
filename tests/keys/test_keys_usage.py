"""Keys for people: usage per key and model equals what the clients were told, survives a
restart, and keys made through the admin API are shown once and work at once."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from gateway_support import API_KEY, running_stack

ADMIN = "sk-admin-key-000000000000"
KEYS: list[dict[str, Any]] = [{"name": "test", "key": API_KEY}, {"name": "alice", "key": "sk-alice-000000000000"}]


def _admin(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)


def _usage(base_url: str, **params: str) -> dict[str, Any]:
    with _admin(base_url) as admin:
        response = admin.get("/admin/api/usage", params=params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def test_usage_per_key_and_model_is_the_sum_of_what_the_clients_received() -> None:
    with running_stack(accounts=2, keys=KEYS, admin_keys=[{"name": "admin", "key": ADMIN}]) as stack:
        client = stack.openai(api_key="sk-alice-000000000000")
        sent: dict[str, list[int]] = {}

        def add(model: str, prompt: int, completion: int, reasoning: int) -> None:
            totals = sent.setdefault(model, [0, 0, 0, 0])
            totals[0] += 1
            totals[1] += prompt
            totals[2] += completion
            totals[3] += reasoning

        for model in ("deepseek-chat", "deepseek-reasoner"):
            done = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
            assert done.usage is not None
            details = done.usage.completion_tokens_details
            add(model, done.usage.prompt_tokens, done.usage.completion_tokens,
                details.reasoning_tokens or 0 if details else 0)
        chunks = client.chat.completions.create(model="deepseek-chat", stream=True, stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "stream please"}])
        usage = [c.usage for c in chunks if c.usage is not None]
        assert len(usage) == 1
        add("deepseek-chat", usage[0].prompt_tokens, usage[0].completion_tokens, 0)
        answer = client.responses.create(model="deepseek-chat", input="a responses turn")
        assert answer.usage is not None
        add("deepseek-chat", answer.usage.input_tokens, answer.usage.output_tokens, 0)
        claude = anthropic.Anthropic(base_url=stack.base_url, api_key="sk-alice-000000000000", max_retries=0)
        message = claude.messages.create(model="deepseek-chat", max_tokens=256,
                                         messages=[{"role": "user", "content": "an anthropic turn"}])
        add("deepseek-chat", message.usage.input_tokens, message.usage.output_tokens, 0)
        stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "other"}])
        stack.wait_idle()

        rows = _usage(stack.base_url, key="alice")["rows"]
        got = {row["model"]: [row["requests"], row["prompt_tokens"], row["completion_tokens"],
                              row["reasoning_tokens"]] for row in rows}
        assert {m: v[:3] for m, v in got.items()} == {m: v[:3] for m, v in sent.items()}
        assert got["deepseek-reasoner"][3] == sent["deepseek-reasoner"][3] > 0
        assert all(row["key"] == "alice" and row["errors"] == 0 and row["stream_seconds"] > 0 for row in rows)
        assert {row["key"] for row in _usage(stack.base_url)["rows"]} == {"alice", "test"}
        only_reasoner = _usage(stack.base_url, model="deepseek-reasoner")["rows"]
        assert [r["model"] for r in only_reasoner] == ["deepseek-reasoner"]
        minutes = _usage(stack.base_url, span="minute", key="alice")
        assert minutes["totals"]["requests"] == sum(v[0] for v in sent.values())

        with _admin(stack.base_url) as admin:
            text = admin.get("/admin/api/usage", params={"format": "csv", "key": "alice"})
            assert text.headers["content-type"].startswith("text/csv")
            table = list(csv.DictReader(io.StringIO(text.text)))
            assert {r["model"]: int(r["prompt_tokens"]) for r in table} == {m: v[1] for m, v in sent.items()}
            series = admin.get("/admin/api/usage/series", params={"range": "hour"}).json()
            assert sum(series["by_key"]["alice"]["requests"]) == sum(v[0] for v in sent.values())
            assert series["timeline"]["points"] and series["timeline"]["points"][-1]["ttft_p50"] > 0
            assert admin.get("/admin/api/usage", params={"since": "yesterday"}).status_code == 400
            assert httpx.get(f"{stack.base_url}/admin/api/usage", headers={"authorization": f"Bearer {API_KEY}"}
                             ).status_code == 403  # a client key is not an admin key


def test_key_crud_shows_the_key_once_and_it_works_at_once() -> None:
    with running_stack(accounts=1, keys=KEYS, admin_keys=[{"name": "admin", "key": ADMIN}]) as stack:
        with _admin(stack.base_url) as admin:
            made = admin.post("/admin/api/keys", json={"name": "bob", "models": ["deepseek-chat"], "rpm": 30,
                                                       "note": "Bob's laptop"})
            assert made.status_code == 201, made.text
            key = made.json()["key"]
            assert key.startswith("sk-ds2-") and len(key) > 40
            listing = admin.get("/admin/api/keys")
            assert key not in listing.text and "sk-alice" not in listing.text and API_KEY not in listing.text
            bob = next(k for k in listing.json()["keys"] if k["name"] == "bob")
            assert bob["origin"] == "console" and bob["rpm"] == 30 and bob["note"] == "Bob's laptop"
            assert admin.post("/admin/api/keys", json={"name": "bob"}).status_code == 409
            assert admin.post("/admin/api/keys", json={"name": "x", "rpm": -1}).status_code == 400
            assert admin.post("/admin/api/keys", json={"name": "x", "color": "red"}).status_code == 400
            assert admin.patch("/admin/api/keys/alice", json={"rpm": 1}).status_code == 409  # config.json's

            client = stack.openai(api_key=key)
            assert client.chat.completions.create(model="deepseek-chat",
                                                  messages=[{"role": "user", "content": "hi"}]).choices
            assert admin.patch("/admin/api/keys/bob", json={"models": ["deepseek-reasoner"]}).status_code == 200
            response = httpx.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                                  headers={"authorization": f"Bearer {key}"},
                                  json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 403
            assert admin.patch("/admin/api/keys/bob", json={"enabled": False}).status_code == 200
            assert httpx.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {key}"},
                              json={"model": "deepseek-reasoner", "messages": []}).status_code in (400, 401)
            assert admin.delete("/admin/api/keys/bob").status_code == 200
            gone = httpx.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {key}"},
                              json={"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "x"}]})
            assert gone.status_code == 401
            assert admin.delete("/admin/api/keys/bob").status_code == 404
            assert all(k["name"] != "bob" for k in admin.get("/admin/api/keys").json()["keys"])


def test_counts_keys_and_daily_limits_survive_a_restart(tmp_path: Path) -> None:
    state = {"backend": "sqlite", "path": str(tmp_path / "state.db")}
    config = tmp_path / "config.json"
    keys = [*KEYS, {"name": "capped", "key": "sk-capped-00000000000", "tokens_per_day": 1}]
    with running_stack(accounts=1, keys=keys, admin_keys=[{"name": "admin", "key": ADMIN}], state=state) as stack:
        with _admin(stack.base_url) as admin:
            key = admin.post("/admin/api/keys", json={"name": "carol"}).json()["key"]
        done = stack.openai(api_key=key).chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "remember me"}])
        assert done.usage is not None
        stack.openai(api_key="sk-capped-00000000000").chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "use it up"}])
        stack.wait_idle()
    assert not config.exists()  # never written into a config file
    with running_stack(accounts=1, keys=keys, admin_keys=[{"name": "admin", "key": ADMIN}], state=state) as stack:
        rows = _usage(stack.base_url, key="carol")["rows"]
        assert [(r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
            (1, done.usage.prompt_tokens, done.usage.completion_tokens)]
        assert stack.openai(api_key=key).chat.completions.create(  # the console's key still opens the gateway
            model="deepseek-chat", messages=[{"role": "user", "content": "still here"}]).choices
        refused = httpx.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                             headers={"authorization": "Bearer sk-capped-00000000000"},
                             json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "more"}]})
        assert refused.status_code == 429 and refused.headers["x-ratelimit-remaining-tokens"] == "0"
    raw = (tmp_path / "state.db").read_bytes()
    assert key.encode() not in raw  # only the digest is kept


@pytest.mark.parametrize("span", ["hour", "day", "month"])
def test_series_ranges(span: str) -> None:
    with running_stack(accounts=1, keys=KEYS, admin_keys=[{"name": "admin", "key": ADMIN}]) as stack:
        stack.openai().chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "x"}])
        stack.wait_idle()
        time.sleep(0.05)
        with _admin(stack.base_url) as admin:
            series = admin.get("/admin/api/usage/series", params={"range": span}).json()
        assert len(series["by_model"]["deepseek-chat"]["tokens"]) == series["count"]
        assert sum(series["by_model"]["deepseek-chat"]["requests"]) == 1


@pytest.mark.parametrize("per_key", [False, True])
def test_metrics_by_key_name_are_opt_in_and_never_carry_the_key(per_key: bool) -> None:
    with running_stack(accounts=1, keys=KEYS, metrics={"per_key": per_key}) as stack:
        done = stack.openai(api_key="sk-alice-000000000000").chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "metrics"}])
        stack.wait_idle()
        text = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
        assert "sk-alice" not in text and API_KEY not in text
        if not per_key:
            assert "deepseek2api_key_" not in text
            return
        assert 'deepseek2api_key_requests_total{key="alice",model="deepseek-chat"} 1.0' in text
        assert done.usage is not None
        assert (f'deepseek2api_key_tokens_total{{key="alice",model="deepseek-chat",type="input"}} '
                f'{float(done.usage.prompt_tokens)}') in text
        assert 'deepseek2api_key_streams{key="alice"} 0.0' in text
