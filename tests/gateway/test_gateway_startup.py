"""Start-up and shutdown of the gateway's parts: a failed start-up still shuts down what it had started
(the upstream client's connections, the pool), and a shutdown step that fails does not skip the steps
after it (state flushes, closing connections)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from deepseek2api import server
from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.transport import Method, Response, ResponseStream, Timeouts
from deepseek2api.server import create_app
from deepseek2api.settings import Settings


class RecordingTransport:
    """A transport that is never asked to carry anything here; it only records that it was closed."""

    def __init__(self) -> None:
        self.closed = False

    async def request(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                      proxy: str | None, timeouts: Timeouts) -> Response:
        raise AssertionError("no upstream call expected")

    async def open_stream(self, method: Method, url: str, *, headers: Mapping[str, str], body: bytes | None,
                          proxy: str | None, timeouts: Timeouts) -> ResponseStream:
        raise AssertionError("no upstream call expected")

    async def aclose(self) -> None:
        self.closed = True


def _broken_start(self: object) -> None:
    raise RuntimeError("the prewarmer is unreadable")


async def test_a_failed_start_up_closes_the_client_and_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.model_validate({"keys": ["sk-test"], "state": {"backend": "memory"},
                                        "pool": {"prewarm": True}})
    transport = RecordingTransport()
    client = DeepSeekClient(settings.profile(), transport=transport)
    app = create_app(settings, client=client)
    # fails after the pool started (the tokenizer is no longer loaded at start-up: chat/usage.py)
    monkeypatch.setattr(server.TurnPrewarmer, "start", _broken_start)
    with pytest.raises(RuntimeError, match="unreadable"):
        async with app.router.lifespan_context(app):
            pass
    assert transport.closed
    assert app.state.gateway.pool._closed


class FailingClose(Exception):
    pass


async def test_a_failing_shutdown_step_does_not_skip_the_ones_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.model_validate({"keys": ["sk-test"], "state": {"backend": "memory"}})
    transport = RecordingTransport()
    app = create_app(settings, client=DeepSeekClient(settings.profile(), transport=transport))
    gateway = app.state.gateway

    async def broken_close() -> None:
        raise FailingClose("the pool could not flush")

    monkeypatch.setattr(gateway.pool, "close", broken_close)
    with pytest.raises(FailingClose):
        async with app.router.lifespan_context(app):
            pass
    assert transport.closed  # the client is closed after the pool, and still was
