"""Shared pieces of the DeepSeekClient tests: simulator setup, tiny fake servers and proxies, helpers.

Protocol tests talk to the simulator in-process (`InProcessSimulator` through `AsgiTransport`: no
socket). What is about curl itself (proxies, aborting a transfer, a real stalled socket) talks to a
loopback `SimulatorServer` or to the raw servers below. Everything listens on 127.0.0.1 only and every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deepseek2api.deepseek.client import DeepSeekClient
from deepseek2api.deepseek.events import (
    ContentDelta,
    ReasoningDelta,
    UpstreamError,
    UpstreamEvent,
)
from deepseek2api.deepseek.profile import ClientProfile
from deepseek2api.deepseek.transport_asgi import AsgiTransport
from deepseek2api.simulator import (
    SimState,
    SimulatorConfig,
    SimulatorServer,
    SimUser,
    create_app,
)

ALICE = SimUser(email="alice@example.test", password="alice-Secret-pw1")
BOB = SimUser(email="bob@example.test", password="bob-Secret-pw2")
MOBILE = SimUser(mobile="13900001111", password="mobile-Secret-pw3")
DEVICE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SMALL_DIFFICULTY = 1000


def sim_config(**overrides: Any) -> SimulatorConfig:
    """Three accounts, an easy PoW, a fixed seed."""
    values: dict[str, Any] = {"users": [ALICE, BOB, MOBILE], "difficulty": SMALL_DIFFICULTY, "seed": 7}
    values.update(overrides)
    return SimulatorConfig(**values)


class InProcessSimulator:
    """The simulator app, called in-process: its state lives on the test's own loop."""

    base_url = "http://sim.test"

    def __init__(self, config: SimulatorConfig) -> None:
        self.app = create_app(config)
        self.state: SimState = self.app.state.sim

    def transport(self) -> AsgiTransport:
        return AsgiTransport(self.app)


Sim = InProcessSimulator | SimulatorServer


def client_for(sim: Sim, *, max_clients: int = 256, **profile: Any) -> DeepSeekClient:
    """A client for this simulator: in-process through `AsgiTransport`, or curl over loopback."""
    transport = sim.transport() if isinstance(sim, InProcessSimulator) else None
    return DeepSeekClient(profile_for(sim.base_url, **profile), max_clients=max_clients, transport=transport)


