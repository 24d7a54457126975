"""Shared machinery of the benchmarks: the simulator and the gateway as separate processes, a lean
HTTP/1.1 load generator in the bench process, and CPU / RSS readings from /proc.

Three processes, so each one's cost is its own: the simulator (`python -m deepseek2api.simulator`),
the gateway (`python -m deepseek2api.cli serve`) and this process, the load generator. The load
generator speaks raw HTTP/1.1 over asyncio streams (no httpx): it has to stay cheap next to the two
servers on a 2-core machine, and every figure is shown side by side with the same generator talking
to the simulator directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
try:
    from deepseek2api.deepseek import pow as pow_module
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(ROOT / "src"))
    from deepseek2api.deepseek import pow as pow_module

PYTHON = sys.executable
HOST = "127.0.0.1"
API_KEY = "sk-bench-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TINY_DIFFICULTY = 10  # a real PoW round trip whose solve costs microseconds: the gateway's own overhead
REAL_DIFFICULTY = 144_000  # what chat.deepseek.com asks for (shared/pow/README.md)
COMPLETION_PATH = "/api/v0/chat/completion"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with Simulator(...)` blocks: no orphaned servers


signal.signal(signal.SIGTERM, _exit_on_sigterm)


def use_uvloop() -> None:
    """The load generator runs on uvloop when it is installed (as both servers do, via uvicorn)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def bench_accounts(n: int) -> list[tuple[str, str]]:
    return [(f"bench{i}@sim.test", f"password-{i}") for i in range(1, n + 1)]


# ------------------------------------------------------------------------------------ /proc readings

class ProcessStats:
    """CPU seconds and memory of one process (all its threads), from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime (fields 14, 15)

    def _status_kb(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return self._status_kb("VmHWM") / 1024


class CpuMeter:
    """CPU used by a process between `start()` and `stop()`, as seconds and as % of one core."""

    def __init__(self, stats: ProcessStats) -> None:
        self.stats = stats
        self.cpu = self.wall = 0.0
        self._cpu0 = self._wall0 = 0.0

    def start(self) -> CpuMeter:
        self._cpu0, self._wall0 = self.stats.cpu_seconds(), time.perf_counter()
        return self

    def stop(self) -> CpuMeter:
        self.cpu = self.stats.cpu_seconds() - self._cpu0
        self.wall = time.perf_counter() - self._wall0
        return self

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


class RssSampler:
    """Samples a process's RSS every `interval` seconds in the background; `peak` is the highest seen."""

    def __init__(self, stats: ProcessStats, interval: float = 0.25) -> None:
        self.stats = stats
        self.interval = interval
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.stats.rss_mb())
            await asyncio.sleep(self.interval)

    def start(self) -> RssSampler:
        self.peak = self.stats.rss_mb()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.peak = max(self.peak, self.stats.rss_mb())
        return self.peak


# ------------------------------------------------------------------------------------ processes

def _http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
               timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json",
                                                                             **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


class _Child:
    """A server subprocess with its log in a temporary file; stopped (and reaped) on exit."""

    name = "child"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix=f"ds2api-bench-{self.name}-")
        self.log_path = Path(self.dir.name) / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stats(self) -> ProcessStats:
        assert self.proc is not None
        return ProcessStats(self.proc.pid)

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # BENCH_GATEWAY_SRC: run the gateway from another source tree (before/after comparisons)
        src = os.environ.get("BENCH_GATEWAY_SRC", "") if self.name == "gateway" else ""
        src = src or str(ROOT / "src")
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.dir.name)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.dir.cleanup()

    def __enter__(self) -> _Child:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Simulator(_Child):
    """`python -m deepseek2api.simulator` with `accounts` bench users."""

    name = "simulator"

    def __init__(self, accounts: int, *, difficulty: int = TINY_DIFFICULTY, tokens_per_second: float = 0.0,
                 chunk_chars: str = "1-4", events_per_write: int = 1) -> None:
        super().__init__()
        self.accounts = bench_accounts(accounts)
        self.options = {"difficulty": difficulty, "tokens_per_second": tokens_per_second,
                        "chunk_chars": chunk_chars}
        self.events_per_write = events_per_write

    def command(self) -> list[str]:
        users = ",".join(f"{email}:{password}" for email, password in self.accounts)
        return [PYTHON, "-m", "deepseek2api.simulator", "--host", HOST, "--port", str(self.port),
                "--users", users, "--difficulty", str(self.options["difficulty"]),
                "--tokens-per-second", str(self.options["tokens_per_second"]),
                "--chunk-chars", str(self.options["chunk_chars"]), "--seed", "1", "--log-level", "warning"]

    def ready(self) -> bool:
        return _http_json("GET", f"{self.base_url}/_sim/stats")[0] == 200

    def start(self, timeout: float = 60.0) -> None:
        super().start(timeout)
        if self.events_per_write != 1:
            self.configure(events_per_write=self.events_per_write)

    def configure(self, **changes: Any) -> None:
        status, body = _http_json("POST", f"{self.base_url}/_sim/config", changes)
        if status != 200:
            raise RuntimeError(f"simulator refused config {changes}: {status} {body}")

    def sim_stats(self) -> dict[str, Any]:
        return _http_json("GET", f"{self.base_url}/_sim/stats")[1]  # type: ignore[no-any-return]


