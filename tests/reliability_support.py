"""Shared pieces of the reliability tests (issue #6) and of `bench/soak.py`.

- `GatewayProcess`: the real CLI (`python -m deepseek2api serve`) as a child process, always killed on exit;
- `config_dict` / `write_config`: a gateway config file pointing at an in-process simulator;
- `EvilUpstream`: the simulator with a completion route that misbehaves at the byte level on demand;
- `SecretCollector`: every DeepSeek token and `x-ds-pow-response` value the simulator saw;
- the fault soak: `SoakOptions`, `soak_stack`, `run_soak` → `SoakReport` (also used by bench/soak.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

from deepseek2api.background import BackgroundServer, free_port
from deepseek2api.server import create_app
from deepseek2api.simulator import SimulatorConfig, SimUser
from deepseek2api.simulator import create_app as create_simulator
from deepseek2api.simulator.replies import reply_for
from deepseek2api.simulator.streams import FragmentWriter, MessageMeta
from gateway_support import API_KEY, TEST_DIFFICULTY, Stack, _merge, gateway_settings, running_stack, sim_users

ERROR_KEYS = {"message", "type", "param", "code"}


def rendered(content: str, results: list[dict[str, Any]]) -> str:
    """The simulator's raw content with `[citation:N]` rendered as Markdown links, as the gateway does."""
    urls = {r["cite_index"]: r["url"] for r in results}
    return re.sub(r"\[citation:(\d+)\]", lambda m: f"[{m.group(1)}]({urls[int(m.group(1))]})", content)


def expected_reply(prompt: str, *, thinking: bool) -> tuple[str, str]:
    """(content, reasoning) the gateway must deliver for `prompt` (search off)."""
    reply = reply_for(prompt, thinking=thinking, search=False)
    return rendered(reply.content, reply.results), reply.reasoning


def is_error_envelope(body: Any) -> bool:
    """The OpenAI error envelope: {"error": {message, type, param, code}} with a non-empty message."""
    return (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and set(body["error"]) == ERROR_KEYS and isinstance(body["error"]["message"], str)
            and bool(body["error"]["message"].strip()) and isinstance(body["error"]["type"], str))


class ErrorLog(logging.Handler):
    """Collects ERROR records from the root logger (a stack trace in the log is a bug even behind a clean answer)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


@contextlib.contextmanager
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


# ---------------------------------------------------------------------------------- config files


def config_dict(simulator_url: str, users: list[SimUser], **overrides: Any) -> dict[str, Any]:
    """A gateway config (as JSON data) for `users` on the simulator at `simulator_url`."""
    base: dict[str, Any] = {
        "keys": [{"name": "test", "key": API_KEY}],
        "accounts": [{"email": u.email, "password": u.password} for u in users],
        "server": {"keepalive_interval": 5.0, "shutdown_grace": 5.0, "log_level": "info"},
        "pool": {"queue_timeout": 10.0},
        "upstream": {"base_url": simulator_url, "impersonate": None, "idle_timeout": 30.0},
        "state": {"backend": "memory"},
    }
    return _merge(base, overrides)


def write_config(path: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(data, indent=2))
    os.chmod(path, mode)
    return path


def integrity_check(db_path: Path) -> str:
    """`PRAGMA integrity_check` of a state database (read by a fresh connection, as after a crash)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def stored_states(db_path: Path) -> dict[str, dict[str, Any]]:
    """The `accounts` table of a state database, by account id."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT id, token, status, reason FROM accounts").fetchall()
    finally:
        conn.close()
    return {row[0]: {"token": row[1], "status": row[2], "reason": row[3]} for row in rows}


# ---------------------------------------------------------------------------------- subprocess gateway


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DS2API_")}
    env["PYTHONUNBUFFERED"] = "1"
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(*args: str, timeout: float = 30.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m deepseek2api ARGS` to completion (bounded), output captured."""
    return subprocess.run([sys.executable, "-m", "deepseek2api", *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), cwd=cwd)


