"""Every way of starting the gateway runs uvicorn on uvloop with the httptools parser: `deepseek2api
serve`, `python app.py` (entry.run) and a plain `uvicorn app:app`, whose defaults pick both when installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from deepseek2api import cli, entry, serve
from deepseek2api.settings import Settings

CONFIG = {"keys": [{"name": "t", "key": "sk-test-event-loop-0123"}],
          "accounts": [{"email": "a@sim.test", "password": "pw"}],
          "state": {"backend": "memory"}}


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    servers: list[Any] = []
    monkeypatch.setattr(cli, "run_server", servers.append)  # build the server, do not run it
    monkeypatch.setattr(serve, "run_server", servers.append)  # the same for entry.py (serve.py holds it)
    return servers


def _assert_uvloop_and_httptools(config: uvicorn.Config) -> None:
    assert config.loop == "uvloop"
    assert isinstance(config.http, type) and issubclass(config.http, HttpToolsProtocol)
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_serve_runs_on_uvloop_with_httptools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    path.chmod(0o600)
    servers = _captured(monkeypatch)
    assert cli.main(["serve", "--config", str(path), "--port", "0"]) == 0
    assert len(servers) == 1
    _assert_uvloop_and_httptools(servers[0].config)


def test_python_app_py_runs_on_uvloop_with_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = _captured(monkeypatch)
    settings = Settings.model_validate(CONFIG)
    entry.run(object(), settings)
    _assert_uvloop_and_httptools(servers[0].config)


def test_plain_uvicorn_defaults_pick_uvloop_and_httptools() -> None:
    """`uvicorn app:app` without options: uvicorn's "auto" choices load uvloop and httptools when installed
    (they come with `uvicorn[standard]`, a dependency); h11 and asyncio are only the fallback."""
    config = uvicorn.Config(object())
    config.load()
    assert issubclass(config.http_protocol_class, HttpToolsProtocol)
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_asyncio_only_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now raises ImportError
    assert serve.event_loop() == "asyncio"
