"""The `/_sim/` control API, the config, the CLI parser and the synthetic replies."""

from __future__ import annotations

import pytest

from deepseek2api.simulator import FAULT_NAMES, SimulatorConfig, SimUser, demo_config, reply_for
from deepseek2api.simulator.cli import build_parser, config_from_args
from deepseek2api.simulator.replies import parse_directives
from simulator_support import EMAIL, asgi_client, complete, decode, login, new_session, small_config, state_of


async def test_stats_count_endpoints_and_reset_zeroes_them() -> None:
    async with asgi_client() as client:
        token = await login(client)
        await complete(client, token, await new_session(client, token), "x")
        stats = (await client.get("/_sim/stats")).json()
        assert stats["requests"] == {"login": 1, "create_session": 1, "create_pow_challenge": 1, "completion": 1}
        assert [stats[k] for k in ("logins", "sessions_created", "pow_challenges", "completions")] == [1, 1, 1, 1]
        assert stats["violations"] == 0 and stats["active_total"] == 0 and stats["max_concurrent"] == {EMAIL: 1}
        state_of(client).violations = 3
        after = (await client.post("/_sim/reset")).json()
        assert after["violations"] == 0 and after["requests"] == {} and after["max_concurrent"] == {}
        assert after["tokens"] == 1 and after["sessions"] == 1  # kept unless {"all": true}
        everything = (await client.post("/_sim/reset", json={"all": True})).json()
        assert everything["tokens"] == 0 and everything["sessions"] == 0


async def test_config_endpoint_reads_and_changes_live_settings() -> None:
    async with asgi_client() as client:
        current = (await client.get("/_sim/config")).json()
        assert current["difficulty"] == 64 and "password" not in str(current)
        changed = (await client.post("/_sim/config", json={"difficulty": 10, "stream_format": "b",
                                                           "chunk_chars": [2, 2], "tokens_per_second": None})).json()
        assert (changed["difficulty"], changed["stream_format"], changed["chunk_chars"]) == (10, "B", [2, 2])
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), "now in B")
        assert '"thinking_content"' in r.text
        for bad in ({"difficulty": 0}, {"stream_format": "Z"}, {"nope": 1}, {"over_limit": "drop"},
                    {"fault_rates": {"explode": 1}}):
            r = await client.post("/_sim/config", json=bad)
            assert r.status_code == 400 and r.json()["error"]
        assert (await client.get("/_sim/config")).json()["difficulty"] == 10


async def test_config_can_add_users() -> None:
    async with asgi_client() as client:
        r = await client.post("/_sim/config", json={"users": [{"email": "new@sim.test", "password": "pw"}]})
        assert r.json()["users"] == [{"email": "new@sim.test", "mobile": None, "banned": False}]
        assert await login(client, "new@sim.test", "pw")


async def test_faults_endpoint_validates_and_clears() -> None:
    async with asgi_client() as client:
        for bad in ({"account": "ghost@x", "fault": "busy"}, {"account": EMAIL, "fault": "explode"},
                    {"account": EMAIL, "fault": "busy", "count": -1},
                    {"account": EMAIL, "fault": "busy", "on": "nowhere"}, {"fault": "busy"}):
            r = await client.post("/_sim/faults", json=bad)
            assert r.status_code == 400, bad
        await client.post("/_sim/faults", json={"account": EMAIL, "fault": "mute", "count": 3})
        assert (await client.get("/_sim/faults")).json() == {EMAIL: [{"fault": "mute", "count": 3, "on": "completion"}]}
        assert (await client.post("/_sim/faults", json={"account": EMAIL, "clear": True})).json() == {}


def test_config_validation_and_helpers() -> None:
    assert SimulatorConfig().stream_format == "C" and SimulatorConfig(stream_format="c′").stream_format == "C'"
    with pytest.raises(ValueError):
        SimulatorConfig(chunk_chars=(3, 2))
    with pytest.raises(ValueError):
        SimUser(password="x")
    assert SimUser.parse("a@x:p:w") == SimUser(password="p:w", email="a@x")
    assert SimUser.parse("13800000000:pw").mobile == "13800000000"
    demo = demo_config(2)
    assert [u.email for u in demo.users] == ["demo1@simulator.local", "demo2@simulator.local"]
    assert [u.password for u in demo.users] == ["demo-password-1", "demo-password-2"]
    assert demo.difficulty == 20000


def test_cli_arguments_build_a_config() -> None:
    args = build_parser().parse_args(["--port", "6000", "--difficulty", "1000", "--users", "a@x:pw,13900000000:pw2",
                                      "--format", "A", "--fault-rate", "busy=0.5", "--chunk-chars", "2-5",
                                      "--tokens-per-second", "0", "--no-pow", "--seed", "3"])
    config = config_from_args(args)
    assert [u.account for u in config.users] == ["a@x", "13900000000"]
    assert (config.difficulty, config.stream_format, config.fault_rates) == (1000, "A", {"busy": 0.5})
    assert (config.chunk_chars, config.tokens_per_second, config.pow_required, config.seed) == ((2, 5), None, False, 3)
    demo = config_from_args(build_parser().parse_args([]))
    assert len(demo.users) == 3 and demo.difficulty == 20000


def test_reply_for_is_deterministic_and_says_it_is_synthetic() -> None:
    a = reply_for("Hello  world\n", thinking=True, search=True)
    assert a == reply_for("Hello  world\n", thinking=True, search=True)
    assert "DeepSeek2API simulator" in a.content and '"Hello world"' in a.content
    assert "[citation:1]" in a.content and "[citation:2]" in a.content and len(a.results) in (2, 3)
    assert [r["cite_index"] for r in a.results] == list(range(1, len(a.results) + 1))
    assert a.reasoning and reply_for("Hello world", thinking=False, search=False).reasoning == ""
    # the last user turn of a flattened prompt is what gets echoed; directives are not echoed
    flat = "Be terse.<｜User｜>Hi<｜Assistant｜>Hello.<｜end▁of▁sentence｜><｜User｜>2+2? [sim:words=3]"
    b = reply_for(flat, thinking=False, search=False)
    assert 'You wrote: "2+2?"' in b.content and "sim:" not in b.content
    assert len(b.content.split('"2+2?"')[1].split()) == 3
    assert reply_for("x [sim:reply=Exactly this.]", thinking=False, search=False).content == "Exactly this."


def test_directives_are_parsed_anywhere() -> None:
    d = parse_directives("a [sim:fault=cut,slow] b [sim:fault=mute] [sim:stall=1.5] [sim:words=7] [sim:format=B] "
                         "[sim:rounds=3] [sim:words=bad]")
    assert d.faults == ("cut", "slow", "mute") and d.stall == 1.5 and d.words == 7
    assert d.format == "B" and d.rounds == 3
    assert set(d.faults) <= FAULT_NAMES


async def test_seeded_streams_are_reproducible() -> None:
    bodies = []
    for _ in range(2):
        async with asgi_client(small_config(seed=11)) as client:
            token = await login(client)
            r = await complete(client, token, await new_session(client, token), "same", thinking=True)
            bodies.append([line for line in r.text.split("\n") if "updated_at" not in line
                           and "inserted_at" not in line and "elapsed_secs" not in line])
            assert decode(r.content).status == "FINISHED"
    assert bodies[0] == bodies[1]