class Gateway(_Child):
    """`python -m deepseek2api.cli serve --config …` in front of `simulator`."""

    name = "gateway"

    def __init__(self, simulator: Simulator, *, prewarm: bool = False, log_level: str = "info",
                 **overrides: Any) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "keys": [{"name": "bench", "key": API_KEY}],
            "accounts": [{"email": email, "password": password} for email, password in simulator.accounts],
            "server": {"host": HOST, "port": self.port, "log_level": log_level, "shutdown_grace": 2.0},
            "pool": {"prewarm": prewarm},
            "upstream": {"base_url": simulator.base_url},
            "state": {"backend": "sqlite", "path": str(Path(self.dir.name) / "state.db")},
        }
        for section, values in overrides.items():
            if isinstance(values, dict):
                self.config.setdefault(section, {}).update(values)
            else:
                self.config[section] = values

    def command(self) -> list[str]:
        path = Path(self.dir.name) / "config.json"
        path.write_text(json.dumps(self.config))
        os.chmod(path, 0o600)
        return [PYTHON, "-m", "deepseek2api.cli", "serve", "--config", str(path)]

    def ready(self) -> bool:
        return _http_json("GET", f"{self.base_url}/health")[0] == 200


# ------------------------------------------------------------------------------------ HTTP/1.1 client

