"""Today's DeepSeek, part by part: the version gate on every kind of call, the persona kept across a restart,
the drift canary on real capture bytes, the tolerant settings parser, `check --live`, the simulator CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client_support import InProcessSimulator, client_for, collect, content_of, errors_of
from deepseek2api.api.admin.upstream import UpstreamPanel
from deepseek2api.background import BackgroundServer
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.decode import StreamDecoder
from deepseek2api.deepseek.drift import CANARY
from deepseek2api.deepseek.errors import ErrorKind, UpstreamFailure, classify_envelope
from deepseek2api.deepseek.events import ContentDelta, ReasoningDelta
from deepseek2api.deepseek.files import FileUpload, upload_file
from deepseek2api.deepseek.modes import parse_model_settings
from deepseek2api.deepseek.profile import ClientProfile, Identity
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator
from deepseek2api.simulator.cli import build_parser, config_from_args
from deepseek2api.simulator.config import preset_token
from deepseek2api.store.runtime_settings import SqliteRuntimeSettings
from late2026_support import late_config, token_accounts

REPO = Path(__file__).resolve().parents[2]
STALE = Identity(persona="android", version="1.6.11")


def stale_client(sim: InProcessSimulator) -> DeepSeekClient:
    client = client_for(sim)
    client.set_identity(STALE)
    return client


def test_the_version_gate_body_is_its_own_kind_on_every_endpoint() -> None:
    body = {"code": 40005, "msg": "CLIENT_VERSION_TOO_LOW", "data": None}
    assert classify_envelope(body) is not None and classify_envelope(body).kind is ErrorKind.CLIENT_TOO_OLD  # type: ignore[union-attr]
    assert classify_envelope(body, login=True).kind is ErrorKind.CLIENT_TOO_OLD  # type: ignore[union-attr]
    assert ErrorKind.CLIENT_TOO_OLD.gateway_wide and not ErrorKind.CLIENT_TOO_OLD.blames_account
    assert not ErrorKind.CLIENT_TOO_OLD.try_another_account_before_prompt
    risk = {"code": 0, "msg": "", "data": {"biz_code": 11, "biz_msg": "RISK_DEVICE_DETECTED", "biz_data": None}}
    refused = classify_envelope(risk, login=True)
    assert refused is not None and refused.kind is ErrorKind.NEEDS_TOKEN and "userToken" in refused.message


async def test_the_gate_is_recognised_on_login_session_pow_completion_and_upload() -> None:
    config = late_config(1)
    sim = InProcessSimulator(config)
    user = config.users[0]
    token = preset_token(user.account)
    client = stale_client(sim)
    calls = {
        "login": lambda: client.login(password=user.password, email=user.email, device_id="d" * 32),
        "session": lambda: client.create_session(token),
        "pow": lambda: client.create_pow_challenge(token, "/api/v0/chat/completion"),
        "upload": lambda: upload_file(client, token, FileUpload("a.txt", "text/plain", b"hello")),
    }
    for name, call in calls.items():
        with pytest.raises(UpstreamFailure) as caught:
            await call()
        assert caught.value.kind is ErrorKind.CLIENT_TOO_OLD, name
        assert "x-client-version 1.6.11" in caught.value.error.message and "upstream.client_version" in \
            caught.value.error.message
    events = await collect(client.completion(token, session_id="x", prompt="hi", pow_header="p", thinking=False,
                                             search=False))
    assert [e.kind for e in errors_of(events)] == [ErrorKind.CLIENT_TOO_OLD]
    assert client.gate.count == 5 and client.gate.state().refused
    client.set_identity(Identity())  # the default persona passes
    assert not client.gate.state().refused
    session = await client.create_session(token)
    header = await client.pow_header(token, "/api/v0/chat/completion")
    events = await collect(client.completion(token, session_id=session, prompt="hi", pow_header=header,
                                             thinking=False, search=False))
    assert content_of(events) and not errors_of(events)
    assert sim.state.stats()["version_refusals"] == 5
    await client.aclose()


async def test_a_persona_set_in_the_console_survives_a_restart_until_the_config_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    configured = Identity()
    first = DeepSeekClient(ClientProfile(base_url="http://127.0.0.1:9"))
    store = SqliteRuntimeSettings(path)
    view = await UpstreamPanel(first, configured, store).set_identity({"persona": "web", "version": "2.1.0"})
    assert view["sent"] == "persona web, x-client-version 2.1.0" and first.profile.impersonate == "chrome146"
    await store.close()
    await first.aclose()
    again = DeepSeekClient(ClientProfile(base_url="http://127.0.0.1:9"))
    store = SqliteRuntimeSettings(path)
    panel = UpstreamPanel(again, configured, store)
    await panel.load()  # "after the restart"
    assert panel.source == "console" and again.profile.client_version == "2.1.0"
    assert {k.lower(): v for k, v in again.profile.headers.items()}["x-client-platform"] == "web"
    await store.close()
    await again.aclose()
    edited = DeepSeekClient(ClientProfile(base_url="http://127.0.0.1:9"))
    store = SqliteRuntimeSettings(path)
    panel = UpstreamPanel(edited, Identity(version="2.0.9"), store)  # the operator edited config.json since
    await panel.load()
    assert panel.source == "config" and await store.get("upstream.identity") is None
    await store.close()
    await edited.aclose()


def _capture(name: str) -> bytes:
    return (REPO / "tests" / "data" / "upstream-samples" / name / "upstream.stream.sse").read_bytes()


def _texts(body: bytes, decoder: StreamDecoder) -> tuple[str, str]:
    events = decoder.feed(body) + decoder.close()
    return ("".join(e.text for e in events if isinstance(e, ReasoningDelta)),
            "".join(e.text for e in events if isinstance(e, ContentDelta)))


def test_unknown_shapes_in_real_bytes_leave_the_answer_exact_and_are_counted() -> None:
    original = _capture("longtext-deepseek-v4-flash-20260429")
    known = StreamDecoder()
    expected = _texts(original, known)
    assert expected[1] and known.unknown == {}  # the real capture holds nothing unknown
    lines = original.split(b"\n\n")
    novel = [b'event: telemetry\ndata: {"stage":"begin"}',
             b'data: {"p":"response/agent_state","o":"SET","v":{"phase":"answer"}}',
             b'data: {"p":"response/fragments","o":"APPEND","v":[{"id":90,"type":"SUGGESTION","content":null}]}']
    at = len(lines) - 4  # before the final status and close
    drifted = b"\n\n".join(lines[:3] + novel[:1] + lines[3:at] + novel[1:] + lines[at:])
    before = dict(CANARY.counts)
    decoder = StreamDecoder()
    assert _texts(drifted, decoder) == expected
    assert set(decoder.unknown) == {("event", "telemetry"), ("path", "response/agent_state"),
                                    ("fragment", "SUGGESTION")}
    for kind in ("event", "path", "fragment"):
        assert CANARY.counts[kind] == before.get(kind, 0) + 1
    assert all("answer" not in sample or sample == "object{phase}" for sample in decoder.unknown.values())


def test_the_settings_answer_is_read_tolerantly() -> None:
    shapes: list[tuple[Any, dict[str, bool]]] = [
        ({"data": {"biz_data": {"model_configs": [{"model_type": "expert", "enabled": False},
                                                  {"model_type": "default", "enabled": True}]}}},
         {"expert": False, "default": True}),
        ({"data": {"biz_data": {"models": {"vision": {"is_enabled": 0}, "expert": True}}}}, {"vision": False,
                                                                                             "expert": True}),
        ({"data": {"biz_data": {"expert_enabled": False}}}, {"expert": False}),
        ({"data": {"biz_data": {"something": "else", "list": [1, "x", None]}}}, {}),
        (None, {}), ("text", {}), ([{"name": "vision", "disabled": True}], {"vision": False}),
    ]
    for answer, expected in shapes:
        assert dict(parse_model_settings(answer).enabled) == expected


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("DS2API_CONFIG", None)
    env.pop("DS2API_CONFIG_JSON", None)
    return subprocess.run([sys.executable, "-m", "deepseek2api.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=REPO)


def test_check_live_passes_and_fails_where_it_should(tmp_path: Path) -> None:
    sim_config = late_config(2)
    with BackgroundServer(create_simulator(sim_config)) as simulator:
        config = tmp_path / "config.json"

        def write(**upstream: Any) -> None:
            config.write_text(json.dumps({
                "keys": ["k"], "accounts": token_accounts(sim_config),
                "upstream": {"base_url": simulator.base_url, "impersonate": None, **upstream},
                "state": {"backend": "memory"},
            }))
            config.chmod(0o600)

        write()
        passed = _run_cli("check", "--live", "--config", str(config))
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "persona android, x-client-version 2.0.4" in passed.stdout
        for step in ("token", "model settings", "session create", "pow", "completion", "session delete"):
            assert f"user1@sim.test  {step}" in passed.stdout
        assert "expert off" in passed.stdout and "DeepSeekHashV1, difficulty 2000" in passed.stdout
        assert "unknown stream shape: path response/agent_state" in passed.stdout
        assert passed.stdout.rstrip().endswith("2 of 2 account(s) passed the live probe")
        assert all(preset_token(u.account) not in passed.stdout + passed.stderr for u in sim_config.users)

        write(client_version="1.6.11")
        failed = _run_cli("check", "--live", "--config", str(config))
        assert failed.returncode == 1
        assert "client_too_old" in failed.stdout and "CLIENT_VERSION_TOO_LOW" in failed.stdout
        assert "failed: user1@sim.test, user2@sim.test" in failed.stdout


def test_the_simulator_cli_selects_the_late_2026_profile() -> None:
    config = config_from_args(build_parser().parse_args(["--profile", "late-2026", "--users", "a@x.test:pw"]))
    assert (config.profile, config.min_client_version, config.risk_control_logins, config.drift_fields) == \
        ("late-2026", "2.0.0", True, True)
    assert config.disabled_modes == ("expert", "vision") and config.users[0].token == preset_token("a@x.test")
    current = config_from_args(build_parser().parse_args([]))
    assert current.profile == "current" and current.min_client_version is None and not current.disabled_modes
    # the same from the config object and from /_sim/config (explicit knobs win over the profile's)
    built = SimulatorConfig(users=[SimUser(email="b@x.test", password="pw")], profile="late-2026")
    assert built.min_client_version == "2.0.0" and built.drift_fields and built.users[0].token
    built.update({"profile": "current"})
    assert (built.min_client_version, built.disabled_modes, built.risk_control_logins) == (None, (), False)
    built.update({"profile": "late-2026", "drift_fields": False})
    assert built.risk_control_logins and not built.drift_fields
    with pytest.raises(ValueError):
        built.update({"profile": "2027"})


def test_an_unknown_status_value_is_counted_and_the_answer_stays() -> None:
    body = (b'event: ready\ndata: {"request_message_id":1,"response_message_id":2}\n\n'
            b'data: {"v":{"response":{"message_id":2,"status":"WIP","fragments":[{"id":1,"type":"RESPONSE",'
            b'"content":"Hel"}]}}}\n\n'
            b'data: {"p":"response/fragments/-1/content","o":"APPEND","v":"lo"}\n\n'
            b'data: {"p":"response","o":"BATCH","v":[{"p":"quasi_status","v":"THROTTLED"}]}\n\n'
            b'data: {"p":"response/status","o":"SET","v":"FINISHED"}\n\nevent: close\ndata: {}\n\n')
    decoder = StreamDecoder()
    assert _texts(body, decoder) == ("", "Hello")
    assert decoder.unknown == {("status", "THROTTLED"): ""}
