"""Run an ASGI app with uvicorn on a loopback port in a background thread.

Used by the demo (simulator + gateway in one process), the tests and the benchmarks: the app gets
its own event loop, so a blocking test body or a second server cannot stall it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _OnlyWarningsFrom(logging.Filter):
    """Drops records below WARNING logged from one thread (a background server's own chatter)."""

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self.thread_name = thread_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.threadName != self.thread_name


class BackgroundServer:
    """`with BackgroundServer(app) as server: server.base_url` — uvicorn in a daemon thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 quiet: bool = False, **uvicorn_options: Any) -> None:
        """`quiet`: leave the process's logging alone and drop this server's own info lines.

        Without it uvicorn applies its logging config and `log_level` to the process-wide `uvicorn.*`
        loggers, which would also silence (or double) the lines of a main server in the same process.
        """
        self.host = host
        self.port = port or free_port(host)
        if quiet:
            uvicorn_options.update(log_config=None, access_log=False)
        self.config = uvicorn.Config(app, host=host, port=self.port, log_level=None if quiet else log_level,
                                     lifespan="on", **uvicorn_options)
        self.server = uvicorn.Server(self.config)  # off the main thread it installs no signal handlers
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self._quiet = _OnlyWarningsFrom(self._thread.name) if quiet else None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.close()

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        if self._quiet is not None:
            logging.getLogger("uvicorn.error").addFilter(self._quiet)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {self.port} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        if self._quiet is not None:
            logging.getLogger("uvicorn.error").removeFilter(self._quiet)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's own loop (to inspect or change app state safely)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