class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it run one after another."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._chunked = False
        self._length: int | None = None
        self._close_after = False

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=1 << 20)
        self.writer.transport.set_write_buffer_limits(0)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> int:
        """Send a request and read the status line and headers; then read the body with
        `chunks()` or `read()` before the next request."""
        head = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{self.port}"]
        for key, value in (headers or {}).items():
            head.append(f"{key}: {value}")
        if body is not None:
            head.append("content-type: application/json")
            head.append(f"content-length: {len(body)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        for fresh in (False, True):
            reused = self.writer is not None and not self.writer.is_closing() and not fresh
            if not reused:
                self.close()
                await self._open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(message)
            try:
                status_line = await self.reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            if not reused:  # a server that closed an idle keep-alive connection: retry once on a new one
                raise HttpError("connection closed before a response")
        assert self.reader is not None
        status = int(status_line.split(b" ", 2)[1])
        self._chunked, self._length, self._close_after = False, None, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif name == b"content-length":
                self._length = int(value.strip())
            elif name == b"connection" and b"close" in value.lower():
                self._close_after = True
        return status

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (one item per HTTP chunk for chunked answers)."""
        reader = self.reader
        assert reader is not None
        if self._chunked:
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                data = await reader.readexactly(size)
                await reader.readexactly(2)
                yield data
        elif self._length is not None:
            if self._length:
                yield await reader.readexactly(self._length)
        else:
            while data := await reader.read(65536):
                yield data
            self._close_after = True
        if self._close_after:
            self.close()

    async def read(self) -> bytes:
        return b"".join([part async for part in self.chunks()])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# ------------------------------------------------------------------------------------ turns

@dataclass
class Sample:
    """One streamed turn as the client saw it."""

    ok: bool = False
    ttfb: float | None = None  # seconds from the first request byte to the first content byte
    total: float = 0.0
    chunks: int = 0  # content-bearing SSE events received
    error: str = ""


_GATEWAY_CONTENT = re.compile(rb'"delta":\{"content":"')
_GATEWAY_TAIL = 20


def chat_body(prompt: str, model: str = "deepseek-chat", tools: list[Any] | None = None) -> bytes:
    body: dict[str, Any] = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    if tools:
        body["tools"] = tools
    return json.dumps(body).encode()


async def gateway_turn(conn: Connection, prompt: str, tools: list[Any] | None = None) -> Sample:
    """One streaming chat completion through the gateway (`tools`: declared, none called)."""
    sample = Sample()
    started = time.perf_counter()
    try:
        status = await conn.request("POST", "/v1/chat/completions", chat_body(prompt, tools=tools),
                                    {"authorization": f"Bearer {API_KEY}"})
        if status != 200:
            sample.error = f"HTTP {status}: {(await conn.read())[:200]!r}"
            return sample
        tail = b""
        done = failed = False
        async for data in conn.chunks():
            text = tail + data
            found = len(_GATEWAY_CONTENT.findall(text))
            if found and sample.ttfb is None:
                sample.ttfb = time.perf_counter() - started
            sample.chunks += found
            if b"data: [DONE]" in text:
                done = True
            if b'data: {"error"' in text:
                failed = True
            tail = text[-_GATEWAY_TAIL:]
        sample.ok = done and not failed
        if not sample.ok:
            sample.error = "stream ended with an error event" if failed else "stream ended without [DONE]"
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total = time.perf_counter() - started
    return sample


class FloorRelay(_Child):
    """bench/floor_relay.py in front of `simulator`: the transport floor (curl_cffi in, uvicorn out, no
    logic), logged in with `accounts` (its own, so the gateway's tokens stay valid)."""

    name = "relay"

    def __init__(self, simulator: Simulator, accounts: list[tuple[str, str]]) -> None:
        super().__init__()
        self.simulator = simulator
        self.accounts = accounts

    def command(self) -> list[str]:
        return [PYTHON, str(ROOT / "bench" / "floor_relay.py"), "--host", HOST, "--port", str(self.port),
                "--upstream", self.simulator.base_url,
                "--accounts", ",".join(f"{email}:{password}" for email, password in self.accounts)]

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.base_url}/", timeout=5) as response:
            return bool(response.status == 200)


_TEXT_EVENT = b'data: {"v":"'  # a plain text append; the reply's first piece is inside the RESPONSE opening


async def relay_turn(conn: Connection, prompt: str) -> Sample:
    """One turn through the floor relay; `chunks` counts the upstream text pieces relayed (the same reply
    through the gateway sends one chunk per piece while pieces arrive apart)."""
    sample = Sample()
    started = time.perf_counter()
    try:
        status = await conn.request("POST", "/relay", json.dumps({"prompt": prompt}).encode())
        if status != 200:
            sample.error = f"HTTP {status}: {(await conn.read())[:200]!r}"
            return sample
        tail = b""
        pieces = 1
        async for data in conn.chunks():
            text = tail + data
            if sample.ttfb is None and b'"RESPONSE"' in text:
                sample.ttfb = time.perf_counter() - started
            pieces += text.count(_TEXT_EVENT)
            sample.ok = sample.ok or b'"FINISHED"' in text
            tail = text[-(len(_TEXT_EVENT) - 1):]
        sample.chunks = pieces
        if not sample.ok:
            sample.error = "stream ended without FINISHED"
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total = time.perf_counter() - started
    return sample


class DirectClient:
    """The same turn straight against the simulator: what the gateway does, done by the load generator
    (session and PoW concurrently, solve in a thread, completion, then delete the session)."""

    def __init__(self, port: int, email: str, password: str) -> None:
        self.main = Connection(port)
        self.side = Connection(port)
        self.email, self.password = email, password
        self.token = ""

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    async def _call(self, conn: Connection, path: str, body: dict[str, Any], auth: bool = True) -> Any:
        status = await conn.request("POST", path, json.dumps(body).encode(), self._auth() if auth else None)
        payload = json.loads(await conn.read())
        if status != 200 or payload.get("code") != 0:
            raise HttpError(f"{path}: HTTP {status} {payload}")
        return payload["data"]["biz_data"]

    async def login(self) -> None:
        data = await self._call(self.main, "/api/v0/users/login",
                                {"email": self.email, "password": self.password, "device_id": "bench",
                                 "os": "android"}, auth=False)
        self.token = data["user"]["token"]

    async def _session(self) -> str:
        data = await self._call(self.main, "/api/v0/chat_session/create", {"agent": "chat"})
        return str(data["chat_session"]["id"])

    async def _pow(self) -> str:
        data = await self._call(self.side, "/api/v0/chat/create_pow_challenge", {"target_path": COMPLETION_PATH})
        challenge = pow_module.PowChallenge.from_dict(data["challenge"])
        answer = await pow_module.solve_async(challenge)
        return pow_module.encode_pow_response(challenge, answer, COMPLETION_PATH)

    async def turn(self, prompt: str) -> Sample:
        sample = Sample()
        started = time.perf_counter()
        session_id = None
        try:
            session_id, pow_header = await asyncio.gather(self._session(), self._pow())
            body = {"chat_session_id": session_id, "parent_message_id": None, "model_type": "default",
                    "prompt": prompt, "ref_file_ids": [], "thinking_enabled": False, "search_enabled": False,
                    "preempt": False}
            status = await self.main.request("POST", COMPLETION_PATH, json.dumps(body).encode(),
                                             {**self._auth(), "x-ds-pow-response": pow_header})
            if status != 200:
                sample.error = f"HTTP {status}"
                await self.main.read()
                return sample
            tail = b""
            async for data in self.main.chunks():
                text = tail + data
                if sample.ttfb is None and b'"RESPONSE"' in text:
                    sample.ttfb = time.perf_counter() - started
                sample.chunks += text.count(b"data: ")
                if b'"FINISHED"' in text:
                    sample.ok = True
                tail = text[-10:]
            if not sample.ok:
                sample.error = "stream ended without FINISHED"
        except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
            self.main.close()
            self.side.close()
            sample.error = f"{type(exc).__name__}: {exc}"
        finally:
            sample.total = time.perf_counter() - started
            if session_id is not None:
                try:
                    await self._call(self.main, "/api/v0/chat_session/delete", {"chat_session_id": session_id})
                except (OSError, HttpError, asyncio.IncompleteReadError, ValueError):
                    self.main.close()
        return sample

    def close(self) -> None:
        self.main.close()
        self.side.close()


async def run_workers(concurrency: int, requests_each: int,
                      turn_for: Callable[[int], Callable[[], Awaitable[Sample]]], *,
                      stagger: float = 0.0, think: float = 0.0, seed: int = 1) -> list[Sample]:
    """`concurrency` workers, each running `requests_each` turns one after another.

    `stagger`: each worker starts after a random delay in [0, stagger) s; `think`: a random pause in
    [0, think) s between a worker's turns. Both keep the workers from starting their turns in lockstep
    (equal-length streams would otherwise keep every turn start in one burst, round after round).
    """
    import random

    rng = random.Random(seed)
    delays = [[rng.random() * stagger] + [rng.random() * think for _ in range(requests_each - 1)]
              for _ in range(concurrency)]

    async def worker(index: int) -> list[Sample]:
        turn = turn_for(index)
        samples = []
        for pause in delays[index]:
            if pause:
                await asyncio.sleep(pause)
            samples.append(await turn())
        return samples

    results = await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return [s for samples in results for s in samples]


# ------------------------------------------------------------------------------------ numbers

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "–"
    value = seconds * 1000
    return f"{value:.1f} ms" if abs(value) < 100 else f"{value:.0f} ms"


def ttfbs(samples: Sequence[Sample]) -> list[float]:
    return [s.ttfb for s in samples if s.ok and s.ttfb is not None]


def failures(samples: Sequence[Sample]) -> list[str]:
    return [s.error or "no content" for s in samples if not s.ok or s.ttfb is None]


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; `align` is one letter per column (l/r), default: first left, rest right."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    import platform

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"PoW backend {pow_module.active_backend()}")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


@dataclass
class Phase:
    """CPU of the gateway, the simulator and the load generator over one measured phase."""

    gateway: CpuMeter | None = None
    simulator: CpuMeter | None = None
    loadgen: CpuMeter = field(default_factory=lambda: CpuMeter(ProcessStats(os.getpid())))

    def start(self) -> Phase:
        for meter in (self.gateway, self.simulator, self.loadgen):
            if meter is not None:
                meter.start()
        return self

    def stop(self) -> Phase:
        for meter in (self.gateway, self.simulator, self.loadgen):
            if meter is not None:
                meter.stop()
        return self


def phase(gateway: _Child | None, simulator: _Child | None) -> Phase:
    return Phase(gateway=CpuMeter(gateway.stats) if gateway else None,
                 simulator=CpuMeter(simulator.stats) if simulator else None)