class GatewayProcess:
    """`python -m deepseek2api serve --config PATH` on a loopback port; killed (-9) on exit if still alive.

    stderr goes to a file (a pipe nobody reads could fill up and block the child).
    """

    def __init__(self, config_path: Path, *, log_level: str | None = None, port: int | None = None) -> None:
        self.config_path = config_path
        self.port = port or free_port()
        self.log_level = log_level
        self.stderr_path = config_path.with_name(f"{config_path.stem}.{self.port}.stderr.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        args = [sys.executable, "-m", "deepseek2api", "serve", "--config", str(self.config_path),
                "--host", "127.0.0.1", "--port", str(self.port)]
        if self.log_level:
            args += ["--log-level", self.log_level]
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr, env=child_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode} during start:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway did not become healthy within {timeout} s:\n{self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap (bounded)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def __enter__(self) -> GatewayProcess:
        try:
            return self.start()
        except BaseException:
            self.kill()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def port_refuses(port: int) -> bool:
    """True when nothing accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(("127.0.0.1", port))
        except (TimeoutError, ConnectionRefusedError, OSError):
            return True
    return False


# ---------------------------------------------------------------------------------- secrets


class SecretCollector:
    """Records every token the simulator issues and every PoW header it verifies (wraps its state)."""

    def __init__(self, simulator_app: Any) -> None:
        state = simulator_app.state.sim
        self.tokens: list[str] = []
        self.pow_headers: list[str] = []
        issue, verify = state.issue_token, state.pow.verify

        def issue_token(user: SimUser) -> str:
            token = issue(user)
            self.tokens.append(token)
            return token

        def verify_pow(header: str | None, path: str) -> Any:
            if header:
                self.pow_headers.append(header)
            return verify(header, path)

        state.issue_token = issue_token
        state.pow.verify = verify_pow


# ---------------------------------------------------------------------------------- evil upstream

EVIL = re.compile(r"\[evil:([a-z_]+)\]")


class EvilUpstream:
    """The simulator, except that a completion whose prompt says `[evil:NAME]` gets a broken body.

    Names: `random` (seeded random bytes as SSE), `html` (an HTML page with 200), `invalid_json`
    (SSE `data:` lines that are not JSON), `no_finish` (a well-formed reply that just stops: no status,
    no close), `truncated` (the simulator's real reply cut in the middle of a line), `endless` (a
    reply that never ends, one piece every 20 ms), `hang` (a few words, then silence until the gateway
    hangs up). Login, sessions and PoW are the simulator's own; `delays` slows chosen simulator routes.
    """

    def __init__(self, app: Any, *, delays: dict[str, float] | None = None) -> None:
        self.app = app
        self.state = app.state  # like the simulator app: `.state.sim` is its SimState
        self.delays = delays or {}  # path → seconds to wait before the simulator answers
        self.open_streams = 0  # evil bodies being sent right now
        self.served: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v0/chat/completion":
            if scope["type"] == "http" and scope["path"] in self.delays:
                await asyncio.sleep(self.delays[scope["path"]])
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            prompt = str(json.loads(body).get("prompt", ""))
        except ValueError:
            prompt = ""
        found = EVIL.search(prompt)
        if not found:
            await self.app(scope, _replay(body, receive), send)
            return
        name = found.group(1)
        self.served[name] += 1
        if name == "truncated":
            await self.app(scope, _replay(body, receive), _Truncate(send))
            return
        self.open_streams += 1
        try:
            await self._evil(name, prompt, receive, send)
        finally:
            self.open_streams -= 1

    async def _evil(self, name: str, prompt: str, receive: Any, send: Any) -> None:
        sse = [(b"content-type", b"text/event-stream; charset=utf-8")]
        if name == "html":
            page = b"<!DOCTYPE html><html><head><title>Oops</title></head><body>maintenance</body></html>"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": page})
            return
        await send({"type": "http.response.start", "status": 200, "headers": sse})
        if name == "random":
            rng = random.Random(prompt)
            for _ in range(8):
                await send({"type": "http.response.body", "body": rng.randbytes(512), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if name == "invalid_json":
            junk = b"data: {\"v\": unquoted}\n\ndata: {\"p\":\"response/fragments\",\n\ndata: ]]]\n\n" * 4
            await send({"type": "http.response.body", "body": junk})
            return
        writer = FragmentWriter(MessageMeta(1, 2, "default", False, False, time.time()))
        head = writer.opening(time.time()) + writer.begin("RESPONSE", "Evil ")
        if name == "no_finish":
            await send({"type": "http.response.body", "body": head + writer.text("reply that stops"),
                        "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.body", "body": head, "more_body": True})
            if name == "endless":
                while not disconnected.is_set():
                    await send({"type": "http.response.body", "body": writer.text("more "), "more_body": True})
                    await asyncio.sleep(0.02)
                return
            if name == "hang":
                await disconnected.wait()
                return
            raise ValueError(f"unknown evil mode {name!r}")
        except OSError:
            return  # the gateway hung up
        finally:
            watcher.cancel()


def _replay(body: bytes, receive: Any) -> Any:
    """A `receive` that hands out the already-read body once, then defers to the real one."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # type: ignore[no-any-return]

    return replay


class _Truncate:
    """A `send` that passes on the first ~half of an SSE body, cut inside a line, then ends it."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.seen = 0
        self.done = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.done:
            return
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        chunk = message.get("body", b"")
        self.seen += len(chunk)
        if self.seen > 400 and b"RESPONSE" not in chunk:
            cut = max(1, len(chunk) // 2)
            await self.send({"type": "http.response.body", "body": chunk[:cut], "more_body": False})
            self.done = True
            return
        await self.send(message)


@contextlib.contextmanager
def evil_stack(*, accounts: int = 2, sim: dict[str, Any] | None = None, delays: dict[str, float] | None = None,
               **settings_overrides: Any) -> Iterator[tuple[Stack, EvilUpstream]]:
    """Like `running_stack`, with `EvilUpstream` in front of the simulator."""
    options: dict[str, Any] = {"users": sim_users(accounts), "difficulty": TEST_DIFFICULTY, "seed": 7}
    options.update(sim or {})
    sim_config = SimulatorConfig(**options)
    evil = EvilUpstream(create_simulator(sim_config), delays=delays)
    with BackgroundServer(evil) as simulator:
        settings = gateway_settings(simulator.base_url, sim_config.users, **settings_overrides)
        with BackgroundServer(create_app(settings)) as gateway_server:
            yield Stack(simulator, gateway_server, sim_config, settings), evil


# ---------------------------------------------------------------------------------- fault soak

SOAK_FAULT_RATES = {
    "token_expired": 0.04, "pow_rejected": 0.03, "rate_limit": 0.03, "busy": 0.03,
    "mute": 0.01, "waf": 0.02, "stall": 0.03, "cut": 0.04,
}


@dataclass
class SoakOptions:
    requests: int = 400
    concurrency: int = 20
    accounts: int = 5
    seed: int = 6
    fault_rates: dict[str, float] = field(default_factory=lambda: dict(SOAK_FAULT_RATES))
    stream_share: float = 0.5
    thinking_share: float = 0.4
    disconnect_share: float = 0.05  # streaming clients that hang up mid-stream
    short_stall_share: float = 0.04  # `[sim:stall=…]` shorter than the idle timeout: slow but fine
    idle_timeout: float = 0.6
    stall_seconds: float = 0.9  # fault stalls: longer than idle_timeout, so they end in an idle timeout
    short_stall: float = 0.25
    client_timeout: float = 60.0


@dataclass
class Outcome:
    kind: str  # "ok" | "disconnected" | "error" | "bad"
    detail: str  # e.g. "stream" / "503 upstream_busy" / what was wrong
    latency: float


@dataclass
class SoakReport:
    options: SoakOptions
    outcomes: list[Outcome]
    duration: float
    failovers: int  # extra attempts on another account, from the access log
    multi_attempt_requests: int
    violations: int
    leases_out: int
    inflight: int
    sim: dict[str, Any]
    accounts: Counter[str] = field(default_factory=Counter)  # account states at the end

    @property
    def bad(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "bad"]

    def by_class(self) -> Counter[str]:
        return Counter(o.kind if o.kind in ("ok", "disconnected", "bad") else f"error {o.detail}"
                       for o in self.outcomes)

    def table(self) -> str:
        latencies = sorted(o.latency for o in self.outcomes)
        p50 = statistics.median(latencies) if latencies else 0.0
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
        rows = [("requests", str(len(self.outcomes))),
                ("concurrency / accounts", f"{self.options.concurrency} / {self.options.accounts}")]
        rows += [(f"  {name}", str(count)) for name, count in sorted(self.by_class().items(),
                                                                     key=lambda kv: (-kv[1], kv[0]))]
        rows += [
            ("failovers (extra attempts)", f"{self.failovers} in {self.multi_attempt_requests} requests"),
            ("upstream completions", str(self.sim.get("completions", 0))),
            ("upstream logins", str(self.sim.get("logins", 0))),
            ("faults injected", ", ".join(f"{k}={v}" for k, v in sorted(self.sim.get("faults", {}).items()))),
            ("concurrency violations", str(self.violations)),
            ("leases out / in flight at end", f"{self.leases_out} / {self.inflight}"),
            ("account states at end", ", ".join(f"{k}={v}" for k, v in sorted(self.accounts.items()))),
            ("duration", f"{self.duration:.1f} s ({len(self.outcomes) / max(self.duration, 1e-9):.1f} req/s)"),
            ("latency p50 / p99", f"{p50 * 1000:.0f} ms / {p99 * 1000:.0f} ms"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"| {name.ljust(width)} | {value} |" for name, value in rows)


def soak_settings(options: SoakOptions) -> dict[str, Any]:
    """Gateway settings for the soak: small cool-downs and an idle timeout that ends fault stalls."""
    return {
        "pool": {"cooldown_rate_limited": 0.3, "cooldown_busy": 0.2, "queue_timeout": 20.0, "queue_size": 1000,
                 "max_failover": 3},
        "upstream": {"idle_timeout": options.idle_timeout},
    }


def soak_sim(options: SoakOptions) -> dict[str, Any]:
    return {"fault_rates": dict(options.fault_rates), "retry_after": 0.2, "mute_seconds": 0.5,
            "stall_seconds": options.stall_seconds, "seed": options.seed}


@contextlib.contextmanager
def soak_stack(options: SoakOptions, *, check: bool = True) -> Iterator[Stack]:
    with running_stack(accounts=options.accounts, sim=soak_sim(options), check=check,
                       **soak_settings(options)) as stack:
        yield stack


class _AccessCounter(logging.Handler):
    """Counts attempts from the gateway's access-log lines."""

    ATTEMPTS = re.compile(r"attempts=(\d+)")
    STATUS = re.compile(r"status=(\d+)")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.extra_attempts = 0
        self.multi = 0
        self.statuses: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        status = self.STATUS.search(message)
        if status:
            self.statuses[status.group(1)] += 1
        found = self.ATTEMPTS.search(message)
        if found and int(found.group(1)) > 1:
            self.extra_attempts += int(found.group(1)) - 1
            self.multi += 1


@contextlib.contextmanager
def counting_access_log() -> Iterator[_AccessCounter]:
    logger = logging.getLogger("deepseek2api.access")
    counter = _AccessCounter()
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # thousands of lines need not reach the test's log capture
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


async def _one(client: openai.AsyncOpenAI, i: int, options: SoakOptions) -> Outcome:
    rng = random.Random(f"{options.seed}:{i}")
    stream = rng.random() < options.stream_share
    thinking = rng.random() < options.thinking_share
    disconnect = stream and rng.random() < options.disconnect_share
    prompt = f"soak request {i}: say something [sim:words={rng.randint(0, 30)}]"
    if rng.random() < options.short_stall_share:
        prompt += f" [sim:stall={options.short_stall}]"
    content, reasoning = expected_reply(prompt, thinking=thinking)
    model = "deepseek-reasoner" if thinking else "deepseek-chat"
    messages = [{"role": "user", "content": prompt}]
    started = time.perf_counter()

    def took() -> float:
        return time.perf_counter() - started

    try:
        if not stream:
            completion = await client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
            message = completion.choices[0].message
            got_reasoning = (message.model_extra or {}).get("reasoning_content") or ""
            if message.content != content or (thinking and got_reasoning != reasoning):
                return Outcome("bad", f"wrong non-stream reply to request {i}", took())
            return Outcome("ok", "non-stream", took())
        parts: list[str] = []
        thoughts: list[str] = []
        finishes: list[str] = []
        response = await client.chat.completions.create(
            model=model, messages=messages, stream=True)  # type: ignore[arg-type]
        async with response:
            chunks = 0
            async for chunk in response:
                chunks += 1
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    parts.append(delta.content or "")
                    thoughts.append((delta.model_extra or {}).get("reasoning_content") or "")
                    if chunk.choices[0].finish_reason:
                        finishes.append(chunk.choices[0].finish_reason)
                if disconnect and chunks >= 3:
                    return Outcome("disconnected", "closed mid-stream", took())
        if "".join(parts) != content or (thinking and "".join(thoughts) != reasoning) or finishes != ["stop"]:
            return Outcome("bad", f"wrong streamed reply to request {i}: finishes={finishes}", took())
        return Outcome("ok", "stream", took())
    except openai.APIStatusError as exc:
        try:
            body = exc.response.json()
        except ValueError:
            return Outcome("bad", f"HTTP {exc.status_code} error without a JSON body", took())
        if exc.status_code >= 500 and exc.status_code not in (502, 503):
            return Outcome("bad", f"HTTP {exc.status_code}: {body}", took())
        if not is_error_envelope(body):
            return Outcome("bad", f"HTTP {exc.status_code} body is not the error envelope: {body}", took())
        return Outcome("error", f"{exc.status_code} {body['error']['code']}", took())
    except openai.APIConnectionError as exc:
        return Outcome("bad", f"connection error: {exc!r}", took())
    except openai.APIError as exc:  # an error event inside a stream that already started
        body = {"error": exc.body} if isinstance(exc.body, dict) else exc.body
        if not is_error_envelope(body):
            return Outcome("bad", f"stream error event is not the error envelope: {exc.body!r}", took())
        return Outcome("error", f"stream {body['error']['code']}", took())  # type: ignore[index]


async def run_soak(stack: Stack, options: SoakOptions) -> SoakReport:
    """Fire `options.requests` requests at `options.concurrency` through the openai SDK and classify them."""
    semaphore = asyncio.Semaphore(options.concurrency)
    limits = httpx.Limits(max_connections=options.concurrency + 5, max_keepalive_connections=options.concurrency)
    client = stack.async_openai(timeout=options.client_timeout,
                                http_client=httpx.AsyncClient(limits=limits, timeout=options.client_timeout))

    async def bounded(i: int) -> Outcome:
        async with semaphore:
            return await _one(client, i, options)

    started = time.perf_counter()
    with counting_access_log() as access:
        try:
            outcomes = list(await asyncio.gather(*(bounded(i) for i in range(options.requests))))
        finally:
            await client.close()
        duration = time.perf_counter() - started
        idle_error = ""
        try:
            await asyncio.to_thread(stack.wait_idle, 30.0)
        except AssertionError as exc:
            idle_error = str(exc)
    sim = await asyncio.to_thread(stack.sim_stats)
    gateway = stack.gateway
    report = SoakReport(options, outcomes, duration, access.extra_attempts, access.multi, sim["violations"],
                        gateway.pool.leases_out, gateway.inflight_count, sim,
                        Counter(a["state"] for a in gateway.pool.status()))
    if idle_error:
        report.outcomes.append(Outcome("bad", idle_error, 0.0))
    return report