def on_sim_loop(sim: Sim, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a plain function on the simulator's own loop (its state is not thread-safe)."""
    if isinstance(sim, InProcessSimulator):
        return fn(*args, **kwargs)  # that loop is this one

    async def run() -> Any:
        return fn(*args, **kwargs)

    return sim.call(run())


def reset_sim(sim: Sim, **config: Any) -> None:
    """Fresh counters, no queued faults or bans, and the given config on top of `sim_config()`."""
    base = sim_config(**config)

    def apply() -> None:
        sim.state.reset(everything=True)
        sim.state.config.update({k: getattr(base, k) for k in base.__dataclass_fields__ if k != "users"})

    on_sim_loop(sim, apply)


def queue_fault(sim: Sim, account: str, fault: str, *, on: str = "completion", count: int = 1) -> None:
    on_sim_loop(sim, sim.state.add_fault, account, fault, count, on)


async def sim_stats(sim: Sim) -> dict[str, Any]:
    """`GET /_sim/stats` (the control API, as an operator would read it)."""
    transport = httpx.ASGITransport(app=sim.app) if isinstance(sim, InProcessSimulator) else None
    async with httpx.AsyncClient(timeout=10.0, transport=transport) as http:
        response = await http.get(f"{sim.base_url}/_sim/stats")
        response.raise_for_status()
        return response.json()


async def wait_for_idle_streams(sim: Sim, *, attempts: int = 200) -> dict[str, Any]:
    """Poll the stats until no stream is active (bounded: ~10 s); returns the last stats."""
    stats = await sim_stats(sim)
    for _ in range(attempts):
        if stats["active_total"] == 0:
            break
        await asyncio.sleep(0.05)
        stats = await sim_stats(sim)
    return stats


def profile_for(base_url: str, **overrides: Any) -> ClientProfile:
    """The default (production) profile pointed at `base_url`."""
    return ClientProfile(base_url=base_url, **overrides)


async def collect(stream: AsyncIterator[UpstreamEvent], *, limit: float = 30.0) -> list[UpstreamEvent]:
    """All events of a stream (bounded in time so a broken stream fails the test instead of hanging)."""

    async def drain() -> list[UpstreamEvent]:
        return [event async for event in stream]

    return await asyncio.wait_for(drain(), limit)


def reasoning_of(events: Iterable[UpstreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


def content_of(events: Iterable[UpstreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ContentDelta))


def errors_of(events: Iterable[UpstreamEvent]) -> list[UpstreamError]:
    return [e for e in events if isinstance(e, UpstreamError)]


async def login(client: DeepSeekClient, user: SimUser = ALICE, **kwargs: Any) -> str:
    if user.email:
        return await client.login(email=user.email, password=user.password, device_id=DEVICE_ID, **kwargs)
    return await client.login(mobile=user.mobile, password=user.password, device_id=DEVICE_ID, **kwargs)


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_sim() -> InProcessSimulator:
    """A new in-process simulator for each test (creating one costs next to nothing)."""
    return InProcessSimulator(sim_config())


@pytest.fixture
async def client(fresh_sim: InProcessSimulator) -> AsyncIterator[DeepSeekClient]:
    """A client talking to `fresh_sim` in-process."""
    async with client_for(fresh_sim, max_clients=8) as ds:
        yield ds


@pytest.fixture(scope="module")
def loopback_sim() -> Iterable[SimulatorServer]:
    """One simulator on a loopback port per test module; `reset_sim` gives each test a clean state."""
    with SimulatorServer(sim_config()) as server:
        yield server


@pytest.fixture
def fresh_loopback_sim(loopback_sim: SimulatorServer) -> SimulatorServer:
    reset_sim(loopback_sim)
    return loopback_sim


@pytest.fixture
async def loopback_client(fresh_loopback_sim: SimulatorServer) -> AsyncIterator[DeepSeekClient]:
    """A client talking to `fresh_loopback_sim` through curl."""
    async with client_for(fresh_loopback_sim, max_clients=8) as ds:
        yield ds


@pytest.fixture(params=["in-process", "loopback"])
def each_sim(request: pytest.FixtureRequest) -> Sim:
    """For behaviour every transport must keep (early stop, idle timeout): once in-process, once over curl."""
    if request.param == "in-process":
        return InProcessSimulator(sim_config())
    server: SimulatorServer = request.getfixturevalue("fresh_loopback_sim")
    return server


# --------------------------------------------------------------------------------- raw test servers


@dataclass
class RawServer:
    """A loopback TCP server whose connection handler the test writes (odd upstream behaviour)."""

    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    server: asyncio.AbstractServer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                await self.handler(reader, writer)
            except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                self.tasks.discard(task)

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)


async def read_http_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """(request line, lower-cased headers, body) of one HTTP/1.1 request with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


class Socks5Proxy:
    """A minimal SOCKS5 CONNECT proxy with username/password auth (RFC 1928/1929), for one test."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.targets: list[tuple[str, int]] = []
        self.auth_failures = 0
        self._raw = RawServer(self._handle)

    @property
    def port(self) -> int:
        return self._raw.port

    def url(self, scheme: str = "socks5h", password: str | None = None) -> str:
        return f"{scheme}://{self.username}:{password or self.password}@127.0.0.1:{self.port}"

    async def __aenter__(self) -> Socks5Proxy:
        await self._raw.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._raw.__aexit__(*exc_info)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if 2 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x02")
        await reader.readexactly(1)  # sub-negotiation version
        user = await reader.readexactly((await reader.readexactly(1))[0])
        password = await reader.readexactly((await reader.readexactly(1))[0])
        if user.decode() != self.username or password.decode() != self.password:
            self.auth_failures += 1
            writer.write(b"\x01\x01")
            return
        writer.write(b"\x01\x00")
        _v, _cmd, _rsv, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif atyp == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            writer.write(b"\x05\x08\x00\x01" + bytes(6))
            return
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.targets.append((host, port))
        up_reader, up_writer = await asyncio.open_connection(host, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(6))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
